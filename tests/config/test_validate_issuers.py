"""`validate` (online) checks each oauth2 `issuer`'s discovery metadata and says what is missing, at its FILE:LINE:COL.

Issuers are real servers on loopback: the bundled test server in oauth mode (complete RFC 8414
metadata), a Starlette app serving chosen metadata documents, and a port nothing listens on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.net import free_port
from support.servers import Running, run

from castproxy.cli import main
from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

WriteConfig = Callable[[str], Path]


def config_text(issuer: str, *, extra: str = "", provider: str = "custom") -> str:
    return f"""\
version: 1
server:
  secret_key: "${{env:ISSUER_TEST_KEY}}"
workspaces:
  items:
    openapi: ./spec.json
    auth:
      type: oauth2
      provider: {provider}
      issuer: {issuer}
      client_id: castproxy
      client_secret: "${{env:ISSUER_TEST_SECRET}}"
{extra}    tools: [listItems]
"""


ISSUER_LINE, ISSUER_COLUMN = 10, 15  # where `issuer:`'s value sits in config_text


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch, write_spec: Callable[..., Path]) -> None:
    monkeypatch.setenv("ISSUER_TEST_SECRET", "s3cret")
    monkeypatch.setenv("ISSUER_TEST_KEY", "k" * 40)
    write_spec("listItems")


@pytest.fixture
def metadata_server() -> Iterator[Callable[[dict[str, Any] | None], str]]:
    """An issuer at a loopback URL serving the given RFC 8414 document at every well-known URL (None: 404)."""
    running: list[Running] = []

    def start(document: dict[str, Any] | None) -> str:
        state: dict[str, Any] = {}

        async def metadata(request: Request) -> Response:
            if state["document"] is None or "/.well-known/" not in request.url.path:
                return Response(status_code=404)
            return JSONResponse(state["document"])

        server = run(Starlette(routes=[Route("/{path:path}", metadata)]))
        running.append(server)
        state["document"] = None if document is None else {"issuer": server.url, **document}
        return server.url

    yield start
    for server in running:
        server.stop()


def validate(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["validate", "-c", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_complete_metadata_passes(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    upstream = run_in_thread(create_testserver("oauth"))
    try:
        code, out = validate(write_config(config_text(upstream.url)), capsys)
    finally:
        upstream.stop()
    assert code == 0, out
    assert "valid (1 workspace)" in out


def test_an_unreachable_issuer_is_an_error_at_its_position_naming_what_was_tried(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/realms/acme"
    path = write_config(config_text(issuer))
    code, out = validate(path, capsys)
    assert code == 1
    base = issuer.rsplit("/realms", 1)[0]
    assert out.splitlines()[0] == (
        f"{path}:{ISSUER_LINE}:{ISSUER_COLUMN}: no discovery metadata for issuer {issuer} ("
        f"{base}/.well-known/oauth-authorization-server/realms/acme: cannot connect (connection refused or host "
        f"not found); {issuer}/.well-known/openid-configuration: cannot connect (connection refused or host not "
        "found)); castproxy needs it for auth.token_url, auth.authorization_url: serve RFC 8414 or OpenID Connect "
        "metadata there, or set those fields"
    )
    assert validate(path, capsys, "--offline")[0] == 0  # --offline fetches nothing


def test_an_issuer_without_metadata_is_only_a_warning_when_every_endpoint_is_set(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], metadata_server: Callable[..., str]
) -> None:
    issuer = metadata_server(None)
    extra = f"      authorization_url: {issuer}/authorize\n      token_url: {issuer}/token\n"
    code, out = validate(write_config(config_text(issuer, extra=extra)), capsys)
    assert code == 0, out
    assert f"warning: no discovery metadata for issuer {issuer} (" in out
    assert "/.well-known/oauth-authorization-server: HTTP 404" in out
    assert "every endpoint is set, but sign-in answers are checked against this issuer only" in out


def test_metadata_missing_an_endpoint_names_it_and_the_field_to_set(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], metadata_server: Callable[..., str]
) -> None:
    issuer = metadata_server({"authorization_endpoint": "http://127.0.0.1:9/authorize"})
    path = write_config(config_text(issuer))
    code, out = validate(path, capsys)
    assert code == 1
    assert (f"{path}:{ISSUER_LINE}:{ISSUER_COLUMN}: the metadata of issuer {issuer} "
            f"({issuer}/.well-known/oauth-authorization-server) has no token_endpoint: set auth.token_url") in out

    dcr = write_config(config_text(issuer, provider="dcr", extra=f"      token_url: {issuer}/token\n"))
    code, out = validate(dcr, capsys)
    assert code == 1 and "has no registration_endpoint: set auth.registration_url" in out


def test_metadata_naming_another_issuer_or_lacking_s256(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], metadata_server: Callable[..., str]
) -> None:
    issuer = metadata_server({"authorization_endpoint": "http://127.0.0.1:9/a", "token_endpoint": "http://127.0.0.1:9/t",
                              "code_challenge_methods_supported": ["plain"]})
    code, out = validate(write_config(config_text(issuer)), capsys)
    assert code == 0, out
    assert f"warning: issuer {issuer} announces PKCE methods plain but not S256" in out

    code, out = validate(write_config(config_text(issuer + "/other")), capsys)
    assert code == 1
    assert f"names '{issuer}', not this issuer (RFC 8414 §3.3: they must be identical)" in out
