"""A spec cannot hand callers the headers that tell the upstream who the client is (issue 11, finding 9).

An upstream behind castproxy may trust `X-Forwarded-For`, `Forwarded` or `X-Real-IP` for IP allow-lists,
audit logs and rate limits. When a spec declares such a header parameter, it must not become a tool
argument: the compiler leaves it out with a warning naming the operation, and a call that sets it is
refused as an unexpected argument, so the upstream never receives a caller-chosen value.
"""

from __future__ import annotations

import pytest

from castproxy.openapi.compiler import compile_spec
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.request import build_request

FORWARDING = ["Forwarded", "X-Forwarded-For", "x-forwarded-host", "X-FORWARDED-PROTO", "X-Real-IP",
              "X-Forwarded-Port", "X-Forwarded-Prefix", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP"]


def _spec(header: str) -> dict:
    return {
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/audit": {"get": {
            "operationId": "readAudit",
            "parameters": [
                {"name": header, "in": "header", "schema": {"type": "string"}},
                {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "ok"}},
        }}},
    }


@pytest.mark.parametrize("header", FORWARDING)
def test_forwarding_header_parameter_is_not_an_argument(header: str) -> None:
    tool = compile_spec(_spec(header)).tools[0]
    assert set(tool.input_schema["properties"]) == {"X-Request-Id"}  # an ordinary header still is one
    assert [p.name for p in tool.operation.parameters] == ["X-Request-Id"]
    assert any(warning.startswith(f"readAudit (GET /audit): header parameter {header!r}") and "left out" in warning
               for warning in tool.warnings)
    errors = ArgumentValidator(tool.input_schema).errors({header: "10.0.0.1"})
    assert errors == [f"unexpected argument '{header}'"]
    request = build_request(tool, {header: "10.0.0.1", "X-Request-Id": "r1"},
                            base_url="https://api.example.com")
    sent = {name.lower() for name in request.headers}
    assert header.lower() not in sent and "x-request-id" in sent
