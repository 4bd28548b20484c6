"""GET /authorize, the consent page, and the upstream callback: each refusal asserted exactly."""

from __future__ import annotations

import html

import pytest
from support.auth_server import CLIENT_REDIRECT, PUBLIC_URL, Harness, form_fields, harness_for, pkce, query_of
from support.clock import FakeClock

from castproxy.store.sqlite import SQLiteStore


def redirected_error(response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CLIENT_REDIRECT + "?"), location
    return query_of(location)


async def test_consent_page_names_client_redirect_workspace_and_scopes(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert page.status_code == 200
    assert "Test client" in page.text
    assert CLIENT_REDIRECT in page.text
    assert "<code>alpha</code>" in page.text
    assert "<code>read:items</code>, <code>write:items</code>" in page.text
    assert "could claim to be this application" not in page.text  # a registered client_id is castproxy's own
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin"  # no-referrer would make the form's Origin "null"
    assert "castproxy_csrf=" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()


async def test_client_name_is_escaped(harness: Harness) -> None:
    client_id = await harness.register(client_name="<script>alert(1)</script>")
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize(
    ("over", "error", "description"),
    [
        ({"code_challenge": None}, "invalid_request", "PKCE is required: code_challenge is missing"),
        (
            {"code_challenge_method": "plain"},
            "invalid_request",
            "code_challenge_method must be S256 (got plain; plain is not accepted)",
        ),
        (
            {"code_challenge_method": None},
            "invalid_request",
            "code_challenge_method must be S256 (got none; plain is not accepted)",
        ),
        ({"code_challenge": "short"}, "invalid_request", "code_challenge must be 43 base64url characters (S256)"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type must be code"),
        (
            {"resource": "http://proxy.test/mcp/service"},
            "invalid_target",
            "resource 'http://proxy.test/mcp/service' is not a workspace of this proxy that uses sign-in",
        ),
        (
            {"resource": "https://elsewhere.example/mcp/alpha"},
            "invalid_target",
            "resource 'https://elsewhere.example/mcp/alpha' is not a workspace of this proxy that uses sign-in",
        ),
        (
            {"resource": None},
            "invalid_target",
            "resource is required: name the workspace URL ({public_url}/mcp/NAME)",
        ),
        (
            {"scope": "admin"},
            "invalid_scope",
            "none of the requested scopes is offered by workspace alpha (it offers: read:items write:items)",
        ),
    ],
)
async def test_authorize_refusals_go_back_to_the_client(harness: Harness, over: dict, error: str, description: str):
    client_id = await harness.register()
    response = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1], **over))
    answer = redirected_error(response)
    assert answer == {"error": error, "error_description": description, "state": "client-state-1", "iss": PUBLIC_URL}


@pytest.mark.parametrize(
    ("requested", "shown"),
    [
        ("http://127.0.0.1:5173/callback/", "http://127.0.0.1:5173/callback/"),  # trailing slash
        ("http://LOCALHOST:5173/callback", "http://LOCALHOST:5173/callback"),  # case
        ("http://127.0.0.1:5173/Callback", "http://127.0.0.1:5173/Callback"),  # case in path
        ("http://127.0.0.1:5173/callback?next=1", "http://127.0.0.1:5173/callback?next=1"),  # query
        ("http://localhost:5173/callback", "http://localhost:5173/callback"),  # host
        ("https://attacker.example/callback", "https://attacker.example/callback"),  # host
    ],
)
async def test_redirect_uri_mismatch_is_a_page_never_a_redirect(harness: Harness, requested: str, shown: str):
    client_id = await harness.register()
    params = harness.authorize_params(client_id, pkce()[1], redirect_uri=requested)
    response = await harness.http.get("/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert f"The redirect_uri {shown!r} is not registered for this application." in html.unescape(response.text)


async def test_loopback_redirect_port_may_differ(harness: Harness) -> None:
    client_id = await harness.register()
    params = harness.authorize_params(client_id, pkce()[1], redirect_uri="http://127.0.0.1:61234/callback")
    response = await harness.http.get("/authorize", params=params)
    assert response.status_code == 200


async def test_unknown_client_is_a_page(harness: Harness) -> None:
    response = await harness.http.get("/authorize", params=harness.authorize_params("cpc-nope", pkce()[1]))
    assert response.status_code == 400
    assert "unknown client_id" in response.text


async def test_missing_resource_defaults_when_only_one_workspace_signs_in(harness: Harness) -> None:
    harness.bridge.update({"alpha": harness.bridge.server.workspaces["alpha"].auth})
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1], resource=None))
    assert page.status_code == 200
    assert "<code>alpha</code>" in page.text


async def test_consent_post_without_csrf_token_is_refused(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    response = await harness.http.post("/authorize/consent", data={"request_id": request_id, "decision": "approve"})
    assert response.status_code == 403
    assert "The consent form was submitted without its CSRF token." in response.text
    assert response.headers["x-frame-options"] == "DENY"


async def test_consent_post_with_wrong_csrf_token_is_refused(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    response = await harness.http.post(
        "/authorize/consent", data={"request_id": request_id, "csrf_token": "0" * 64, "decision": "approve"}
    )
    assert response.status_code == 403
    assert "The consent form's CSRF token does not match this browser." in html.unescape(response.text)


async def test_consent_post_from_another_browser_is_refused(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    fields = dict(
        request_id=page.text.split('name="request_id" value="')[1].split('"')[0],
        csrf_token=page.text.split('name="csrf_token" value="')[1].split('"')[0],
    )
    harness.http.cookies.clear()  # the attacker's browser has a different (or no) cookie
    harness.http.cookies.set("castproxy_csrf", "A" * 43, domain="proxy.test")
    response = await harness.http.post("/authorize/consent", data={**fields, "decision": "approve"})
    assert response.status_code == 403
    assert "does not match this browser" in response.text


async def test_consent_post_from_another_origin_is_refused(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    response = await harness.http.post(
        "/authorize/consent",
        data={"request_id": "x", "csrf_token": "y"},
        headers={"Origin": "https://attacker.example"},
    )
    assert page.status_code == 200
    assert response.status_code == 403
    assert "submitted from another site" in response.text


async def test_consent_origin_matches_a_public_url_written_with_capitals_and_default_port(store) -> None:
    """Browsers send `Origin: http://proxy.test`; public_url may be written `http://Proxy.TEST:80`."""
    harness = harness_for(store, public_url="http://Proxy.TEST:80")
    try:
        client_id = await harness.register()
        params = harness.authorize_params(client_id, pkce()[1], resource="http://Proxy.TEST:80/mcp/alpha")
        page = await harness.http.get("/authorize", params=params)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        response = await harness.http.post(
            "/authorize/consent", data={**fields, "decision": "approve"}, headers={"Origin": "http://proxy.test"}
        )
        assert response.status_code == 303, response.text
    finally:
        await harness.aclose()


async def test_deny_redirects_access_denied(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    answer = redirected_error(await harness.approve(page, decision="deny"))
    assert answer["error"] == "access_denied"
    assert answer["state"] == "client-state-1"


async def test_consent_request_is_single_use(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    first = await harness.approve(page)
    again = await harness.approve(page)
    assert first.status_code == 303
    assert again.status_code == 400
    assert "expired or was already answered" in again.text


async def test_approval_is_remembered_per_browser_client_and_workspace(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    approved = await harness.approve(page)
    assert approved.status_code == 303 and approved.headers["location"].startswith("https://upstream.test/")
    # Same browser, same client, same workspace: straight to the upstream.
    second = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert second.status_code == 303 and second.headers["location"].startswith("https://upstream.test/")
    # prompt=consent asks again.
    forced = await harness.http.get(
        "/authorize", params=harness.authorize_params(client_id, pkce()[1], prompt="consent")
    )
    assert forced.status_code == 200
    # Another workspace, or another client, asks again.
    other_workspace = await harness.http.get(
        "/authorize", params=harness.authorize_params(client_id, pkce()[1], "beta")
    )
    assert other_workspace.status_code == 200
    other_client = await harness.http.get(
        "/authorize", params=harness.authorize_params(await harness.register(), pkce()[1])
    )
    assert other_client.status_code == 200
    # Another browser (no cookie) asks again.
    harness.http.cookies.clear()
    fresh_browser = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert fresh_browser.status_code == 200


async def test_callback_redirects_with_code_state_and_iss(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    back = await harness.upstream_callback(await harness.approve(page))
    assert back.status_code == 303
    answer = query_of(back.headers["location"])
    assert set(answer) == {"code", "state", "iss"}
    assert answer["state"] == "client-state-1" and answer["iss"] == PUBLIC_URL
    assert answer["code"].startswith("cpc_")


async def test_upstream_error_goes_back_to_the_client(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    back = await harness.upstream_callback(await harness.approve(page), error="access_denied")
    answer = redirected_error(back)
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == "upstream sign-in failed: The upstream refused the sign-in (access_denied)."
    assert answer["state"] == "client-state-1"


async def test_callback_with_unknown_or_reused_state_is_a_page(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    to_upstream = await harness.approve(page)
    first = await harness.upstream_callback(to_upstream)
    assert first.status_code == 303
    for params in (
        {"code": "x", "state": query_of(to_upstream.headers["location"])["state"]},  # reused
        {"code": "x", "state": "forged"},  # unknown
        {"code": "x"},
    ):  # missing
        response = await harness.http.get("/oauth/callback", params=params)
        assert response.status_code == 400
        assert "This sign-in is unknown, expired or was already completed" in response.text


async def test_upstream_without_state_is_matched_by_cookie(harness: Harness) -> None:
    from support.auth_server import oauth

    harness.bridge.update({"alpha": oauth(["read:items"], state=False)})
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    to_upstream = await harness.approve(page)
    assert "state" not in query_of(to_upstream.headers["location"])
    back = await harness.upstream_callback(to_upstream)
    assert back.status_code == 303
    assert "code" in query_of(back.headers["location"])


async def test_upstream_unreachable_is_temporarily_unavailable(harness: Harness) -> None:
    harness.upstreams["alpha"].fail_start = True
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    answer = redirected_error(await harness.approve(page))
    assert answer["error"] == "temporarily_unavailable"


async def test_callback_after_the_sign_in_expired_is_a_page(tmp_path) -> None:
    from castproxy.auth.server.records import NS_SIGN_IN
    from castproxy.store.crypto import hash_token

    clock = FakeClock()
    store = SQLiteStore(tmp_path / "clocked.db", clock=clock)
    harness = harness_for(store)
    try:
        client_id = await harness.register()
        page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
        to_upstream = await harness.approve(page)
        state = query_of(to_upstream.headers["location"])["state"]
        record = await store.get(NS_SIGN_IN, hash_token(state))
        assert record is not None
        await store.put(NS_SIGN_IN, hash_token(state), record, ttl=0.05)  # as if the user took too long
        clock.advance(0.1)
        response = await harness.http.get("/oauth/callback", params={"code": "x", "state": state})
        assert response.status_code == 400
        assert "This sign-in is unknown, expired or was already completed" in response.text
    finally:
        await harness.aclose()
        await store.close()
