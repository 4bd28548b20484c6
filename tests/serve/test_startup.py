"""serve/startup.py: when public_url disagrees with where castproxy listens, and the log settings' sources."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from castproxy.config.loader import load_config
from castproxy.serve.startup import StartupError, address_warnings, bind_listener, log_settings


def _warnings(tmp_path: Path, server: str, environ: dict[str, str] | None = None, **options: bool) -> list[str]:
    (tmp_path / "spec.json").write_text('{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}')
    path = tmp_path / "cast.yaml"
    path.write_text(f"version: 1\nserver:\n{server}workspaces:\n  api:\n    openapi: spec.json\n    tools: [x]\n")
    environ = environ or {}
    loaded = load_config(path, environ)
    return address_warnings(loaded, host_option=options.get("host", False), port_option=options.get("port", False),
                            environ=environ)


@pytest.mark.parametrize(
    ("server", "environ"),
    [
        ("  port: 8080\n", {}),  # no public_url: it follows host and port
        ("  public_url: https://mcp.example.com\n  port: 8080\n  host: 0.0.0.0\n", {}),  # behind a proxy on 443
        ("  public_url: http://localhost:9000\n  port: 9000\n", {}),
        ("  public_url: http://localhost:9000\n", {"CASTPROXY_PORT": "9000"}),
        ("  public_url: http://127.0.0.1:8080\n  host: 0.0.0.0\n", {}),
    ],
)
def test_agreeing_addresses_give_no_warning(tmp_path: Path, server: str, environ: dict[str, str]) -> None:
    assert _warnings(tmp_path, server, environ) == []


def test_each_disagreement_names_its_source(tmp_path: Path) -> None:
    [port] = _warnings(tmp_path, "  public_url: http://localhost:8080\n", {"CASTPROXY_PORT": "9090"})
    assert port.startswith("castproxy listens on port 9090 (CASTPROXY_PORT) but server.public_url is "
                           "http://localhost:8080: OAuth metadata, WWW-Authenticate and sign-in redirects send "
                           "clients to port 8080")
    [explicit] = _warnings(tmp_path, "  public_url: https://mcp.example.com:8443\n  port: 8080\n  host: 0.0.0.0\n")
    assert "(server.port)" in explicit and "port 8443" in explicit
    [host] = _warnings(tmp_path, "  public_url: https://mcp.example.com\n  port: 443\n",
                       {"CASTPROXY_PUBLIC_URL": "https://mcp.example.com", "CASTPROXY_HOST": "127.0.0.1"})
    assert host.startswith("castproxy listens on 127.0.0.1 (CASTPROXY_HOST) but CASTPROXY_PUBLIC_URL is "
                           "https://mcp.example.com: other machines cannot reach it")


def test_log_settings_come_from_options_then_environment() -> None:
    assert log_settings(None, None, {}).level == logging.INFO
    assert log_settings("error", None, {"CASTPROXY_LOG_LEVEL": "debug"}).level == logging.ERROR
    settings = log_settings(None, None, {"CASTPROXY_LOG_LEVEL": "Warning", "CASTPROXY_LOG_FORMAT": "TEXT"})
    assert (settings.level, settings.format) == (logging.WARNING, "text")
    with pytest.raises(StartupError, match="CASTPROXY_LOG_FORMAT: unknown log format 'xml'"):
        log_settings(None, None, {"CASTPROXY_LOG_FORMAT": "xml"})


def test_binding_an_address_this_machine_lacks_says_so() -> None:
    with pytest.raises(StartupError, match="this machine has no such address; set --host"):
        bind_listener("192.0.2.1", 0)  # TEST-NET-1: never assigned locally
