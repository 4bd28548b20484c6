"""The upstream of the conformance and Inspector tests, and their cast.yaml.

A small REST upstream whose operations are named after the conformance suite's test tools, so the
suite's tools/call scenarios exercise castproxy's response mapping instead of an unknown tool.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def write_config(folder: Path, workspaces: str) -> Path:
    """A cast.yaml with the given `workspaces:` body (already indented by two spaces)."""
    path = folder / "cast.yaml"
    path.write_text(f"version: 1\nserver:\n  host: 127.0.0.1\nstore:\n  path: state.db\nworkspaces:\n{workspaces}")
    return path


# --- the conformance upstream -------------------------------------------------------------------

SIMPLE_TEXT = "This is a simple text response for testing."
# 1x1 PNG and a tiny WAV header: real bytes of the media types the suite's image/audio tools return.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
WAV = bytes.fromhex("524946462400000057415645666d7420100000000100010044ac000088580100020010006461746100000000")
ATTACHMENT = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"

# The suite's json_schema_2020_12_tool input, written the OpenAPI 3.1 way: inside an OpenAPI document `#`
# is the document's root, so the shared `address` schema lives under components (castproxy keeps it as $defs).
ADDRESS = {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}
JSON_SCHEMA_2020_12_BODY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/components/schemas/address"}},
    "additionalProperties": False,
}


# Tools the suite calls that a REST upstream can only answer with a plain body: the scenarios then test
# what castproxy itself would have to add (progress, logging, sampling, elicitation, mixed content).
PLAIN_TOOLS = {
    "test_tool_with_progress": (),
    "test_tool_with_logging": (),
    "test_sampling": ("prompt",),
    "test_elicitation": ("message",),
    "test_elicitation_sep1034_defaults": (),
    "test_elicitation_sep1330_enums": (),
    "test_multiple_content_types": (),
    "test_reconnection": (),
}


# countThings declares an integer `count` but the upstream answers a string: real APIs drift from their
# specs, and with `output_schema: true` that answer no longer matches the tool's published output schema.
DRIFT_SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}
DRIFT_BODY = {"count": "three"}


def _operation(
    operation_id: str, summary: str, media: str, query: tuple[str, ...] = (), schema: dict | None = None
) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"name": name, "in": "query", "schema": {"type": "string"}} for name in query],
        "responses": {"200": {"description": "ok", "content": {media: {"schema": schema or {}}}}},
    }


def conformance_document(base_url: str) -> dict:
    paths = {
        "/simple-text": {"get": _operation("test_simple_text", "Return a fixed text", "text/plain")},
        "/error": {"get": _operation("test_error_handling", "Always fails upstream", "application/json")},
        "/image": {"get": _operation("test_image_content", "Return a 1x1 PNG", "image/png")},
        "/audio": {"get": _operation("test_audio_content", "Return a WAV file", "audio/wav")},
        "/attachment": {"get": _operation("test_embedded_resource", "Return a PDF attachment", "application/pdf")},
        "/json-schema": {
            "post": {
                **_operation("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", "text/plain"),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": JSON_SCHEMA_2020_12_BODY}},
                },
            }
        },
    }
    paths["/drift"] = {"get": _operation("countThings", "Count things", "application/json", schema=DRIFT_SCHEMA)}
    for name, query in PLAIN_TOOLS.items():
        paths[f"/plain/{name}"] = {"get": _operation(name, f"Plain REST answer ({name})", "text/plain", query)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "conformance upstream", "version": "1"},
        "servers": [{"url": base_url}],
        "components": {"schemas": {"address": ADDRESS}},
        "paths": paths,
    }


TOOL_NAMES = [
    "test_simple_text",
    "test_error_handling",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "json_schema_2020_12_tool",
    *PLAIN_TOOLS,
]


def conformance_upstream() -> Starlette:
    async def document(request: Request) -> Response:
        return JSONResponse(conformance_document(str(request.base_url).rstrip("/")))

    async def simple_text(request: Request) -> Response:
        return PlainTextResponse(SIMPLE_TEXT)

    async def error(request: Request) -> Response:
        return JSONResponse({"error": "this operation always fails"}, status_code=500)

    async def image(request: Request) -> Response:
        return Response(PNG, media_type="image/png")

    async def audio(request: Request) -> Response:
        return Response(WAV, media_type="audio/wav")

    async def attachment(request: Request) -> Response:
        return Response(ATTACHMENT, media_type="application/pdf")

    async def drift(request: Request) -> Response:
        return JSONResponse(DRIFT_BODY)

    async def plain(request: Request) -> Response:
        return PlainTextResponse(f"plain REST answer from {request.path_params['name']}")

    async def json_schema(request: Request) -> Response:
        return PlainTextResponse(f"received {await request.body()!r}")

    return Starlette(
        routes=[
            Route("/openapi.json", document),
            Route("/simple-text", simple_text),
            Route("/error", error),
            Route("/image", image),
            Route("/audio", audio),
            Route("/attachment", attachment),
            Route("/json-schema", json_schema, methods=["POST"]),
            Route("/drift", drift),
            Route("/plain/{name}", plain),
        ]
    )
