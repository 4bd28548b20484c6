"""The MCP Inspector CLI (`mcp-inspector --cli`, `--transport http`) against `castproxy serve`.

The bundled test upstream runs in mode `apikey`; castproxy sends the upstream key (`auth: api_key`) and
asks callers for an inbound key, which the Inspector sends with `--header`. Every call goes through a
small recording pass-through in front of the proxy, so the tests see on the wire which protocol the
Inspector spoke: `--protocol-era legacy` (initialize, then 2025-11-25 requests) and `--protocol-era
modern` (the sessionless 2026-07-28 mode, no initialize). Needs scripts/fetch-node-tools; skips without
(fails on CI=true).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from conformance_upstream import DRIFT_BODY, conformance_upstream, write_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from support import web
from support.node import node22, package_bin
from support.serve_process import start_serve, stop_serve

from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

pytestmark = pytest.mark.node

UPSTREAM_KEY = "inspector-upstream-key-0123456789"
INBOUND_KEY = "inspector-inbound-key-0123456789"
TUTORIAL_TOOLS = ["listItems", "createItem", "listUsers", "getItem", "delete_item"]
DELETE_DESCRIPTION = "Delete one item by id (cannot be undone)."
ERAS = ["legacy", "modern"]
# With `output_schema: true` castproxy publishes each operation's response schema as the tool's output
# schema; the Inspector's client (the TypeScript SDK) validates structuredContent against it (ajv).
TYPED_CALLS = {
    "listItems": (),
    "searchItems": ("q=widget",),
    "getItem": ("id=1",),
    "listUsers": (),
    "getUser": ("id=2",),
    "getCurrentUser": (),  # nullable fields ("type": ["string", "null"], anyOf with null)
}
# Exit codes of the Inspector CLI: 0 ok, 3 authentication required, 5 the tool answered isError.
EXIT_AUTH_REQUIRED = 3
EXIT_TOOL_ERROR = 5


@dataclass
class Recorder:
    """A pass-through to the proxy that notes each request's JSON-RPC method and protocol header.

    Answers are relayed as they stream, so a long-lived answer (an event stream) would end when the
    Inspector hangs up, not when the proxy does; the proxy answers the legacy Inspector's GET with 405.
    """

    target: str
    seen: list[tuple[str, str | None, dict]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            body = await request.body()
            message = json.loads(body) if body else {}
            if isinstance(message, dict):
                self.seen.append((message.get("method", ""), request.headers.get("mcp-protocol-version"), message))
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            http = httpx2.AsyncClient(timeout=None, verify=web.TLS)
            outgoing = http.build_request(
                request.method, f"{self.target}{request.url.path}", headers=headers, content=body
            )
            answer = await http.send(outgoing, stream=True)

            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in answer.aiter_raw():
                        yield chunk
                finally:
                    await answer.aclose()
                    await http.aclose()

            kept = ("content-type", "www-authenticate", "mcp-session-id")
            passed = {k: v for k, v in answer.headers.items() if k.lower() in kept}
            return StreamingResponse(relay(), status_code=answer.status_code, headers=passed)

        return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])


@dataclass(frozen=True)
class Inspector:
    node: str
    cli: Path
    home: Path
    front_url: str  # the recording pass-through in front of the proxy
    upstream_url: str
    recorder: Recorder

    def run(
        self, era: str, *args: str, key: str | None = INBOUND_KEY, workspace: str = "items"
    ) -> subprocess.CompletedProcess[str]:
        mcp_url = f"{self.front_url}/mcp/{workspace}"
        command = [self.node, str(self.cli), "--cli", mcp_url, "--transport", "http", "--protocol-era", era]
        if key is not None:
            command += ["--header", f"Authorization: Bearer {key}"]
        command += ["--stored-auth-only", "--format", "json", *args]
        # HOME: the Inspector keeps a server catalog and OAuth state under ~/.mcp-inspector.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home)}
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)

    def call(self, era: str, tool: str, *arguments: str, workspace: str = "items") -> tuple[int, dict]:
        """tools/call with `--tool-arg key=value` pairs: (exit code, the CallToolResult)."""
        pairs = [item for argument in arguments for item in ("--tool-arg", argument)]
        done = self.run(era, "--method", "tools/call", "--tool-name", tool, *pairs, workspace=workspace)
        assert done.stdout, f"no result (exit {done.returncode}): {done.stderr}"
        return done.returncode, json.loads(done.stdout)["result"]

    def upstream(self, path: str) -> dict:
        """What the upstream itself answers (the key sent directly), to compare tool results with."""
        return web.get(f"{self.upstream_url}{path}", headers={"X-API-Key": UPSTREAM_KEY}).raise_for_status().json()


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inspector]:
    node = node22()
    cli = package_bin("@modelcontextprotocol/inspector", "mcp-inspector")
    upstream = run_in_thread(create_testserver("apikey", api_key=UPSTREAM_KEY))
    drifting = run_in_thread(conformance_upstream())
    folder = tmp_path_factory.mktemp("inspector")
    config = write_config(
        folder,
        f"""  items:
    openapi: {upstream.url}/openapi.json
    base_url: {upstream.url}
    auth: {{type: api_key, header: X-API-Key, value: "${{env:INSPECTOR_UPSTREAM_KEY}}"}}
    inbound:
      api_keys: ["${{env:INSPECTOR_INBOUND_KEY}}"]
    tools:
      - listItems
      - createItem
      - listUsers
      - getItem
      - operation: deleteItem
        name: delete_item
        description: {DELETE_DESCRIPTION}
  typed:
    openapi: {upstream.url}/openapi.json
    base_url: {upstream.url}
    auth: {{type: api_key, header: X-API-Key, value: "${{env:INSPECTOR_UPSTREAM_KEY}}"}}
    inbound:
      api_keys: ["${{env:INSPECTOR_INBOUND_KEY}}"]
    output_schema: true
    tools: [{", ".join(TYPED_CALLS)}]
  drift:
    openapi: {drifting.url}/openapi.json
    auth: {{type: none}}
    inbound:
      api_keys: ["${{env:INSPECTOR_INBOUND_KEY}}"]
    output_schema: true
    tools: [countThings]
""",
    )
    process, proxy_url = start_serve(
        config, {"INSPECTOR_UPSTREAM_KEY": UPSTREAM_KEY, "INSPECTOR_INBOUND_KEY": INBOUND_KEY}
    )
    recorder = Recorder(proxy_url)
    front = run_in_thread(recorder.app())
    try:
        yield Inspector(node, cli, folder / "home", front.url, upstream.url, recorder)
    finally:
        front.stop()
        log = stop_serve(process)
        upstream.stop()
        drifting.stop()
        assert UPSTREAM_KEY not in log and INBOUND_KEY not in log, "a key appeared in castproxy's log"


@pytest.mark.parametrize("era", ERAS)
def test_tools_list_shows_the_tutorial_tools(inspector: Inspector, era: str) -> None:
    inspector.recorder.seen.clear()
    # --strict: the Inspector's tool-schema portability check; an error-severity problem exits 6.
    done = inspector.run(era, "--method", "tools/list", "--strict")
    assert done.returncode == 0, done.stderr
    tools = {tool["name"]: tool for tool in json.loads(done.stdout)["result"]["tools"]}
    assert list(tools) == TUTORIAL_TOOLS
    assert tools["delete_item"]["description"] == DELETE_DESCRIPTION
    assert tools["getItem"]["inputSchema"]["required"] == ["id"]
    assert tools["listItems"]["annotations"]["readOnlyHint"] is True

    methods = [method for method, _, _ in inspector.recorder.seen]
    versions = {version for method, version, _ in inspector.recorder.seen if method != "initialize"}
    if era == "legacy":
        assert methods[0] == "initialize" and "tools/list" in methods, methods
        assert inspector.recorder.seen[0][2]["params"]["protocolVersion"] == "2025-11-25"
        assert versions == {"2025-11-25"}
    else:
        assert "initialize" not in methods and "tools/list" in methods, methods
        assert versions == {"2026-07-28"}


@pytest.mark.parametrize("era", ERAS)
def test_list_items_returns_the_upstream_items(inspector: Inspector, era: str) -> None:
    code, result = inspector.call(era, "listItems", "limit=2")
    assert code == 0 and result["isError"] is False, result
    assert result["structuredContent"] == inspector.upstream("/api/items?limit=2")
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


@pytest.mark.parametrize("era", ERAS)
def test_get_item_returns_the_upstream_item(inspector: Inspector, era: str) -> None:
    code, result = inspector.call(era, "getItem", "id=2")
    assert code == 0 and result["isError"] is False, result
    assert result["structuredContent"] == inspector.upstream("/api/items/2")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("limit=500",), "argument 'limit': 500 is greater than the maximum of 100"),
        ((), "missing required argument 'id'"),
    ],
    ids=["out-of-range", "missing-required"],
)
def test_bad_argument_is_an_error_result(inspector: Inspector, arguments: tuple[str, ...], message: str) -> None:
    tool = "listItems" if arguments else "getItem"
    code, result = inspector.call("legacy", tool, *arguments)
    assert code == EXIT_TOOL_ERROR
    assert result["isError"] is True
    assert message in result["content"][0]["text"]
    assert "Traceback" not in result["content"][0]["text"]


def test_missing_item_names_the_upstream_status(inspector: Inspector) -> None:
    code, result = inspector.call("modern", "getItem", "id=9999")
    assert code == EXIT_TOOL_ERROR and result["isError"] is True
    assert result["content"][0]["text"].startswith("Upstream answered 404 Not Found")


def test_without_the_inbound_key_the_inspector_is_refused(inspector: Inspector) -> None:
    done = inspector.run("legacy", "--method", "tools/list", key=None)
    assert done.returncode == EXIT_AUTH_REQUIRED, (done.stdout, done.stderr)
    error = json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "auth_required"
    assert "needs an API key" in error["message"]


@pytest.mark.parametrize("tool", list(TYPED_CALLS))
def test_structured_content_matches_the_published_output_schema(inspector: Inspector, tool: str) -> None:
    # A structuredContent the client finds not to match the output schema would end in an error envelope.
    code, result = inspector.call("modern", tool, *TYPED_CALLS[tool], workspace="typed")
    assert code == 0 and result["isError"] is False, result
    assert result["structuredContent"]


def test_upstream_answer_breaking_its_schema_is_an_error_result_naming_the_mismatch(inspector: Inspector) -> None:
    # Clients reject structuredContent that breaks the published outputSchema, so castproxy does not send it:
    # the Inspector gets an isError result (error results are not validated) naming the mismatch, body as text.
    code, result = inspector.call("legacy", "countThings", workspace="drift")
    assert code == EXIT_TOOL_ERROR and result["isError"] is True, result
    assert "structuredContent" not in result
    note, body = (item["text"] for item in result["content"])
    assert "does not match the tool's output schema ($.count: 'three' is not of type 'integer')" in note
    assert json.loads(body) == DRIFT_BODY
