"""POST /register (RFC 7591)."""

from __future__ import annotations

import pytest
from support.auth_server import Harness, pkce, query_of


async def test_registration_issues_a_public_client(harness: Harness) -> None:
    response = await harness.http.post(
        "/register",
        json={
            "redirect_uris": ["http://127.0.0.1:3000/cb"],
            "client_name": "Claude",
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"].startswith("cpc-")
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["redirect_uris"] == ["http://127.0.0.1:3000/cb"]
    assert body["client_name"] == "Claude"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("javascript:alert(document.cookie)", "must use https, or http on a loopback address"),
        ("data:text/html;base64,PHNjcmlwdD4=", "must use https, or http on a loopback address"),
        ("http://attacker.example/cb", "uses http on a non-loopback host"),
        ("https://app.example/cb#x", "must not contain a fragment"),
    ],
)
async def test_registration_refuses_bad_redirect_uris(harness: Harness, uri: str, message: str) -> None:
    response = await harness.http.post("/register", json={"redirect_uris": ["https://ok.example/cb", uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert message in response.json()["error_description"]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({}, "invalid_redirect_uri", "redirect_uris must be a non-empty list"),
        ({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris must be a non-empty list"),
        (
            {"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
            "grant_types may only contain authorization_code, refresh_token",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]},
            "invalid_client_metadata",
            'response_types must be ["code"]',
        ),
        ([1, 2], "invalid_client_metadata", "the registration request must be a JSON object"),
    ],
)
async def test_registration_refuses_bad_metadata(harness: Harness, body: object, error: str, message: str) -> None:
    response = await harness.http.post("/register", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": message}


CURSOR_REDIRECTS = [
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "https://www.cursor.com/agents/mcp/oauth/callback",
    "http://localhost:8787/callback",
]


async def test_cursor_registration_and_sign_in_back_to_its_private_use_scheme(harness: Harness) -> None:
    """Cursor registers its cursor:// callback beside an https and a loopback one; refusing one refuses all."""
    client_id = await harness.register(CURSOR_REDIRECTS, client_name="Cursor")
    verifier, challenge = pkce()
    params = harness.authorize_params(client_id, challenge, redirect_uri=CURSOR_REDIRECTS[0])
    page = await harness.http.get("/authorize", params=params)
    assert "cursor://anysphere.cursor-mcp/oauth/callback" in page.text  # the consent page names it
    back = await harness.upstream_callback(await harness.approve(page))
    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith("cursor://anysphere.cursor-mcp/oauth/callback?")
    token = await harness.exchange(
        client_id, query_of(location)["code"], verifier, redirect_uri=CURSOR_REDIRECTS[0]
    )
    assert token.status_code == 200, token.text
