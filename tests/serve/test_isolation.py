"""One workspace that cannot be built never takes the others down: it is degraded, says why, and recovers alone.

Real parts: the proxy and the upstream under uvicorn on loopback, a spec URL on a port where nothing
listens until the test starts a server there, the `mcp` SDK client. Retries use a short backoff
(create_app's `retry`), and every wait polls with a deadline.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from serve_support import MODERN, SPEC, mcp_client, run, wait_until, write_spec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import web
from support.net import free_port, free_socket
from support.servers import Running
from support.spec_host import SpecHost, serve_spec

from castproxy.serve.app import create_app
from castproxy.serve.recovery import Backoff

FAST = Backoff(initial=0.05, maximum=0.2)
SECRET_KEY = "isolation-secret-key-0123456789abcdef"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
          "MCP-Protocol-Version": "2025-11-25"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}}


def workspace(name: str, openapi: str, upstream: str, extra: str = "") -> str:
    return f"  {name}:\n    openapi: {openapi}\n    base_url: {upstream}\n{extra}    tools: [listItems, getItem]\n"


def write_config(folder: Path, *blocks: str, server: str = "") -> Path:
    path = folder / "cast.yaml"
    path.write_text("version: 1\nserver:\n  host: 127.0.0.1\n" + server + "store:\n  path: state.db\nworkspaces:\n"
                    + "".join(blocks))
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Any]]]:
    started: list[Running] = []

    def start(config: Path) -> tuple[str, Any]:
        sock = free_socket()
        app = create_app(config, port_override=sock.getsockname()[1], retry=FAST)
        running = run(app, sock)
        started.append(running)
        return running.url, app

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def hosts() -> Iterator[Callable[[SpecHost, int], Running]]:
    started: list[Running] = []

    def start(host: SpecHost, port: int = 0) -> Running:
        running = serve_spec(host, port)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


async def tool_names(url: str) -> list[str]:
    async with mcp_client(url, MODERN) as client:
        return [tool.name for tool in (await client.list_tools()).tools]


async def serves(url: str) -> bool:
    try:
        return bool(await tool_names(url))
    except Exception:
        return False


async def test_one_unreachable_spec_is_degraded_the_other_serves_and_it_recovers_alone(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], hosts: Any
) -> None:
    write_spec(tmp_path)
    port = free_port()  # nothing listens here yet
    spec_url = f"http://127.0.0.1:{port}/openapi.json"
    config = write_config(tmp_path, workspace("healthy", "spec.json", upstream[1]),
                          workspace("remote", spec_url, upstream[1]))
    url, _ = serve(config)

    assert await tool_names(f"{url}/mcp/healthy") == ["listItems", "getItem"]

    answer = web.post(f"{url}/mcp/remote", json=INITIALIZE, headers=ACCEPT)
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) >= 1
    error = answer.json()["error"]  # a JSON-RPC error body, which MCP clients show as is
    assert answer.json()["id"] == 1 and error["data"]["error"] == "workspace_unavailable"
    assert f"http://127.0.0.1:{port}/openapi.json: cannot fetch the spec (ConnectError" in error["data"]["reason"]
    assert error["message"].startswith("workspace 'remote' is not available: http://127.0.0.1:")
    assert str(config) not in error["message"]  # the client gets the reason, not the proxy's file paths
    plain = web.get(f"{url}/mcp/remote", headers={"Accept": "application/json"})
    assert plain.status_code == 503 and plain.json()["error"] == "workspace_unavailable"

    # Where the protocol has room for it (a tool call), the reason comes back as a tool result.
    called = web.post(f"{url}/mcp/remote", json=CALL, headers=ACCEPT)
    assert called.status_code == 200
    result = called.json()["result"]
    assert result["isError"] is True and "cannot fetch the spec" in result["content"][0]["text"]

    ready = web.get(f"{url}/readyz")
    assert ready.status_code == 200  # one degraded workspace does not pull the pod out of its Service
    report = ready.json()
    assert report["status"] == "degraded"
    assert report["workspaces"]["healthy"] == {"state": "serving"}
    remote = report["workspaces"]["remote"]
    assert remote["state"] == "degraded" and "next_retry_in_s" in remote
    assert re.match(rf"{re.escape(str(config))}:\d+:\d+: .*cannot fetch the spec", remote["problems"][0])

    # The spec's server comes up: the workspace is served without a signal or an edit.
    hosts(SpecHost(SPEC), port)
    await wait_until(lambda: serves(f"{url}/mcp/remote"), timeout=10)
    assert await tool_names(f"{url}/mcp/remote") == ["listItems", "getItem"]
    async with mcp_client(f"{url}/mcp/remote", MODERN) as client:
        assert not (await client.call_tool("getItem", {"id": "1"})).is_error
    report = web.get(f"{url}/readyz").json()
    assert report["status"] == "ready" and report["workspaces"]["remote"] == {"state": "serving"}


async def test_proxy_is_unready_only_when_no_workspace_serves(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]]
) -> None:
    config = write_config(tmp_path, workspace("gone", f"http://127.0.0.1:{free_port()}/openapi.json", upstream[1]))
    url, _ = serve(config)
    ready = web.get(f"{url}/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unready" and ready.json()["workspaces"]["gone"]["state"] == "degraded"
    assert web.get(f"{url}/healthz").status_code == 200


async def test_degraded_workspace_still_checks_its_inbound_key(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOLATION_KEY", "isolation-inbound-key")
    extra = "    inbound:\n      api_keys: [\"${env:ISOLATION_KEY}\"]\n"
    config = write_config(tmp_path, workspace("keyed", f"http://127.0.0.1:{free_port()}/x.json", upstream[1], extra))
    url, _ = serve(config)
    assert web.post(f"{url}/mcp/keyed", json=INITIALIZE, headers=ACCEPT).status_code == 401
    keyed = {**ACCEPT, "Authorization": "Bearer isolation-inbound-key"}
    assert web.post(f"{url}/mcp/keyed", json=INITIALIZE, headers=keyed).status_code == 503


async def test_a_spec_that_does_not_compile_degrades_only_its_workspace(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]]
) -> None:
    write_spec(tmp_path)
    (tmp_path / "broken.json").write_text('{"openapi": "3.1.0", "paths": ')
    config = write_config(tmp_path, workspace("healthy", "spec.json", upstream[1]),
                          workspace("broken", "broken.json", upstream[1]))
    url, _ = serve(config)
    assert await tool_names(f"{url}/mcp/healthy") == ["listItems", "getItem"]
    answer = web.post(f"{url}/mcp/broken", json=INITIALIZE, headers=ACCEPT)
    assert answer.status_code == 503 and "not valid JSON" in answer.json()["error"]["data"]["reason"]
    # Fixing the file is picked up (by the watcher or the next retry, whichever comes first).
    (tmp_path / "broken.json").write_text(json.dumps(SPEC))
    await wait_until(lambda: serves(f"{url}/mcp/broken"), timeout=10)


async def test_remote_spec_that_breaks_on_reload_keeps_the_last_good_copy(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], hosts: Any
) -> None:
    host = SpecHost(SPEC)
    spec_url = hosts(host).url + "/openapi.json"
    config = write_config(tmp_path, workspace("remote", spec_url, upstream[1]))
    url, _ = serve(config)
    assert await tool_names(f"{url}/mcp/remote") == ["listItems", "getItem"]
    host.change(raw=b"<html>maintenance</html>")
    config.write_text(config.read_text() + "\n")  # any edit reloads (and re-fetches the spec)
    await wait_until(lambda: "spec" in web.get(f"{url}/readyz").json()["workspaces"]["remote"], timeout=10)
    assert await tool_names(f"{url}/mcp/remote") == ["listItems", "getItem"]
    state = web.get(f"{url}/readyz").json()["workspaces"]["remote"]
    assert state["state"] == "serving" and state["spec"]["from"] == "cache"
    assert any("not an OpenAPI document" in problem for problem in state["problems"])
    host.change(SPEC)  # fixed upstream: the background retry serves the fresh spec again
    await wait_until(lambda: web.get(f"{url}/readyz").json()["status"] == "ready", timeout=10)


def metadata_app(issuer: dict[str, str], published: dict[str, bool]) -> Starlette:
    async def metadata(request: Request) -> Response:
        if not published["yes"]:
            return Response(status_code=404)
        base = issuer["url"]
        return JSONResponse({"issuer": base, "authorization_endpoint": f"{base}/authorize",
                             "token_endpoint": f"{base}/token"})

    return Starlette(routes=[Route("/.well-known/oauth-authorization-server", metadata)])


async def test_undiscoverable_oauth_metadata_degrades_the_workspace_until_it_appears(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ISOLATION_SECRET_KEY", SECRET_KEY)
    issuer: dict[str, str] = {}
    published = {"yes": False}
    idp = run(metadata_app(issuer, published))
    issuer["url"] = idp.url
    try:
        write_spec(tmp_path)
        auth = (f"    auth:\n      type: oauth2\n      issuer: {idp.url}\n      client_id: cid\n"
                "      client_secret: ${env:ISOLATION_SECRET_KEY}\n")
        config = write_config(tmp_path, workspace("signed", "spec.json", upstream[1], auth),
                              workspace("open", "spec.json", upstream[1]),
                              server="  secret_key: ${env:ISOLATION_SECRET_KEY}\n")
        url, _ = serve(config)
        assert await tool_names(f"{url}/mcp/open") == ["listItems", "getItem"]
        answer = web.post(f"{url}/mcp/signed", json=INITIALIZE, headers=ACCEPT)
        assert answer.status_code == 503
        reason = answer.json()["error"]["data"]["reason"]
        assert f"no metadata for issuer {idp.url}" in reason and "HTTP 404" in reason
        published["yes"] = True
        # Served again: an MCP request now gets the sign-in challenge instead of the 503.
        await wait_until(lambda: web.post(f"{url}/mcp/signed", json=INITIALIZE, headers=ACCEPT).status_code == 401,
                         timeout=10)
    finally:
        idp.stop()


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_mcp_clients_see_the_reason(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], mode: str
) -> None:
    config = write_config(tmp_path, workspace("gone", f"http://127.0.0.1:{free_port()}/openapi.json", upstream[1]))
    url, _ = serve(config)
    with pytest.raises(BaseException) as raised:
        async with mcp_client(f"{url}/mcp/gone", mode) as client:
            await client.list_tools()

    def flat(exc: BaseException) -> list[BaseException]:
        return [e for inner in exc.exceptions for e in flat(inner)] if isinstance(exc, BaseExceptionGroup) else [exc]

    error = next(exc for exc in flat(raised.value) if isinstance(exc, MCPError))
    assert "workspace 'gone' is not available" in str(error) and "cannot fetch the spec" in str(error)


async def test_a_reload_adding_a_broken_workspace_applies_the_rest(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], hosts: Any
) -> None:
    write_spec(tmp_path)
    config = write_config(tmp_path, workspace("healthy", "spec.json", upstream[1]))
    url, _ = serve(config)
    port = free_port()
    write_config(tmp_path, workspace("healthy", "spec.json", upstream[1]),
                 workspace("added", "spec.json", upstream[1]),
                 workspace("late", f"http://127.0.0.1:{port}/openapi.json", upstream[1]))
    # Valid as a whole: applied, with `late` degraded.
    await wait_until(lambda: serves(f"{url}/mcp/added"), timeout=10)
    assert web.post(f"{url}/mcp/late", json=INITIALIZE, headers=ACCEPT).status_code == 503
    assert web.get(f"{url}/readyz").json()["workspaces"]["late"]["state"] == "degraded"
    hosts(SpecHost(SPEC), port)
    await wait_until(lambda: serves(f"{url}/mcp/late"), timeout=10)


async def test_a_background_retry_does_not_hide_a_rejected_edit(
    tmp_path: Path, upstream: tuple[Any, str], serve: Callable[..., tuple[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    write_spec(tmp_path)
    gone = workspace("gone", f"http://127.0.0.1:{free_port()}/openapi.json", upstream[1])
    config = write_config(tmp_path, workspace("healthy", "spec.json", upstream[1]), gone)
    url, _ = serve(config)
    loaded_at = web.get(f"{url}/readyz").json()["config"]["loaded_at"]
    config.write_text(config.read_text().replace("version: 1", "version: 7"))
    await wait_until(lambda: "last_reload" in web.get(f"{url}/readyz").json(), timeout=10)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="castproxy.serve.reload"):
        # Background retries of `gone` keep installing snapshots meanwhile.
        await wait_until(lambda: sum(r.getMessage() == "workspace still degraded" for r in caplog.records) >= 2,
                         timeout=10)
    body = web.get(f"{url}/readyz").json()
    assert "version" in " ".join(body["last_reload"]["errors"])  # the rejected edit is still reported
    assert body["config"]["loaded_at"] == loaded_at
