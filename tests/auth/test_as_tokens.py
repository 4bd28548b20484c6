"""POST /token, /revoke and what the MCP endpoint accepts: PKCE, single use, rotation, binding."""

from __future__ import annotations

import pytest
from support.auth_server import PUBLIC_URL, Harness, pkce

from castproxy.auth.credentials import SignInRequired


async def test_full_sign_in_reaches_the_upstream_with_the_upstream_token(harness: Harness) -> None:
    signed = await harness.sign_in()
    body = signed.body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "read:items write:items"
    assert body["access_token"].startswith("cpat_") and body["refresh_token"].startswith("cprt_")
    call = await harness.call("alpha", signed.access_token)
    upstream_token = harness.upstreams["alpha"].grants[signed.grant_id]
    assert call.json()["upstream_authorization"] == f"Bearer {upstream_token}"
    assert signed.access_token not in call.text


async def test_token_response_is_not_cached(harness: Harness) -> None:
    client_id = await harness.register()
    verifier, challenge = pkce()
    code = await harness.code_for(client_id, (verifier, challenge))
    response = await harness.exchange(client_id, code, verifier)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


@pytest.mark.parametrize(
    ("over", "status", "error", "description"),
    [
        ({"code_verifier": ""}, 400, "invalid_request", "code_verifier is required (PKCE)"),
        (
            {"code_verifier": "A" * 50},
            400,
            "invalid_grant",
            "code_verifier does not match the code_challenge (PKCE S256)",
        ),
        (
            {"code_verifier": "short"},
            400,
            "invalid_grant",
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
        ),
        (
            {"redirect_uri": "http://127.0.0.1:5173/callback/"},
            400,
            "invalid_grant",
            "redirect_uri differs from the one in the authorization request",
        ),
        (
            {"resource": f"{PUBLIC_URL}/mcp/beta"},
            400,
            "invalid_target",
            f"resource differs from the one authorized ({PUBLIC_URL}/mcp/alpha)",
        ),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", None),
        ({"code": "cpc_forged"}, 400, "invalid_grant", "authorization code is unknown or expired"),
    ],
)
async def test_code_exchange_refusals(harness: Harness, over: dict, status: int, error: str, description: str | None):
    client_id = await harness.register()
    verifier, challenge = pkce()
    code = await harness.code_for(client_id, (verifier, challenge))
    if "code" in over:
        code = over.pop("code")
    response = await harness.exchange(client_id, code, verifier, **over)
    assert response.status_code == status
    assert response.json()["error"] == error
    if description:
        assert response.json()["error_description"] == description


async def test_resource_with_trailing_slash_or_upper_case_host_is_the_same_workspace(harness: Harness) -> None:
    client_id = await harness.register()
    verifier, challenge = pkce()
    code = await harness.code_for(client_id, (verifier, challenge))
    response = await harness.exchange(client_id, code, verifier, resource="http://PROXY.test/mcp/alpha/")
    assert response.status_code == 200


async def test_code_of_another_client_is_refused_and_revokes(harness: Harness) -> None:
    victim = await harness.register()
    attacker = await harness.register()
    verifier, challenge = pkce()
    code = await harness.code_for(victim, (verifier, challenge))
    response = await harness.exchange(attacker, code, verifier)
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "authorization code was issued to another client",
    }
    assert len(harness.upstreams["alpha"].revoked) == 1


async def test_reused_code_is_refused_and_revokes_the_grant(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    client_id = await harness.register()
    verifier, challenge = pkce()
    code = await harness.code_for(client_id, (verifier, challenge))
    first = await harness.exchange(client_id, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    grant_id = (await harness.call("alpha", access)).json()["grant_id"]

    second = await harness.exchange(client_id, code, verifier)
    assert second.status_code == 400
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": "authorization code was already used; the sign-in it started has been revoked",
    }
    # Every token issued from that code is dead, and the upstream grant was revoked too.
    after = await harness.call("alpha", access)
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    assert "revoked" in after.json()["error_description"]
    assert harness.upstreams["alpha"].revoked == [grant_id]
    assert f"sign-in ended: authorization code reused (workspace alpha, client {client_id}, grant " in caplog.text
    assert code not in caplog.text and grant_id not in caplog.text
    refreshed = await harness.refresh(client_id, first.json()["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


async def test_refresh_rotates(harness: Harness) -> None:
    signed = await harness.sign_in()
    response = await harness.refresh(signed.client_id, signed.refresh_token)
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != signed.refresh_token
    assert body["access_token"] != signed.access_token
    assert (await harness.call("alpha", body["access_token"])).json()["grant_id"] == signed.grant_id
    # The new refresh token works once more.
    assert (await harness.refresh(signed.client_id, body["refresh_token"])).status_code == 200


async def test_reused_rotated_refresh_token_revokes_the_family(harness: Harness) -> None:
    signed = await harness.sign_in()
    rotated = (await harness.refresh(signed.client_id, signed.refresh_token)).json()
    replay = await harness.refresh(signed.client_id, signed.refresh_token)
    assert replay.status_code == 400
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token was already used (rotated); the sign-in has been revoked",
    }
    for token in (signed.access_token, rotated["access_token"]):
        assert (await harness.call("alpha", token)).status_code == 401
    newest = await harness.refresh(signed.client_id, rotated["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    assert harness.upstreams["alpha"].revoked == [signed.grant_id]


async def test_refresh_by_another_client_is_refused(harness: Harness) -> None:
    signed = await harness.sign_in()
    response = await harness.refresh("cpc-someone-else", signed.refresh_token)
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token was issued to another client",
    }


async def test_refresh_may_narrow_but_not_widen_scope(harness: Harness) -> None:
    signed = await harness.sign_in()
    narrowed = await harness.refresh(signed.client_id, signed.refresh_token, scope="read:items")
    assert narrowed.json()["scope"] == "read:items"
    widened = await harness.refresh(signed.client_id, narrowed.json()["refresh_token"], scope="read:items admin")
    assert widened.json() == {"error": "invalid_scope", "error_description": "scope beyond the original grant: admin"}


async def test_token_for_workspace_a_is_refused_on_b(harness: Harness) -> None:
    signed = await harness.sign_in("alpha")
    response = await harness.call("beta", signed.access_token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="the access token was issued for another workspace"'
    )
    assert (
        'resource_metadata="http://proxy.test/.well-known/oauth-protected-resource/mcp/beta"'
        in (response.headers["www-authenticate"])
    )


async def test_expired_token_is_refused(harness: Harness) -> None:
    signed = await harness.sign_in()
    assert (await harness.call("alpha", signed.access_token)).status_code == 200
    harness.clock.advance(3600)  # the bridge's clock; the store's (real) one still keeps the record
    response = await harness.call("alpha", signed.access_token)
    assert response.status_code == 401
    assert 'error="invalid_token", error_description="the access token expired"' in response.headers["www-authenticate"]


async def test_token_in_query_string_is_refused(harness: Harness) -> None:
    signed = await harness.sign_in()
    response = await harness.http.post("/mcp/alpha", params={"access_token": signed.access_token})
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_request", '
        'error_description="send the access token in the Authorization header, not the URL"'
    )
    # Even together with a valid header: a token in a URL leaks into logs, so the request is refused.
    both = await harness.http.post(
        "/mcp/alpha", params={"access_token": "x"}, headers={"Authorization": f"Bearer {signed.access_token}"}
    )
    assert both.status_code == 400


async def test_upstream_token_is_never_accepted(harness: Harness) -> None:
    signed = await harness.sign_in()
    upstream_token = harness.upstreams["alpha"].grants[signed.grant_id]
    response = await harness.call("alpha", upstream_token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_refresh_token_is_not_an_access_token(harness: Harness) -> None:
    signed = await harness.sign_in()
    assert (await harness.call("alpha", signed.refresh_token)).status_code == 401


async def test_grant_dropped_upstream_answers_401_from_then_on(harness: Harness) -> None:
    signed = await harness.sign_in()
    harness.upstreams["alpha"].grants.clear()  # the upstream answered invalid_grant and the grant was deleted
    failing = await harness.call("alpha", signed.access_token)
    assert failing.status_code == 401  # SignInRequired from credentials_for
    after = await harness.call("alpha", signed.access_token)
    assert after.status_code == 401
    assert "the sign-in behind this access token was revoked; sign in again" in after.headers["www-authenticate"]
    assert harness.upstreams["alpha"].revoked == []  # nothing left to revoke upstream


async def test_revoking_an_access_token_kills_only_it(harness: Harness) -> None:
    signed = await harness.sign_in()
    response = await harness.http.post("/revoke", data={"token": signed.access_token, "client_id": signed.client_id})
    assert response.status_code == 200
    assert (await harness.call("alpha", signed.access_token)).status_code == 401
    assert (await harness.refresh(signed.client_id, signed.refresh_token)).status_code == 200


async def test_revoking_a_refresh_token_ends_the_sign_in(harness: Harness) -> None:
    signed = await harness.sign_in()
    response = await harness.http.post("/revoke", data={"token": signed.refresh_token})
    assert response.status_code == 200
    assert (await harness.call("alpha", signed.access_token)).status_code == 401
    assert harness.upstreams["alpha"].revoked == [signed.grant_id]


async def test_revoke_of_unknown_token_is_200_and_of_another_clients_token_is_refused(harness: Harness) -> None:
    assert (await harness.http.post("/revoke", data={"token": "cpat_unknown"})).status_code == 200
    signed = await harness.sign_in()
    response = await harness.http.post("/revoke", data={"token": signed.access_token, "client_id": "cpc-other"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (await harness.call("alpha", signed.access_token)).status_code == 200


async def test_token_endpoint_wants_a_form(harness: Harness) -> None:
    response = await harness.http.post("/token", json={"grant_type": "refresh_token"})
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "send the parameters as application/x-www-form-urlencoded",
    }


async def test_client_credentials_workspace_gets_service_token(harness: Harness) -> None:
    headers: dict[str, str] = {"authorization": "Bearer from-an-argument"}
    credentials = harness.bridge.credentials_for("service")
    await credentials.apply(headers, None)
    assert headers == {"Authorization": "Bearer service-token-service"}
    assert credentials.protected_headers == frozenset({"authorization"})


async def test_update_keeps_unchanged_workspaces_and_drops_removed_ones(harness: Harness) -> None:
    signed = await harness.sign_in()
    before = harness.bridge.server.workspaces["alpha"].upstream
    harness.bridge.update({name: entry.auth for name, entry in harness.bridge.server.workspaces.items()})
    assert harness.bridge.server.workspaces["alpha"].upstream is before
    assert (await harness.call("alpha", signed.access_token)).status_code == 200
    harness.bridge.update({"beta": harness.bridge.server.workspaces["beta"].auth})
    response = await harness.call("alpha", signed.access_token)
    assert response.status_code == 404
    with pytest.raises(SignInRequired, match=r"^workspace alpha no longer uses OAuth in the current config$"):
        await harness.bridge.credentials_for("alpha").apply({}, signed.grant_id)


async def test_a_refresh_after_the_company_sign_in_expired_is_refused(harness: Harness) -> None:
    """Issue 14: a person's groups are as of their company sign-in; once it is identity.session_lifetime old,
    refreshing stops and the client signs in again (at the identity provider, whose groups may have changed)."""
    import dataclasses

    from castproxy.auth.server.records import NS_GRANT, GrantRecord

    signed = await harness.sign_in()
    store = harness.bridge.tokens._store
    grant = GrantRecord.decode(await store.get(NS_GRANT, signed.grant_id))
    assert grant is not None
    # As issue_code_for records a company sign-in (the harness has no identity provider to make one).
    person = dataclasses.replace(grant, subject="00u1", person_until=harness.clock() + 3600)
    await store.put(NS_GRANT, signed.grant_id, person.encode())
    harness.clock.advance(3599)
    response = await harness.refresh(signed.client_id, signed.refresh_token)
    assert response.status_code == 200
    harness.clock.advance(1)
    response = await harness.refresh(signed.client_id, response.json()["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant" and "company sign-in" in response.json()["error_description"]
