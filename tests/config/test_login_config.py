"""`auth.type: login` in cast.yaml: every mistake is reported at its FILE:LINE:COL, as in test_broken_configs.py.

Each YAML is written out in full so lines and columns can be counted by eye; the top of each file is the
same six lines (version, server with a secret key from the environment, the workspace, auth).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from castproxy.config.loader import load_config
from castproxy.config.model import LoginAuth
from castproxy.config.problems import ConfigError

ENV = {"KEY": "k" * 40, "API_USER": "alice", "API_PASSWORD": "pw-config-canary"}
HEAD = """\
version: 1
server: {secret_key: "${env:KEY}"}
workspaces:
  api:
    openapi: ./spec.json
    tools: [listItems]
    auth:
      type: login
"""


def case(case_id: str, auth: str, *expected: str, head: str = HEAD, env: dict[str, str] | None = None) -> object:
    """`auth`: the lines below `type: login`, written flush left here and indented under `auth:` (column 7)."""
    text = head + textwrap.indent(textwrap.dedent(auth), " " * 6)
    return pytest.param(text, list(expected), ENV if env is None else env, id=case_id)


GOOD = """\
login_url: https://api.example.com/login
credentials:
  username: ${env:API_USER}
  password: ${env:API_PASSWORD}
"""

CASES = [
    case(
        "missing_login_url",
        """\
              credentials: {password: "${env:API_PASSWORD}"}
        """,
        "7:5: missing required key 'login_url' in auth",
    ),
    case(
        "missing_credentials",
        """\
              login_url: https://api.example.com/login
        """,
        "7:5: missing required key 'credentials' in auth",
    ),
    case(
        "empty_credentials",
        """\
              login_url: https://api.example.com/login
              credentials: {}
        """,
        "10:7: `credentials` must not be empty",
    ),
    case(
        "login_url_not_a_url",
        """\
              login_url: /login
              credentials: {password: "${env:API_PASSWORD}"}
        """,
        "9:18: `login_url` must be an http:// or https:// URL (got '/login')",
    ),
    case(
        "unset_secret_reference",
        GOOD.replace("API_PASSWORD", "API_PASS"),
        "12:19: environment variable API_PASS is not set (referenced as ${env:API_PASS})",
    ),
    case(
        "no_secret_key",
        GOOD,
        "8:13: workspace 'api' uses login, which needs `server.secret_key` (castproxy keeps the token it gets "
        "encrypted; at least 32 random characters, e.g. secret_key: ${env:CASTPROXY_SECRET_KEY})",
        head=HEAD.replace('server: {secret_key: "${env:KEY}"}', "server: {port: 8080}"),
    ),
    case(
        "header_without_send_as_header",
        GOOD + textwrap.dedent("""\
              header: X-Auth-Token
        """),
        "13:7: `header` needs `send_as: header` (without it the token goes in `Authorization: Bearer TOKEN`)",
    ),
    case(
        "header_with_send_as_bearer",
        GOOD + textwrap.dedent("""\
              send_as: bearer
              prefix: "Token "
        """),
        "14:7: `prefix` conflicts with send_as bearer (the token goes in `Authorization: Bearer TOKEN`): use "
        "`send_as: header`, or remove it",
    ),
    case(
        "send_as_header_without_header",
        GOOD + textwrap.dedent("""\
              send_as: header
        """),
        "13:16: `send_as: header` needs `header`: the header that carries the token (e.g. header: X-Auth-Token)",
    ),
    case(
        "send_as_unknown",
        GOOD + textwrap.dedent("""\
              send_as: cookie
        """),
        "13:16: `send_as` must be one of: bearer, header (got 'cookie')",
    ),
    case(
        "refresh_field_without_refresh_url",
        GOOD + textwrap.dedent("""\
              refresh_token_field: /data/refresh
        """),
        "13:7: `refresh_token_field` has no effect without `refresh_url`: add the refresh endpoint, or remove it "
        "(castproxy then logs in again before the token expires)",
    ),
    case(
        "refresh_body_field_with_bearer_refresh",
        GOOD + textwrap.dedent("""\
              refresh_url: https://api.example.com/refresh
              refresh_send_as: bearer
              refresh_body_field: token
        """),
        "15:7: `refresh_body_field` conflicts with refresh_send_as bearer (the refresh token goes in the "
        "Authorization header, not the body)",
    ),
    case(
        "field_in_credentials_and_fields",
        GOOD + textwrap.dedent("""\
              fields:
                password: x
        """),
        "14:9: body field 'password' is in both `credentials` and `fields`: keep it in one (secrets in "
        "`credentials`)",
    ),
    case(
        "bad_json_pointer",
        GOOD + textwrap.dedent("""\
              token_field: /data/~2
        """),
        "13:20: `token_field` must be a field name or a JSON pointer such as /data/token (~0 for '~', ~1 for '/') "
        "(got '/data/~2')",
    ),
    case(
        "bad_lifetime",
        GOOD + textwrap.dedent("""\
              token_lifetime: soon
        """),
        "13:23: `token_lifetime` must be a duration like 30, '30s', '500ms' or '2m' (got 'soon')",
    ),
    case(
        "zero_lifetime",
        GOOD + textwrap.dedent("""\
              token_lifetime: 0
        """),
        "13:23: `token_lifetime` must be at least 1 (got 0)",
    ),
    case(
        "misspelt_key",
        GOOD + textwrap.dedent("""\
              refresh_ur: https://api.example.com/refresh
        """),
        "13:7: unknown key 'refresh_ur' in auth (expected one of: type, login_url, format, credentials, fields, "
        "token_field, expires_in_field, token_lifetime, refresh_url, refresh_token_field, refresh_send_as, "
        "refresh_body_field, send_as, header, prefix); did you mean 'refresh_url'?",
    ),
    case(
        "prefix_with_a_line_break",
        GOOD + textwrap.dedent("""\
              send_as: header
              header: X-Auth-Token
              prefix: "Token\\r\\nX-Evil: 1 "
        """),
        "15:15: `prefix` must be text without control characters (it goes in a header) (got "
        "'Token\\r\\nX-Evil: 1 ')",
    ),
    case(
        "bad_header_name",
        GOOD + textwrap.dedent("""\
              send_as: header
              header: "X Token"
        """),
        "14:15: `header` must be a valid HTTP header name (got 'X Token')",
    ),
]


@pytest.mark.parametrize(("text", "expected", "env"), CASES)
def test_login_mistakes_are_reported_at_their_position(
    tmp_path: Path, text: str, expected: list[str], env: dict[str, str]
) -> None:
    path = tmp_path / "cast.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as failure:
        load_config(path, env)
    found = [f"{problem.line}:{problem.column}: {problem.message}" for problem in failure.value.errors]
    assert found == expected
    assert "pw-config-canary" not in str(failure.value.problems)


def test_a_full_login_block_loads_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "cast.yaml"
    path.write_text(HEAD + textwrap.indent(GOOD + textwrap.dedent("""\
              format: form
              fields: {grant_type: password}
              token_field: /data/jwt
              expires_in_field: ttl
              token_lifetime: 15m
              refresh_url: https://api.example.com/refresh
              refresh_token_field: /data/refresh
              refresh_send_as: body
              refresh_body_field: refresh
              send_as: header
              header: X-Auth-Token
              prefix: "Token "
        """), " " * 6), encoding="utf-8")
    loaded = load_config(path, ENV)
    assert loaded.warnings == []
    auth = loaded.config.workspaces["api"].auth
    assert isinstance(auth, LoginAuth)
    assert auth.token_lifetime == 900 and auth.credentials["password"].get_secret_value() == "pw-config-canary"
    assert "pw-config-canary" not in repr(auth)


def test_literal_credentials_and_plain_http_warn(tmp_path: Path) -> None:
    path = tmp_path / "cast.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent("""\
              login_url: http://api.example.com/login
              credentials:
                username: alice
                password: ${env:API_PASSWORD}
        """), " " * 6), encoding="utf-8")
    loaded = load_config(path, ENV)
    assert [f"{w.line}:{w.column}: {w.message}" for w in loaded.warnings] == [
        "9:18: `login_url` is plain http:// to a host that is not loopback: the credentials would cross the "
        "network unencrypted; use https://",
        "11:19: login credential 'username' is written literally in the config: use ${env:NAME} or ${file:PATH} "
        "so the secret stays out of the file (and out of git); a non-secret body field belongs in `fields`",
    ]


def test_the_commented_login_example_in_cast_yaml_example_validates(tmp_path: Path) -> None:
    lines = (Path(__file__).resolve().parents[2] / "cast.yaml.example").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "#     type: login") - 1
    block = []
    for line in lines[start:]:
        if line.strip() == "#":
            break
        block.append(" " + line[3:])  # "  #   auth:" -> "    auth:", under the workspace
    path = tmp_path / "cast.yaml"
    path.write_text(HEAD.split("    auth:")[0] + "\n".join(block) + "\n", encoding="utf-8")
    loaded = load_config(path, {**ENV, "CASTPROXY_SECRET_KEY": "s" * 40})
    assert isinstance(loaded.config.workspaces["api"].auth, LoginAuth)
    assert loaded.warnings == []


def test_a_login_workspace_on_a_public_address_without_inbound_keys_warns(tmp_path: Path) -> None:
    path = tmp_path / "cast.yaml"
    path.write_text(HEAD.replace('server: {secret_key: "${env:KEY}"}', 'server: {secret_key: "${env:KEY}", '
                                 'host: 0.0.0.0}') + textwrap.indent(GOOD, " " * 6), encoding="utf-8")
    warnings = [f"{w.line}:{w.column}: {w.message}" for w in load_config(path, ENV).warnings]
    assert warnings == [
        "4:3: workspace 'api' uses a shared upstream credential (login) and server.host 0.0.0.0 is not loopback: "
        "anyone who reaches the proxy can call this API; add `inbound.api_keys`"
    ]
