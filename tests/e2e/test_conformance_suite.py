"""The MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios) against `castproxy serve`.

Three workspaces on one proxy process, each checked with the suite's full scenario list (`--suite all`):
- `items`: the bundled test upstream in mode `none`;
- `items-key`: the bundled test upstream in mode `apikey`, castproxy sending the key (`auth: api_key`);
- `conformance`: a small upstream whose operations carry the suite's test tool names, so the tools/call
  scenarios exercise castproxy's mapping of real upstream answers (text, 500, PNG, WAV, PDF, ...).

Every scenario has a decided outcome below: pass, or fail with the exact failing checks and why that is
expected for a tools-only gateway (no resources/prompts/logging/completions advertised: -32601; no
server-to-client requests: no sampling/elicitation/progress). A changed outcome fails the test, in either
direction, and so does a scenario the suite adds that is not classified here.

The suite's client always negotiates 2025-11-25 (its SDK's latest); the 2026-07-28 sessionless mode is
covered by tests/e2e/test_inspector_cli.py. Needs scripts/fetch-node-tools; skips without (fails on CI=true).
Streamable HTTP rules the suite does not check (status codes, JSON-RPC errors) are asserted directly at
the end; those need no Node. Results and gaps: docs/conformance.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conformance_upstream import SIMPLE_TEXT, TOOL_NAMES, conformance_upstream, write_config
from support import web
from support.node import node22, package_bin
from support.serve_process import start_serve, stop_serve

from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

pytestmark = [pytest.mark.node, pytest.mark.slow]

UPSTREAM_KEY = "conformance-upstream-key-0123456789"
TUTORIAL_TOOLS = ["listItems", "createItem", "listUsers", "getItem", "delete_item"]
NOT_FOUND = "MCP error -32601: Method not found"

# scenario -> {failing check id: text its errorMessage contains}; an empty mapping means every check passes
# (WARNING and INFO checks count as passing: the suite prints them but does not fail on them).
EXPECTED_EVERYWHERE: dict[str, dict[str, str]] = {
    "server-initialize": {},
    "ping": {},
    "tools-list": {},
    "dns-rebinding-protection": {},  # a foreign Host/Origin gets 403, loopback ones are served
    # stateless server, JSON responses: the suite warns "no session ID" / "JSON instead of SSE" and passes
    "server-sse-multiple-streams": {},
    "server-sse-polling": {},
    # capabilities castproxy does not advertise (it serves tools only): JSON-RPC "method not found"
    "logging-set-level": {"logging-set-level": NOT_FOUND},
    "completion-complete": {"completion-complete": NOT_FOUND},
    "tools-call-with-logging": {"tools-call-with-logging": NOT_FOUND},  # sets the log level first
    **{
        name: {name: NOT_FOUND}
        for name in (
            "resources-list",
            "resources-read-text",
            "resources-read-binary",
            "resources-templates-read",
            "resources-subscribe",
            "resources-unsubscribe",
            "prompts-list",
            "prompts-get-simple",
            "prompts-get-with-args",
            "prompts-get-embedded-resource",
            "prompts-get-with-image",
        )
    },
}

# Scenarios that call the suite's own test tools (test_simple_text, ...). On the tutorial workspaces
# those tools do not exist, so the outcome only restates how an unknown tool is answered (see
# test_unknown_tool_is_a_protocol_error); the `conformance` workspace runs them against real tools.
NEEDS_TEST_TOOLS = {
    "tools-call-simple-text",
    "tools-call-error",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "elicitation-sep1330-enums",
    "json-schema-2020-12",
}

EXPECTED_WITH_TEST_TOOLS: dict[str, dict[str, str]] = {
    "tools-call-simple-text": {},  # upstream text/plain -> text content
    "tools-call-error": {},  # upstream 500 -> isError result naming the status
    "tools-call-embedded-resource": {},  # upstream application/pdf -> embedded resource with a blob
    # By the product contract binary bodies become embedded resources, never image/audio content.
    "tools-call-image": {"tools-call-image": "No image content found"},
    "tools-call-audio": {"tools-call-audio": "No audio content found"},
    # One HTTP answer is one content item; a REST upstream cannot send progress, sampling or elicitation.
    "tools-call-mixed-content": {"tools-call-mixed-content": "Expected multiple content items"},
    "tools-call-with-progress": {"tools-call-with-progress": "No progress notifications received"},
    "tools-call-sampling": {"tools-call-sampling": "Server did not request sampling"},
    "tools-call-elicitation": {"tools-call-elicitation": "Server did not request elicitation"},
    "elicitation-sep1034-defaults": {"elicitation-sep1034-general": "Server did not request elicitation"},
    "elicitation-sep1330-enums": {"elicitation-sep1330-general": "Server did not request elicitation"},
    # castproxy builds the input schema from the operation: it names the 2020-12 dialect in `$schema` and
    # keeps additionalProperties: false, but the named schema is inlined rather than kept as $defs.
    "json-schema-2020-12": {"json-schema-2020-12-$defs": "$defs field missing"},
}

RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The proxy's base URL, serving the three workspaces."""
    upstreams = [
        run_in_thread(create_testserver("none")),
        run_in_thread(create_testserver("apikey", api_key=UPSTREAM_KEY)),
        run_in_thread(conformance_upstream()),
    ]
    open_url, key_url, conformance_url = (server.url for server in upstreams)
    config = write_config(
        tmp_path_factory.mktemp("conformance"),
        f"""  items:
    openapi: {open_url}/openapi.json
    base_url: {open_url}
    auth: {{type: none}}
    tools: &tutorial
      - listItems
      - createItem
      - listUsers
      - getItem
      - operation: deleteItem
        name: delete_item
        description: Delete one item by id (cannot be undone).
  items-key:
    openapi: {key_url}/openapi.json
    base_url: {key_url}
    auth: {{type: api_key, header: X-API-Key, value: "${{env:CONFORMANCE_UPSTREAM_KEY}}"}}
    tools: *tutorial
  conformance:
    openapi: {conformance_url}/openapi.json
    auth: {{type: none}}
    tools: [{", ".join(TOOL_NAMES)}]
""",
    )
    process, url = start_serve(config, {"CONFORMANCE_UPSTREAM_KEY": UPSTREAM_KEY})
    try:
        yield url
    finally:
        log = stop_serve(process)
        for server in upstreams:
            server.stop()
        assert UPSTREAM_KEY not in log, "the upstream API key appeared in castproxy's log"


def start_suite(node: str, suite: Path, url: str, out: Path) -> subprocess.Popen[str]:
    command = [node, str(suite), "server", "--suite", "all", "--url", url, "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def suite_cli() -> tuple[str, Path]:
    """Node 22 and the suite's script; asked for before `proxy`, so a skip starts no server."""
    return node22(), package_bin("@modelcontextprotocol/conformance", "conformance")


@pytest.fixture(scope="module")
def results(
    suite_cli: tuple[str, Path], proxy: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, list[dict]]]:
    """workspace -> scenario -> the suite's checks; the three workspaces run side by side."""
    node, suite = suite_cli
    out = tmp_path_factory.mktemp("conformance-results")
    runs = {
        workspace: start_suite(node, suite, f"{proxy}/mcp/{workspace}", out / workspace)
        for workspace in ("items", "items-key", "conformance")
    }
    found: dict[str, dict[str, list[dict]]] = {}
    try:
        outputs = {workspace: run.communicate(timeout=120)[0] for workspace, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    for workspace, output in outputs.items():
        assert "=== SUMMARY ===" in output, f"the suite did not finish for {workspace}:\n{output}"
        found[workspace] = {}
        for folder in sorted((out / workspace).iterdir()):
            match = RESULT_DIR.match(folder.name)
            assert match, f"unexpected result folder {folder.name}"
            found[workspace][match["scenario"]] = json.loads((folder / "checks.json").read_text())
    return found


def failures(checks: list[dict]) -> dict[str, str]:
    return {check["id"]: check.get("errorMessage") or "" for check in checks if check["status"] == "FAILURE"}


def assert_outcomes(scenarios: dict[str, list[dict]], expected: dict[str, dict[str, str]]) -> None:
    problems = []
    for scenario, expected_failures in expected.items():
        got = failures(scenarios[scenario])
        if set(got) != set(expected_failures):
            problems.append(f"{scenario}: failing checks {sorted(got)}, expected {sorted(expected_failures)}: {got}")
            continue
        for check, text in expected_failures.items():
            if text not in got[check]:
                problems.append(f"{scenario}/{check}: {got[check]!r} does not say {text!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("workspace", ["items", "items-key"])
def test_tutorial_workspace_outcomes(results: dict[str, dict[str, list[dict]]], workspace: str) -> None:
    scenarios = results[workspace]
    unclassified = set(scenarios) - set(EXPECTED_EVERYWHERE) - NEEDS_TEST_TOOLS
    assert not unclassified, f"scenarios with no decided outcome (classify them): {sorted(unclassified)}"
    assert set(EXPECTED_EVERYWHERE) <= set(scenarios), "the suite no longer runs some classified scenarios"
    assert_outcomes(scenarios, EXPECTED_EVERYWHERE)
    (tools_list,) = scenarios["tools-list"]
    assert tools_list["details"]["tools"] == TUTORIAL_TOOLS


def test_conformance_workspace_outcomes(results: dict[str, dict[str, list[dict]]]) -> None:
    scenarios = results["conformance"]
    expected = {**EXPECTED_EVERYWHERE, **EXPECTED_WITH_TEST_TOOLS}
    assert set(scenarios) == set(expected), f"unclassified: {sorted(set(scenarios) ^ set(expected))}"
    assert_outcomes(scenarios, expected)


def test_tool_results_carry_the_upstream_answers(results: dict[str, dict[str, list[dict]]]) -> None:
    scenarios = results["conformance"]
    (simple,) = scenarios["tools-call-simple-text"]
    assert simple["details"]["result"] == {"content": [{"type": "text", "text": SIMPLE_TEXT}], "isError": False}
    (error,) = scenarios["tools-call-error"]
    assert error["details"]["result"]["isError"] is True
    assert error["details"]["result"]["content"][0]["text"].startswith("Upstream answered 500 Internal Server Error")
    (resource,) = scenarios["tools-call-embedded-resource"]
    assert resource["details"]["hasResourceContent"] is True
    assert resource["details"]["resourceUri"].endswith("/attachment")


def test_foreign_host_is_refused(results: dict[str, dict[str, list[dict]]]) -> None:
    rebinding = {check["id"]: check["details"] for check in results["items"]["dns-rebinding-protection"]}
    assert rebinding["localhost-host-rebinding-rejected"]["statusCode"] == 403
    assert rebinding["localhost-host-valid-accepted"]["statusCode"] == 200


def test_unknown_tool_is_a_protocol_error(proxy: str) -> None:
    """MCP server/tools, Error Handling: an unknown tool is JSON-RPC -32602, not an isError tool result."""
    answer = web.post(
        f"{proxy}/mcp/items",
        headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "noSuchTool", "arguments": {}}},
    ).json()
    assert answer == {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Unknown tool: noSuchTool"}}


JSON_AND_SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
LIST_PROMPTS = {"jsonrpc": "2.0", "id": 1, "method": "prompts/list"}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@pytest.mark.parametrize(
    ("method", "version", "body", "status", "rpc_error"),
    [
        ("POST", "1999-01-01", LIST_TOOLS, 400, None),  # an unsupported MCP-Protocol-Version MUST get 400
        ("POST", "2025-11-25", INITIALIZED, 202, None),  # a notification: 202, no body
        ("DELETE", "2025-11-25", None, 405, None),  # no sessions to terminate
        ("POST", "2025-11-25", LIST_PROMPTS, 200, -32601),  # a capability castproxy does not serve
        ("POST", "2025-11-25", b"{not json", 400, -32700),  # JSON-RPC parse error
        ("POST", "2025-11-25", b"[]", 400, -32600),  # a batch: Streamable HTTP takes one message per POST
        ("GET", "2025-11-25", None, 405, None),  # stateless JSON: no server-to-client stream to open
    ],
    ids=["unsupported-version-header", "notification", "delete-session", "unserved-method", "parse-error", "batch",
         "get-stream"],
)
def test_streamable_http_transport_rules(
    proxy: str, method: str, version: str, body: dict | bytes | None, status: int, rpc_error: int | None
) -> None:
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {**JSON_AND_SSE, "MCP-Protocol-Version": version}
    answer = httpx2.request(method, f"{proxy}/mcp/items", headers=headers, content=content)
    assert answer.status_code == status, answer.text
    if status == 202:
        assert answer.content == b""
    if status == 405:
        assert answer.headers["allow"] == "POST"  # neither GET nor DELETE is served
    if rpc_error is not None:
        assert answer.json()["error"]["code"] == rpc_error
