"""Discovery documents and the 401 challenge, field by field."""

from __future__ import annotations

from support.auth_server import PUBLIC_URL, Harness


async def test_authorization_server_metadata_fields(harness: Harness) -> None:
    response = await harness.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.json() == {
        "issuer": PUBLIC_URL,
        "authorization_endpoint": f"{PUBLIC_URL}/authorize",
        "token_endpoint": f"{PUBLIC_URL}/token",
        "registration_endpoint": f"{PUBLIC_URL}/register",
        "revocation_endpoint": f"{PUBLIC_URL}/revoke",
        "scopes_supported": ["read:items", "read:users", "write:items"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
    }
    # The path-suffixed form some clients probe answers the same document.
    suffixed = await harness.http.get("/.well-known/oauth-authorization-server/mcp/alpha")
    assert suffixed.json() == response.json()


async def test_protected_resource_metadata_fields(harness: Harness) -> None:
    response = await harness.http.get("/.well-known/oauth-protected-resource/mcp/alpha")
    assert response.status_code == 200
    assert response.json() == {
        "resource": f"{PUBLIC_URL}/mcp/alpha",
        "authorization_servers": [PUBLIC_URL],
        "scopes_supported": ["read:items", "write:items"],
        "bearer_methods_supported": ["header"],
        "resource_name": "castproxy workspace alpha",
    }


async def test_protected_resource_metadata_only_for_sign_in_workspaces(harness: Harness) -> None:
    for name in ("service", "nope"):
        response = await harness.http.get(f"/.well-known/oauth-protected-resource/mcp/{name}")
        assert response.status_code == 404
        assert response.json()["error_description"] == f"workspace '{name}' does not use OAuth sign-in"


async def test_openid_discovery_is_a_clean_404(harness: Harness) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/openid-configuration/mcp/alpha"):
        response = await harness.http.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert "not an OpenID provider" in response.json()["error_description"]


async def test_cors_preflight_on_token_endpoint(harness: Harness) -> None:
    response = await harness.http.options("/token", headers={"Origin": "http://inspector.test"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"


async def test_unauthenticated_call_gets_challenge(harness: Harness) -> None:
    response = await harness.call("alpha", None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/alpha", '
        'scope="read:items write:items"'
    )


async def test_non_bearer_scheme_gets_plain_challenge(harness: Harness) -> None:
    response = await harness.http.post("/mcp/alpha", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


async def test_unknown_token_gets_invalid_token(harness: Harness) -> None:
    response = await harness.call("alpha", "cpat_not-a-real-token")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="the access token is unknown, expired or revoked", '
        f'resource_metadata="{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/alpha"'
    )
