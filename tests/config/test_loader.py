"""Loading valid configs: secret references, env overrides, positions, warnings, derived values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from castproxy.config.loader import (
    UPSTREAM_CALLBACK_PATH,
    LoadedConfig,
    load_config,
    resolve_config_path,
)
from castproxy.config.model import ApiKeyAuth, BearerAuth, HeadersAuth, OAuth2Auth, ToolSelection
from castproxy.config.problems import ConfigError

SECRET_KEY = "k" * 40

WriteConfig = Callable[..., Path]

OAUTH_CONFIG = """
version: 1
server:
  public_url: https://mcp.example.com/
  secret_key: ${env:CASTPROXY_TEST_KEY}
workspaces:
  test-oauth:
    description: Items and users API
    openapi: ./spec.json
    auth:
      type: oauth2
      authorization_url: https://id.example.com/authorize
      token_url: https://id.example.com/token
      client_id: castproxy
      client_secret: ${env:CLIENT_SECRET}
      scopes: [read:items, write:items]
    tools:
      - listItems
      - operation: deleteItem
        name: delete_item
        description: Delete one item.
"""


def test_a_full_config_loads(write_config: WriteConfig) -> None:
    path = write_config(OAUTH_CONFIG)
    loaded = load_config(path, {"CASTPROXY_TEST_KEY": SECRET_KEY, "CLIENT_SECRET": "from-env"})
    assert isinstance(loaded, LoadedConfig)
    assert loaded.path == path.absolute()
    assert loaded.base_dir == path.parent.absolute()
    assert loaded.public_url == "https://mcp.example.com"
    assert loaded.public_url + UPSTREAM_CALLBACK_PATH == "https://mcp.example.com/oauth/callback"
    assert loaded.warnings == []
    workspace = loaded.config.workspaces["test-oauth"]
    assert isinstance(workspace.auth, OAuth2Auth)
    assert workspace.auth.client_secret is not None
    assert workspace.auth.client_secret.get_secret_value() == "from-env"
    assert workspace.auth.pkce is True and workspace.auth.state is True
    assert workspace.tools[0] == "listItems"
    renamed = ToolSelection(operation="deleteItem", name="delete_item", description="Delete one item.")
    assert workspace.tools[1] == renamed
    assert loaded.config.server.secret_key is not None
    assert loaded.config.server.secret_key.get_secret_value() == SECRET_KEY


def test_locate_points_at_keys_values_and_items(write_config: WriteConfig) -> None:
    loaded = load_config(write_config(OAUTH_CONFIG), {"CASTPROXY_TEST_KEY": SECRET_KEY, "CLIENT_SECRET": "x"})
    assert loaded.locate(("workspaces", "test-oauth")) == (6, 3)
    assert loaded.locate(("workspaces", "test-oauth", "openapi")) == (8, 14)  # the value on the key's line
    assert loaded.locate(("workspaces", "test-oauth", "auth")) == (9, 5)  # a block mapping: its key
    assert loaded.locate(("workspaces", "test-oauth", "tools", 0)) == (17, 9)
    assert loaded.locate(("workspaces", "test-oauth", "tools", 1)) == (18, 9)
    assert loaded.locate(("workspaces", "test-oauth", "auth", "scopes", 1)) == (15, 28)
    # not in the file: the nearest parent
    assert loaded.locate(("workspaces", "test-oauth", "timeout")) == (6, 3)
    assert loaded.locate(("workspaces", "test-oauth", "tools", 7)) == (16, 5)
    assert loaded.locate(("nothing",)) == (1, 1)
    problem = loaded.problem(("workspaces", "test-oauth", "tools", 1), "no such operation", "error")
    assert str(problem) == f"{loaded.path}:18:9: no such operation"
    assert str(loaded.problem(("store",), "careful", "warning")) == f"{loaded.path}:1:1: warning: careful"


def test_file_references_are_relative_to_the_config_and_lose_one_newline(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("file-token\n\n")
    (tmp_path / "key").write_text("file-key\r\n")
    path = write_config("""
        version: 1
        workspaces:
          a:
            openapi: ./spec.json
            auth: {type: bearer, token: "${file:secrets/token}"}
            tools: [x]
          b:
            openapi: ./spec.json
            auth: {type: api_key, value: "${file:%s}"}
            tools: [x]
        """ % (tmp_path / "key"))
    loaded = load_config(path, {})
    token = loaded.config.workspaces["a"].auth
    key = loaded.config.workspaces["b"].auth
    assert isinstance(token, BearerAuth) and token.token.get_secret_value() == "file-token\n"
    assert isinstance(key, ApiKeyAuth) and key.value.get_secret_value() == "file-key"


def test_references_inside_text_defaults_and_escapes(write_config: WriteConfig) -> None:
    path = write_config("""
        version: 1
        workspaces:
          api:
            openapi: ${env:SPEC_DIR:-./specs}/api.json
            description: costs $5, literal $${env:NOT_A_REFERENCE}
            auth:
              type: headers
              headers:
                Authorization: Bearer ${env:TOKEN}
                X-Tenant: ${env:TENANT:-acme}
            tools: [x]
        """)
    loaded = load_config(path, {"TOKEN": "t0k", "TENANT": ""})
    workspace = loaded.config.workspaces["api"]
    assert workspace.openapi == "./specs/api.json"
    assert workspace.description == "costs $5, literal ${env:NOT_A_REFERENCE}"
    assert isinstance(workspace.auth, HeadersAuth)
    assert {k: v.get_secret_value() for k, v in workspace.auth.headers.items()} == {
        "Authorization": "Bearer t0k",
        "X-Tenant": "acme",
    }
    assert [str(w).split(": ", 1)[1] for w in loaded.warnings] == [
        "warning: auth header 'X-Tenant' uses the default written in the config because TENANT is not set; "
        "set it outside the file in production"
    ]


def test_env_overrides_win_over_the_file(write_config: WriteConfig) -> None:
    path = write_config(OAUTH_CONFIG)
    environ = {
        "CLIENT_SECRET": "x",
        "CASTPROXY_TEST_KEY": "too short, but overridden",
        "CASTPROXY_HOST": "0.0.0.0",
        "CASTPROXY_PORT": "9090",
        "CASTPROXY_PUBLIC_URL": "https://proxy.internal",
        "CASTPROXY_SECRET_KEY": SECRET_KEY,
        "CASTPROXY_ALLOWED_ORIGINS": "https://a.example.com, https://b.example.com",
    }
    loaded = load_config(path, environ)
    server = loaded.config.server
    assert (server.host, server.port) == ("0.0.0.0", 9090)
    assert server.allowed_origins == ["https://a.example.com", "https://b.example.com"]
    assert server.secret_key is not None and server.secret_key.get_secret_value() == SECRET_KEY
    assert loaded.public_url == "https://proxy.internal"


def test_secret_key_from_the_environment_satisfies_oauth2(write_config: WriteConfig) -> None:
    text = OAUTH_CONFIG.replace("  secret_key: ${env:CASTPROXY_TEST_KEY}\n", "")
    path = write_config(text)
    with pytest.raises(ConfigError, match=r"uses oauth2, which needs `server\.secret_key`"):
        load_config(path, {"CLIENT_SECRET": "x"})
    loaded = load_config(path, {"CLIENT_SECRET": "x", "CASTPROXY_SECRET_KEY": SECRET_KEY})
    assert loaded.warnings == []


def test_empty_env_override_counts_as_unset(write_config: WriteConfig) -> None:
    path = write_config("version: 1\nserver: {port: 7000}\nworkspaces: {api: {openapi: ./s.json, tools: [x]}}\n")
    assert load_config(path, {"CASTPROXY_PORT": ""}).config.server.port == 7000


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("https://a.example.com,,https://b.example.com ", ["https://a.example.com", "https://b.example.com"]),
        ('["https://a.example.com", "https://b.example.com"]', ["https://a.example.com", "https://b.example.com"]),
        ("null", ["https://file.example.com"]),  # JSON null: not set, the file's list stays
    ],
)
def test_allowed_origins_from_the_environment(write_config: WriteConfig, value: str, origins: list[str]) -> None:
    path = write_config("version: 1\nserver: {allowed_origins: ['https://file.example.com']}\n"
                        "workspaces: {api: {openapi: ./s.json, tools: [x]}}\n")
    assert load_config(path, {"CASTPROXY_ALLOWED_ORIGINS": value}).config.server.allowed_origins == origins


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("{}", "http://127.0.0.1:8080"),
        ("{host: 0.0.0.0, port: 9000}", "http://localhost:9000"),
        ("{host: '::1'}", "http://[::1]:8080"),
        ("{public_url: 'https://x.example.com/base/'}", "https://x.example.com/base"),
    ],
)
def test_public_url(write_config: WriteConfig, server: str, expected: str) -> None:
    path = write_config(f"version: 1\nserver: {server}\nworkspaces: {{api: {{openapi: ./s.json, tools: [x]}}}}\n")
    assert load_config(path, {}).public_url == expected


def test_durations_sizes_and_numeric_text(write_config: WriteConfig) -> None:
    path = write_config("""
        version: 1
        workspaces:
          a:
            openapi: ./s.json
            timeout: 500ms
            max_response_bytes: 2MiB
            auth: {type: oauth2, grant: client_credentials, token_url: "https://id.example.com/t",
                   client_id: 123456789, client_secret: "${env:S}"}
            tools: [x]
          b:
            openapi: ./s.json
            timeout: 2m
            max_response_bytes: 4096
            tools: [x]
        server:
          secret_key: ${env:K}
        """)
    loaded = load_config(path, {"S": "s", "K": SECRET_KEY})
    a, b = loaded.config.workspaces["a"], loaded.config.workspaces["b"]
    assert (a.timeout, a.max_response_bytes) == (0.5, 2 * 2**20)
    assert (b.timeout, b.max_response_bytes) == (120.0, 4096)
    assert isinstance(a.auth, OAuth2Auth) and a.auth.client_id == "123456789"


def test_version_may_be_quoted(write_config: WriteConfig) -> None:
    path = write_config('version: "1"\nworkspaces: {api: {openapi: ./s.json, tools: [x]}}\n')
    assert load_config(path, {}).config.version == 1


def test_anchors_and_merge_keys(write_config: WriteConfig) -> None:
    path = write_config("""
        version: 1
        workspaces:
          a: &common
            openapi: ./s.json
            timeout: 10
            tools: [x]
          b:
            <<: *common
            timeout: 20
        """)
    loaded = load_config(path, {})
    assert loaded.config.workspaces["b"].openapi == "./s.json"
    assert loaded.config.workspaces["b"].timeout == 20


def test_several_errors_are_reported_at_once(write_config: WriteConfig) -> None:
    path = write_config("""
        version: 1
        server:
          port: many
        workspaces:
          good:
            openapi: ./s.json
            auth: {type: bearer, token: "${env:MISSING}"}
            tools: []
          Bad:
            openapi: ./s.json
            tools: [x]
        """)
    with pytest.raises(ConfigError) as failure:
        load_config(path, {})
    assert [(p.line, p.column) for p in failure.value.errors] == [(3, 9), (7, 33), (8, 5), (9, 3)]


def test_warnings_literal_secrets(write_config: WriteConfig) -> None:
    path = write_config(f"""
        version: 1
        server:
          secret_key: {SECRET_KEY}
        workspaces:
          a:
            openapi: ./s.json
            auth: {{type: api_key, value: literal-key}}
            inbound:
              api_keys: [literal-inbound, "${{env:K}}"]
            tools: [x]
        """)
    loaded = load_config(path, {"K": "k"})
    assert [(w.line, w.column, w.severity) for w in loaded.warnings] == [(3, 15, "warning"), (7, 34, "warning"),
                                                                          (9, 18, "warning")]
    assert loaded.warnings[0].message.startswith("`secret_key` is written literally in the config")
    assert loaded.warnings[1].message.startswith("`value` is written literally")
    assert loaded.warnings[2].message.startswith("inbound api key 1 is written literally")


@pytest.mark.parametrize(
    ("host", "auth", "inbound", "warned"),
    [
        ("0.0.0.0", '{type: bearer, token: "${env:T}"}', False, True),
        ("0.0.0.0", "{type: none}", False, True),
        ("0.0.0.0", '{type: bearer, token: "${env:T}"}', True, False),
        ("127.0.0.1", '{type: bearer, token: "${env:T}"}', False, False),
        ("localhost", "{type: none}", False, False),
        ("::1", "{type: none}", False, False),
    ],
)
def test_shared_credential_without_inbound_on_a_public_host_warns(
    write_config: WriteConfig, host: str, auth: str, inbound: bool, warned: bool
) -> None:
    inbound_line = '    inbound: {api_keys: ["${env:T}"]}\n' if inbound else ""
    path = write_config(
        f"version: 1\nserver: {{host: '{host}'}}\nworkspaces:\n  api:\n    openapi: ./s.json\n"
        f"    auth: {auth}\n{inbound_line}    tools: [x]\n"
    )
    warnings = [str(w) for w in load_config(path, {"T": "t"}).warnings]
    expected = f"{path.absolute()}:4:3: warning: workspace 'api' uses "
    assert any(w.startswith(expected) and "add `inbound.api_keys`" in w for w in warnings) is warned


def test_per_user_oauth_on_a_public_host_does_not_warn_about_inbound(write_config: WriteConfig) -> None:
    text = OAUTH_CONFIG.replace("server:\n", "server:\n  host: 0.0.0.0\n")
    loaded = load_config(write_config(text), {"CASTPROXY_TEST_KEY": SECRET_KEY, "CLIENT_SECRET": "x"})
    assert loaded.warnings == []


def test_resolve_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("cast.yaml")
    monkeypatch.setenv("CASTPROXY_CONFIG", "/etc/castproxy/cast.yaml")
    assert resolve_config_path(None) == Path("/etc/castproxy/cast.yaml")
    assert resolve_config_path("mine.yaml") == Path("mine.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config(tmp_path / "absent.yaml", {})
    assert str(failure.value) == f"{tmp_path / 'absent.yaml'}:1:1: config file not found"


def test_windows_line_endings_and_a_byte_order_mark_keep_positions(tmp_path: Path) -> None:
    path = tmp_path / "cast.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\r\nworkspaces:\r\n  api:\r\n    openapi: ./s.json\r\n    tools: {}\r\n")
    with pytest.raises(ConfigError) as failure:
        load_config(path, {})
    assert [(p.line, p.column) for p in failure.value.errors] == [(5, 12)]


def test_refresh_of_a_spec_file_is_a_warning(write_config: WriteConfig) -> None:
    path = write_config("""\
        version: 1
        workspaces:
          api:
            openapi: ./api.json
            refresh: 10m
            tools: [x]
          remote:
            openapi: https://api.example.com/openapi.json
            refresh: 1h
            tools: [x]
        """)
    loaded = load_config(path, {})
    assert loaded.config.workspaces["api"].refresh == 600 and loaded.config.workspaces["remote"].refresh == 3600
    assert [str(w).split(": ", 1)[1] for w in loaded.warnings] == [
        "warning: `refresh` applies to a spec URL; a spec file is watched and reloads when it changes, "
        "so remove `refresh` here"
    ]


def test_secret_files_read_are_reported(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0k\n")
    path = write_config("""\
        version: 1
        workspaces:
          api:
            openapi: ./api.json
            auth: {type: bearer, token: "${file:token}"}
            inbound:
              api_keys: ["${file:missing-key}"]
            tools: [x]
        """)
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    assert raised.value.files == {path.parent / "token", path.parent / "missing-key"}  # the missing one too
    (tmp_path / "missing-key").write_text("k")
    assert load_config(path, {}).secret_files == {path.parent / "token", path.parent / "missing-key"}
