"""Issue 11, finding 6: an upstream that echoes the request's headers cannot hand castproxy's upstream credential
(or any configured secret) to the MCP client. castproxy knows every credential it sent: tool results and
error texts carry `[redacted]` instead, on the fast path and through the SDK alike.

The echoing upstream answers a 4xx whose text quotes the Authorization header, a 2xx JSON body with every
header, a long body whose cut falls inside a credential, and whatever text it is asked to say.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import MODES, mcp_client, run
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from support.net import free_socket
from support.servers import Running

from castproxy.serve.fastpath import ENV_SWITCH

BEARER = "upstream-bearer-secret-0123456789"
API_KEY = "api-key-secret-abcdef123456"
INBOUND = "inbound-key-secret-0987654321"
CUT_AT = 2048  # max_response_bytes of the workspaces


def echo_app() -> Starlette:
    async def refused(request: Request) -> Response:
        return PlainTextResponse(f"invalid credentials: Authorization: {request.headers.get('authorization')}", 401)

    async def headers(request: Request) -> Response:
        return JSONResponse({"headers": dict(request.headers), "note": "all of them"})

    async def long(request: Request) -> Response:
        # The credential straddles the cut: its first half would be the last bytes of the result.
        secret = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        head = "x" * (CUT_AT - len(secret) // 2)
        return PlainTextResponse(head + secret + "y" * 100)

    async def say(request: Request) -> Response:
        return PlainTextResponse(f"you said: {request.query_params.get('text', '')}", 400)

    return Starlette(
        routes=[
            Route("/refused", refused),
            Route("/headers", headers),
            Route("/long", long),
            Route("/say", say),
        ]
    )


def _op(op_id: str, **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "responses": {"200": {"description": "ok"}}, **extra}


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Echo", "version": "1"},
    "paths": {
        "/refused": {"get": _op("refused")},
        "/headers": {"get": _op("headers")},
        "/long": {"get": _op("long")},
        "/say": {"get": _op("say", parameters=[{"name": "text", "in": "query", "schema": {"type": "string"}}])},
    },
}


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The same config served twice: with the fast path ("fast") and everything through the SDK ("sdk")."""
    from castproxy.serve.app import create_app

    upstream = run(echo_app())
    started: list[Running] = [upstream]
    urls = {}
    saved = {name: os.environ.get(name) for name in (ENV_SWITCH, "ECHO_BEARER", "ECHO_KEY", "ECHO_INBOUND")}
    os.environ.update({"ECHO_BEARER": BEARER, "ECHO_KEY": API_KEY, "ECHO_INBOUND": INBOUND})
    try:
        for kind in ("fast", "sdk"):
            folder: Path = tmp_path_factory.mktemp(kind)
            (folder / "spec.json").write_text(json.dumps(SPEC))
            common = f"    openapi: spec.json\n    base_url: {upstream.url}\n    max_response_bytes: {CUT_AT}\n"
            tools = "    tools: [refused, headers, long, say]\n"
            (folder / "cast.yaml").write_text(
                "version: 1\nstore:\n  path: state.db\nworkspaces:\n"
                f"  bearer:\n{common}    auth: {{type: bearer, token: \"${{env:ECHO_BEARER}}\"}}\n"
                f"    inbound: {{api_keys: [\"${{env:ECHO_INBOUND}}\"]}}\n{tools}"
                f"  apikey:\n{common}    auth: {{type: api_key, header: X-Api-Key, value: \"${{env:ECHO_KEY}}\"}}\n"
                f"{tools}"
            )
            os.environ[ENV_SWITCH] = "on" if kind == "fast" else "off"
            sock = free_socket()
            app = create_app(folder / "cast.yaml", reload=False, port_override=sock.getsockname()[1])
            started.append(run(app, sock))
            urls[kind] = started[-1].url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield urls
    for running in started:
        running.stop()


def _everything(result: Any) -> str:
    return result.model_dump_json()


@pytest.mark.parametrize("path", ["fast", "sdk"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("workspace", "secret"), [("bearer", BEARER), ("apikey", API_KEY)])
async def test_echoed_credentials_are_masked(
    proxies: dict[str, str], path: str, mode: str, workspace: str, secret: str
) -> None:
    headers = {"Authorization": f"Bearer {INBOUND}"} if workspace == "bearer" else {}
    async with mcp_client(f"{proxies[path]}/mcp/{workspace}", mode, headers) as client:
        refused = await client.call_tool("refused", {})
        echoed = await client.call_tool("headers", {})
        long = await client.call_tool("long", {})
        said = await client.call_tool("say", {"text": f"my key is {INBOUND}!"})
    for result in (refused, echoed, long, said):
        dumped = _everything(result)
        assert secret not in dumped
        assert secret[: len(secret) // 2] not in dumped  # not even the half before a cut
        assert INBOUND not in dumped
    assert refused.is_error
    if workspace == "bearer":
        assert "invalid credentials: Authorization: Bearer [redacted]" in refused.content[0].text
    # The 2xx JSON is still JSON, with the value masked in place.
    assert echoed.structured_content is not None
    sent = echoed.structured_content["headers"]["authorization" if workspace == "bearer" else "x-api-key"]
    assert sent == ("Bearer [redacted]" if workspace == "bearer" else "[redacted]")
    assert echoed.structured_content["note"] == "all of them"
    assert "you said: my key is [redacted]!" in said.content[0].text


async def test_both_paths_answer_the_same(proxies: dict[str, str]) -> None:
    answers = []
    for path in ("fast", "sdk"):
        async with mcp_client(f"{proxies[path]}/mcp/apikey", "legacy") as client:
            answers.append(_everything(await client.call_tool("headers", {})))
    fast, sdk = (json.loads(answer) for answer in answers)
    for answer in (fast, sdk):  # the echo carries per-connection headers (host port): compare the masked value
        answer["structured_content"]["headers"] = answer["structured_content"]["headers"]["x-api-key"]
        answer["content"] = None
    assert fast == sdk
