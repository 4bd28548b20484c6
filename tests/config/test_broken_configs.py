"""Broken configs: each one must fail with the exact line, column and a message a user understands.

The YAML of each case is written out in full, so a reader can count lines and columns by eye.
`{dir}` in an expected message stands for the config's folder.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from castproxy.config.loader import load_config
from castproxy.config.problems import ConfigError


def case(case_id: str, text: str, *expected: str, env: dict[str, str] | None = None) -> object:
    return pytest.param(textwrap.dedent(text), list(expected), env or {}, id=case_id)


CASES = [
    case(
        "tab_indentation",
        """\
        version: 1
        workspaces:
        \tapi:
            openapi: ./spec.json
        """,
        "3:1: tab character in indentation: YAML indents with spaces only",
    ),
    case(
        "tab_before_nested_key",
        """\
        version: 1
        workspaces:
          api:
        \topenapi: ./spec.json
        """,
        "4:1: tab character in indentation: YAML indents with spaces only",
    ),
    case(
        "unclosed_flow_sequence",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems
        """,
        "5:12: YAML syntax error: expected ',' or ']', but got the end of the file (while"
        " parsing a flow sequence that starts here)",
    ),
    case(
        "colon_in_plain_value",
        """\
        version: 1
        workspaces:
          api:
            description: a: b
        """,
        "4:19: YAML syntax error: mapping values are not allowed here; check the "
        "indentation, or quote a value that contains ': '",
    ),
    case(
        "duplicate_key",
        """\
        version: 1
        server:
          port: 8080
          port: 8081
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "4:3: duplicate key 'port' (first defined at line 3); only one can apply: remove or rename one",
    ),
    case(
        "duplicate_workspace",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./a.json
            tools: [listItems]
          api:
            openapi: ./b.json
            tools: [listItems]
        """,
        "6:3: duplicate key 'api' (first defined at line 3); only one can apply: remove or rename one",
    ),
    case(
        "not_a_mapping",
        """\
        - version: 1
        """,
        "1:1: the config must be a YAML mapping with `version: 1` and `workspaces:`",
    ),
    case(
        "empty_file",
        "",
        "1:1: the config file is empty: it needs `version: 1` and `workspaces:`",
    ),
    case(
        "missing_version",
        """\
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "1:1: missing required key 'version' at the top level (add `version: 1`)",
    ),
    case(
        "wrong_version",
        """\
        version: 2
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "1:10: `version` must be 1 (got 2)",
    ),
    case(
        "unknown_top_level_key",
        """\
        version: 1
        servers:
          port: 8080
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "2:1: unknown key 'servers' at the top level (expected one of: version, server, "
        "store, workspaces); did you mean 'server'?",
    ),
    case(
        "unknown_server_key",
        """\
        version: 1
        server:
          listen: 0.0.0.0
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:3: unknown key 'listen' in server (expected one of: public_url, host, port, "
        "secret_key, previous_secret_keys, allowed_origins, connections, metrics_token, identity, lock, audit, "
        "admin)",
    ),
    case(
        "audit_file_without_path",
        """\
        version: 1
        server:
          audit:
            sink: file
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "4:11: the file sink needs `path`: the audit file to write (e.g. path: ./audit/castproxy.jsonl)",
    ),
    case(
        "audit_unknown_sink",
        """\
        version: 1
        server:
          audit: {sink: syslog}
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:17: `sink` must be one of: stdout, file, off (got 'syslog')",
    ),
    case(
        "admin_without_secret_key",
        """\
        version: 1
        server:
          admin:
            api_keys: ["${env:ADMIN_KEY}"]
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:3: `server.admin` needs `server.secret_key` (the admin session cookie is signed with a key derived "
        "from it; e.g. secret_key: ${env:CASTPROXY_SECRET_KEY})",
        env={"ADMIN_KEY": "k" * 40},
    ),
    case(
        "bad_header_timeout",
        """\
        version: 1
        server:
          connections:
            header_timeout: soon
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "4:21: `header_timeout` must be a duration like 30, '30s', '500ms' or '2m' (got 'soon')",
    ),
    case(
        "max_open_zero",
        """\
        version: 1
        server:
          connections:
            max_open: 0
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "4:15: `max_open` must be at least 1 (got 0)",
    ),
    case(
        "port_not_a_number",
        """\
        version: 1
        server:
          port: http
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:9: `port` must be a whole number (got 'http')",
    ),
    case(
        "port_out_of_range",
        """\
        version: 1
        server:
          port: 70000
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:9: `port` must be at most 65535 (got 70000)",
    ),
    case(
        "bad_public_url",
        """\
        version: 1
        server:
          public_url: localhost:8080
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:15: `public_url` must be an http:// or https:// URL (got 'localhost:8080')",
    ),
    case(
        "secret_key_too_short",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:15: `secret_key` must be at least 32 characters; generate one with: python3 -c"
        " 'import secrets; print(secrets.token_urlsafe(32))'",
        env={"KEY": "short"},
    ),
    case(
        "previous_secret_key_too_short",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
          previous_secret_keys:
            - ${env:OLD}
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "5:7: a previous secret key must be at least 32 characters, like `secret_key`",
        env={"KEY": "k" * 40, "OLD": "short"},
    ),
    case(
        "unknown_store_backend",
        """\
        version: 1
        store:
          backend: postgres
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:12: `backend` must be one of: sqlite, redis (got 'postgres')",
    ),
    case(
        "redis_without_url",
        """\
        version: 1
        store:
          backend: redis
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:12: store backend redis needs `url` (e.g. redis://127.0.0.1:6379/0)",
    ),
    case(
        "no_workspaces",
        """\
        version: 1
        workspaces: {}
        """,
        "2:1: `workspaces` is empty: define at least one workspace",
    ),
    case(
        "bad_slug",
        """\
        version: 1
        workspaces:
          My API:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:3: workspace name 'My API' must be a URL slug: lower-case letters, digits and '-'",
    ),
    case(
        "slug_ends_with_dash",
        """\
        version: 1
        workspaces:
          api-:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:3: workspace name 'api-' must be a URL slug: lower-case letters, digits and "
        "'-' (not at the start or end, at most 64 characters)",
    ),
    case(
        "missing_openapi",
        """\
        version: 1
        workspaces:
          api:
            tools: [listItems]
        """,
        "3:3: missing required key 'openapi' in workspace 'api'",
    ),
    case(
        "bad_base_url",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            base_url: ftp://example.com
            tools: [listItems]
        """,
        "5:15: `base_url` must be an http:// or https:// URL (got 'ftp://example.com')",
    ),
    case(
        "empty_tools",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: []
        """,
        "5:5: `tools` is empty: list at least one operationId or selector, or write `tools: \"*\"` for every "
        "operation",
    ),
    case(
        "tools_as_mapping",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              listItems: {}
        """,
        "5:5: `tools` must be a list of operationIds or selectors (one '- entry' per line) or '*' for every "
        "operation, not a mapping",
    ),
    case(
        "tool_entry_unknown_key",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - operation: listItems
                nmae: list
        """,
        "7:9: unknown key 'nmae' in tools entry 1 (expected one of: operation, name, "
        "description, access, rate_limit); did you mean 'name'?",
    ),
    case(
        "tool_entry_without_operation",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - name: list
        """,
        "6:9: missing required key 'operation' in tools entry 1",
    ),
    case(
        "bad_tool_name",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - operation: listItems
                name: list items
        """,
        "7:15: `name` must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-' (got 'list items')",
    ),
    case(
        "duplicate_tool_name_from_rename",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - listItems
              - operation: getItem
                name: listItems
        """,
        "8:15: tool name 'listItems' is used twice in workspace 'api' (first at line 6); "
        "tool names must be unique: rename one with `name:`",
    ),
    case(
        "bad_timeout",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            timeout: 3 days
            tools: [listItems]
        """,
        "5:14: `timeout` must be a duration like 30, '30s', '500ms' or '2m' (got '3 days')",
    ),
    case(
        "bad_refresh",
        """\
        version: 1
        workspaces:
          api:
            openapi: https://api.example.com/openapi.json
            refresh: hourly
            tools: [listItems]
        """,
        "5:14: `refresh` must be a duration like '10m', '1h', '30s' or 600 (seconds) (got 'hourly')",
    ),
    case(
        "refresh_too_often",
        """\
        version: 1
        workspaces:
          api:
            openapi: https://api.example.com/openapi.json
            refresh: 500ms
            tools: [listItems]
        """,
        "5:14: `refresh` must be a duration from 1 second to 7 days, like '10m' or '1h' (got '500ms')",
    ),
    case(
        "spec_cache_not_text",
        """\
        version: 1
        store:
          spec_cache: [a, b]
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:15: `spec_cache` must be text",
    ),
    case(
        "max_response_bytes_too_small",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            max_response_bytes: 10
            tools: [listItems]
        """,
        "5:25: `max_response_bytes` must be at least 1024 (got 10)",
    ),
    case(
        "max_schema_bytes_too_small",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            max_schema_bytes: 100
            tools: [listItems]
        """,
        "5:23: `max_schema_bytes` must be at least 1024 (got 100)",
    ),
    case(
        "max_schema_bytes_not_a_size",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            max_schema_bytes: 32 kilobytes
            tools: [listItems]
        """,
        "5:23: `max_schema_bytes` must be a size like 1048576, '512KiB' or '1MiB' (got '32 kilobytes')",
    ),
    case(
        "output_schema_not_bool",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            output_schema: sometimes
            tools: [listItems]
        """,
        "5:20: `output_schema` must be true or false (got 'sometimes')",
    ),
    case(
        "unknown_auth_type",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth: {type: oauth}
            tools: [listItems]
        """,
        "5:18: unknown auth type 'oauth' (expected one of: none, bearer, api_key, headers, oauth2, login)",
    ),
    case(
        "auth_without_type",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              token: abc
            tools: [listItems]
        """,
        "5:5: `auth` needs a `type`: one of none, bearer, api_key, headers, oauth2, login",
    ),
    case(
        "unknown_auth_field",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              authorization_url: https://id.example.com/authorize
              token_url: https://id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
              scopez: [read]
            tools: [listItems]
        """,
        "13:7: unknown key 'scopez' in auth (expected one of: type, provider, grant, "
        "issuer, authorization_url, token_url, registration_url, revocation_url, "
        "client_id, client_secret, token_endpoint_auth_method, scopes, pkce, state, "
        "audience); did you mean 'scopes'?",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "pkce_wrong_type",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              authorization_url: https://id.example.com/authorize
              token_url: https://id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
              pkce: S256
            tools: [listItems]
        """,
        "13:13: `pkce` must be true or false (got 'S256')",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "scopes_not_a_list",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              authorization_url: https://id.example.com/authorize
              token_url: https://id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
              scopes: {read: true}
            tools: [listItems]
        """,
        "13:15: `scopes` must be a list (e.g. [a, b], or one '- item' per line)",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "oauth2_without_secret_key",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              authorization_url: https://id.example.com/authorize
              token_url: https://id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
            tools: [listItems]
        """,
        "6:13: workspace 'api' uses oauth2, which needs `server.secret_key` (at least 32 "
        "random characters, e.g. secret_key: ${env:CASTPROXY_SECRET_KEY})",
        env={"SECRET": "s3cret"},
    ),
    case(
        "client_credentials_without_token_url",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              grant: client_credentials
              client_id: castproxy
              client_secret: ${env:SECRET}
            tools: [listItems]
        """,
        "9:14: grant client_credentials needs `token_url` (or `issuer`, whose metadata gives it)",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "authorization_code_without_authorization_url",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              token_url: https://id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
            tools: [listItems]
        """,
        "7:5: grant authorization_code needs `authorization_url` (or `issuer`, whose metadata gives it)",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "custom_without_client_id",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              issuer: https://id.example.com
              client_secret: ${env:SECRET}
            tools: [listItems]
        """,
        "7:5: oauth2 provider custom needs `client_id` (the client registered at the "
        "upstream; or use provider: dcr to register automatically)",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "dcr_without_registration_url",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              provider: dcr
              authorization_url: https://id.example.com/authorize
              token_url: https://id.example.com/token
            tools: [listItems]
        """,
        "9:17: provider dcr needs `registration_url`, or `issuer` (whose metadata names "
        "the registration endpoint)",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"},
    ),
    case(
        "bad_token_url",
        """\
        version: 1
        server:
          secret_key: ${env:KEY}
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: oauth2
              authorization_url: https://id.example.com/authorize
              token_url: id.example.com/token
              client_id: castproxy
              client_secret: ${env:SECRET}
            tools: [listItems]
        """,
        "10:18: `token_url` must be an http:// or https:// URL (got 'id.example.com/token')",
        env={"KEY": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "SECRET": "s3cret"},
    ),
    case(
        "bad_header_name",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: headers
              headers:
                X Api Key: ${env:KEY}
            tools: [listItems]
        """,
        "8:9: 'X Api Key' is not a valid HTTP header name (letters, digits and "
        "!#$%&'*+.^_`|~-; no spaces or ':')",
        env={"KEY": "abc"},
    ),
    case(
        "bearer_without_token",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth: {type: bearer}
            tools: [listItems]
        """,
        "5:5: missing required key 'token' in auth",
    ),
    case(
        "env_missing",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth: {type: bearer, token: "${env:MISSING}"}
            tools: [listItems]
        """,
        "5:33: environment variable MISSING is not set (referenced as ${env:MISSING})",
    ),
    case(
        "env_empty",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: bearer
              token: ${env:EMPTY}
            tools: [listItems]
        """,
        "7:14: environment variable EMPTY is empty (referenced as ${env:EMPTY})",
        env={"EMPTY": ""},
    ),
    case(
        "file_missing",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: api_key
              value: ${file:secrets/api_key}
            tools: [listItems]
        """,
        "7:14: secret file {dir}/secrets/api_key (${file:secrets/api_key}) does not exist",
    ),
    case(
        "file_empty_path",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: api_key
              value: ${file:}
            tools: [listItems]
        """,
        "7:14: empty path in '${file:}': write ${file:PATH} (relative to the config's folder)",
    ),
    case(
        "unclosed_reference",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: bearer
              token: ${env:TOKEN
            tools: [listItems]
        """,
        "7:14: unclosed '${' in this value: write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'",
        env={"TOKEN": "t"},
    ),
    case(
        "unknown_reference_source",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: bearer
              token: ${vault:secret/api}
            tools: [listItems]
        """,
        "7:14: unknown secret source 'vault' in '${...}': use ${env:NAME} or ${file:PATH}",
    ),
    case(
        "reference_without_source",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: bearer
              token: ${TOKEN}
            tools: [listItems]
        """,
        "7:14: malformed reference '${TOKEN}': write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'",
        env={"TOKEN": "t"},
    ),
    case(
        "bad_env_name",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth:
              type: bearer
              token: ${env:API-TOKEN}
            tools: [listItems]
        """,
        "7:14: 'API-TOKEN' is not a valid environment variable name in '${env:...}' "
        "(letters, digits and '_', not starting with a digit)",
    ),
    case(
        "empty_inbound_keys",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            inbound:
              api_keys: []
            tools: [listItems]
        """,
        "6:7: `api_keys` must not be empty",
    ),
    case(
        "env_override_bad_port",
        """\
        version: 1
        server:
          port: 8080
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:9: environment variable CASTPROXY_PORT: `port` must be a whole number (got 'eighty')",
        env={"CASTPROXY_PORT": "eighty"},
    ),
    case(
        "env_override_short_secret_key",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "1:1: `secret_key` (from CASTPROXY_SECRET_KEY) must be at least 32 characters; "
        "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
        env={"CASTPROXY_SECRET_KEY": "short"},
    ),
    case(
        "port_is_a_boolean",
        """\
        version: 1
        server:
          port: true
        workspaces:
          api:
            openapi: ./spec.json
            tools: [listItems]
        """,
        "3:9: `port` must be a port number from 1 to 65535 (got true)",
    ),
    case(
        "auth_is_a_word",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            auth: bearer
            tools: [listItems]
        """,
        "5:11: `auth` must be a mapping (key: value lines indented below it)",
    ),
    case(
        "tools_entry_is_a_list",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: [[listItems]]
        """,
        "5:13: each tools entry must be an operationId, '*', a mapping with `operation` (and optional `name`, "
        "`description`), or a selector with `tag`, `path` and/or `method`",
    ),
    case(
        "tools_is_one_word",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: listItems
        """,
        "5:12: `tools` must be a list of operationIds or selectors (one '- entry' per line) or '*' for every "
        "operation, not a single value",
    ),
    case(
        "aliases_multiplying",
        """\
        version: 1
        a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        """,
        "1:1: the document expands to more than 100000 values (aliases repeating aliases?)",
    ),
    case(
        "selector_with_a_rename",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - tag: pulls
                name: prs
        """,
        "7:9: unknown key 'name' in tools entry 1 (expected one of: tag, path, method, access, rate_limit); "
        "`name` applies to one "
        "operation: write it with `operation: OPERATION_ID`",
    ),
    case(
        "selector_and_operation_in_one_entry",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - operation: listItems
                method: GET
        """,
        "7:9: unknown key 'method' in tools entry 1 (expected one of: operation, name, description, access, "
        "rate_limit); a selector "
        "entry (tag, path, method) has no `operation`: write it as its own entry",
    ),
    case(
        "selector_bad_method_and_relative_path",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools:
              - {method: FETCH}
              - path: repos/**
        """,
        "6:18: `method` must be one of: GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE (got 'FETCH')",
        "7:15: `path` must be a path glob starting with '/', e.g. /repos/** (got 'repos/**')",
    ),
    case(
        "exclude_everything_and_bad_entry",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: "*"
            exclude:
              - [listItems]
        """,
        "7:9: each exclude entry must be an operationId, or a selector mapping with `tag`, `path` and/or `method`",
    ),
    case(
        "exclude_star",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: "*"
            exclude: ["*"]
        """,
        "6:14: `exclude` must be operationIds or selectors; '*' would exclude every operation",
    ),
    case(
        "tools_other_word",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: all
        """,
        "5:12: `tools` must be a list of operationIds or selectors (one '- entry' per line) or '*' for every "
        "operation, not a single value",
    ),
    case(
        "unknown_discovery",
        """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            tools: "*"
            discovery: lookup
        """,
        "6:16: `discovery` must be one of: list, search (got 'lookup')",
    ),
]


@pytest.mark.parametrize(("text", "expected", "env"), CASES)
def test_broken_config_is_reported_at_its_position(
    tmp_path: Path, text: str, expected: list[str], env: dict[str, str]
) -> None:
    path = tmp_path / "cast.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as failure:
        load_config(path, env)
    assert all(problem.file == str(path) for problem in failure.value.problems)
    found = [f"{problem.line}:{problem.column}: {problem.message}" for problem in failure.value.errors]
    assert found == [message.replace("{dir}", str(tmp_path)) for message in expected]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
