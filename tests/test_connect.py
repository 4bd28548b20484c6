"""`castproxy connect`: each client's snippet parses as the JSON (or command) that client expects."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from castproxy.cli import CLIENT_NAMES, main
from castproxy.connect import KEY_PLACEHOLDER, render

CONFIG = """\
version: 1
server:
  public_url: https://mcp.example.com
  secret_key: ${env:CONNECT_TEST_SECRET_KEY}
workspaces:
  test-oauth:
    openapi: ./spec.json
    auth:
      type: oauth2
      provider: custom
      authorization_url: https://auth.example.com/authorize
      token_url: https://auth.example.com/token
      client_id: test-client-id
      client_secret: ${env:CONNECT_TEST_CLIENT_SECRET}
      scopes: [read:items]
    tools: [listItems]
  keyed:
    openapi: ./spec.json
    auth: {type: bearer, token: "${env:CONNECT_TEST_TOKEN}"}
    inbound:
      api_keys: ["${env:CONNECT_TEST_MCP_KEY}"]
    tools: [listItems]
"""

URL = "https://mcp.example.com/mcp/test-oauth"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECT_TEST_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CONNECT_TEST_CLIENT_SECRET", "cs_secret_value")
    monkeypatch.setenv("CONNECT_TEST_TOKEN", "upstream-token-value")
    monkeypatch.setenv("CONNECT_TEST_MCP_KEY", "inbound-key-value-0123456789")
    monkeypatch.delenv("CASTPROXY_PUBLIC_URL", raising=False)
    (tmp_path / "spec.json").write_text('{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}')
    path = tmp_path / "cast.yaml"
    path.write_text(CONFIG)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["connect", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_claude_desktop_uses_mcp_remote(config, capsys):
    code, out, err = run(capsys, "test-oauth", "-c", str(config))
    assert code == 0
    assert json.loads(out) == {"mcpServers": {"test-oauth": {
        "command": "npx", "args": ["-y", "mcp-remote@latest", URL]}}}
    assert "claude_desktop_config.json" in err


def test_oauth_workspace_prints_the_redirect_uri_to_register(config, capsys):
    _, out, err = run(capsys, "test-oauth", "-c", str(config), "--client", "cursor")
    assert "https://mcp.example.com/oauth/callback" in err
    assert "oauth/callback" not in out
    assert "cs_secret_value" not in out + err


@pytest.mark.parametrize(("client", "expected"), [
    ("cursor", {"mcpServers": {"test-oauth": {"url": URL}}}),
    ("windsurf", {"mcpServers": {"test-oauth": {"serverUrl": URL}}}),
    ("cline", {"mcpServers": {"test-oauth": {"type": "streamableHttp", "url": URL, "disabled": False}}}),
    ("vscode", {"servers": {"test-oauth": {"type": "http", "url": URL}}}),
])
def test_native_remote_entries(config, capsys, client, expected):
    code, out, _ = run(capsys, "test-oauth", "-c", str(config), "--client", client)
    assert code == 0 and json.loads(out) == expected


def test_claude_code_is_one_command(config, capsys):
    code, out, _ = run(capsys, "test-oauth", "-c", str(config), "--client", "claude-code")
    assert code == 0
    assert shlex.split(out) == ["claude", "mcp", "add", "--transport", "http", "test-oauth", URL]


def test_a_workspace_with_inbound_keys_gets_a_header_placeholder_never_the_key(config, capsys):
    for client in CLIENT_NAMES:
        code, out, err = run(capsys, "keyed", "-c", str(config), "--client", client)
        assert code == 0
        assert "inbound-key-value" not in out + err
        assert KEY_PLACEHOLDER in out, client
    _, out, _ = run(capsys, "keyed", "-c", str(config), "--client", "vscode")
    assert json.loads(out)["servers"]["keyed"]["headers"] == {"Authorization": f"Bearer {KEY_PLACEHOLDER}"}
    _, out, _ = run(capsys, "keyed", "-c", str(config), "--client", "claude-desktop")
    entry = json.loads(out)["mcpServers"]["keyed"]
    assert entry["args"][-2:] == ["--header", "Authorization:${MCP_AUTH_HEADER}"]
    assert entry["env"] == {"MCP_AUTH_HEADER": f"Bearer {KEY_PLACEHOLDER}"}


def test_unknown_workspace_exits_1_naming_the_known_ones(config, capsys):
    code, out, err = run(capsys, "nope", "-c", str(config))
    assert code == 1 and out == ""
    assert "no workspace 'nope'" in err and "keyed, test-oauth" in err


def test_an_invalid_config_exits_1_with_positions(tmp_path, capsys):
    path = tmp_path / "cast.yaml"
    path.write_text("version: 2\nworkspaces: {}\n")
    code, out, err = run(capsys, "x", "-c", str(path))
    assert code == 1 and out == ""
    assert f"{path}:1:" in err


def test_public_url_env_override_is_used(config, capsys, monkeypatch):
    monkeypatch.setenv("CASTPROXY_PUBLIC_URL", "https://other.example.com")
    _, out, _ = run(capsys, "test-oauth", "-c", str(config), "--client", "cursor")
    assert json.loads(out)["mcpServers"]["test-oauth"]["url"] == "https://other.example.com/mcp/test-oauth"


def test_mcp_remote_gets_allow_http_only_off_localhost():
    local = json.loads(render("claude-desktop", "w", "http://localhost:8080/mcp/w").text)
    assert "--allow-http" not in local["mcpServers"]["w"]["args"]
    remote = render("claude-desktop", "w", "http://10.0.0.5:8080/mcp/w")
    assert json.loads(remote.text)["mcpServers"]["w"]["args"][-1] == "--allow-http"
    assert any("https" in note for note in remote.notes)


def test_a_login_workspace_says_who_logs_in_and_never_the_credentials(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONNECT_TEST_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CONNECT_TEST_PASSWORD", "pw-connect-canary")
    (tmp_path / "spec.json").write_text('{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}')
    path = tmp_path / "cast.yaml"
    path.write_text("""\
version: 1
server: {secret_key: "${env:CONNECT_TEST_SECRET_KEY}"}
workspaces:
  jwt:
    openapi: ./spec.json
    auth:
      type: login
      login_url: https://api.example.com/login?tenant=${env:CONNECT_TEST_PASSWORD}
      credentials: {password: "${env:CONNECT_TEST_PASSWORD}"}
    tools: [listItems]
""")
    code, out, err = run(capsys, "jwt", "-c", str(path))
    assert code == 0 and "mcp-remote" in out
    assert "castproxy logs in at api.example.com with the workspace's credentials" in err
    assert "pw-connect-canary" not in out + err


SECRET_VARIABLES = (
    "CONNECT_TEST_SECRET_KEY", "CONNECT_TEST_CLIENT_SECRET", "CONNECT_TEST_TOKEN", "CONNECT_TEST_MCP_KEY",
)


@pytest.mark.parametrize("workspace", ["test-oauth", "keyed"])
def test_connect_and_tools_need_no_secret_exported(config, capsys, monkeypatch, workspace):
    """A first-run trap: printing a snippet or listing tools used to demand every ${env:} secret."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name)
    (config.parent / "spec.json").write_text(json.dumps({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "servers": [{"url": "https://api.example.com"}],
        "paths": {"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}}}))
    code, out, err = run(capsys, workspace, "-c", str(config), "--client", "cursor")
    assert code == 0, err
    assert json.loads(out)["mcpServers"][workspace]["url"] == f"https://mcp.example.com/mcp/{workspace}"
    assert main(["tools", workspace, "-c", str(config), "--json"]) == 0, capsys.readouterr().err
    assert [tool["name"] for tool in json.loads(capsys.readouterr().out)["tools"]] == ["listItems"]


def test_references_that_are_not_secrets_must_still_resolve(config, capsys, monkeypatch):
    config.write_text(CONFIG.replace("https://mcp.example.com", "${env:CONNECT_TEST_PUBLIC_URL}"))
    code, out, err = run(capsys, "test-oauth", "-c", str(config))
    assert code == 1 and out == ""
    assert "environment variable CONNECT_TEST_PUBLIC_URL is not set" in err
