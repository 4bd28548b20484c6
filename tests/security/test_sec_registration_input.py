"""Dynamic client registration and the token endpoint with hostile input: clear 400s, never a crash."""

from __future__ import annotations

import pytest
from support.auth_server import CLIENT_REDIRECT, Harness


@pytest.mark.parametrize(
    "extra",
    [
        {"grant_types": [["authorization_code"]]},
        {"grant_types": [{"a": 1}]},
        {"response_types": [["code"]]},
        {"grant_types": "authorization_code"},
    ],
)
async def test_registration_with_non_string_list_items_is_a_clear_error(as_harness: Harness, extra: dict) -> None:
    response = await as_harness.http.post("/register", json={"redirect_uris": [CLIENT_REDIRECT], **extra})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"


async def test_registration_body_over_the_limit_is_refused_before_it_is_read_whole(as_harness: Harness) -> None:
    sent = 0

    async def body():  # an endless body: the endpoint must stop reading, not buffer it all
        nonlocal sent
        chunk = b" " * 65536
        while sent < 64 * 1024 * 1024:
            sent += len(chunk)
            yield chunk

    response = await as_harness.http.post("/register", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 413), response.text
    assert sent <= 1024 * 1024, f"read {sent} bytes of an oversized registration request"


async def test_registration_with_declared_oversized_length_is_refused(as_harness: Harness) -> None:
    response = await as_harness.http.post(
        "/register", content=b"{}" + b" " * (70 * 1024), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 413)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/authorize/consent"])
async def test_form_endpoints_stop_reading_an_oversized_body(as_harness: Harness, path: str) -> None:
    sent = 0

    async def body():
        nonlocal sent
        while sent < 64 * 1024 * 1024:
            sent += 65536
            yield b"a" * 65536

    response = await as_harness.http.post(
        path, content=body(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code in (400, 403, 413), response.text
    assert sent <= 1024 * 1024, f"{path} read {sent} bytes"
