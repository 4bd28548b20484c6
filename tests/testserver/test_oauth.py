"""Mode `oauth`: the authorization server's flows and every refusal the proxy's OAuth client may meet."""

from __future__ import annotations

import re

import httpx2
import pytest

from testserver.flow import (
    CALLBACK,
    approval_request_id,
    authorize_params,
    bearer,
    exchange,
    new_verifier,
    read_redirect,
    sign_in,
)


@pytest.fixture
def oauth(start_server):
    app, server = start_server("oauth")
    return app, server.url, app.state.credentials.client_secret


def test_metadata_follows_rfc_8414(oauth, http):
    _, url, _ = oauth
    metadata = http.get(f"{url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == url
    assert metadata["authorization_endpoint"] == f"{url}/auth/authorize"
    assert metadata["token_endpoint"] == f"{url}/auth/token"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token"}
    assert metadata["scopes_supported"] == ["read:items", "write:items", "read:users"]
    assert "registration_endpoint" not in metadata


def test_credentials_are_generated(oauth):
    app, _, secret = oauth
    assert app.state.credentials.client_id == "test-client-id"
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{20,}", secret)
    assert app.state.credentials.redirect_uris == (
        "http://localhost:8080/oauth/callback", "http://127.0.0.1:8080/oauth/callback")


def test_sign_in_through_the_approval_page_then_call_the_api(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    page = http.get(f"{url}/auth/authorize", params=authorize_params(verifier=verifier))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "read:users" in page.text and "Approve" in page.text and "Deny" in page.text
    answer = http.post(f"{url}/auth/authorize", data={
        "request_id": approval_request_id(page.text), "decision": "approve", "user_id": "2"})
    back = read_redirect(answer)
    assert back.target == CALLBACK
    assert back.params["state"] == "state-123" and back.params["iss"] == url
    tokens = exchange(http, url, back.params["code"], verifier, secret=secret)
    assert tokens.status_code == 200 and tokens.headers["cache-control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "read:items write:items read:users" and body["refresh_token"].startswith("rt_")
    me = http.get(f"{url}/api/me", headers=bearer(body["access_token"])).json()
    assert me["user"]["email"] == "bob@example.com" and me["client_id"] == "test-client-id"
    created = http.post(f"{url}/api/items", json={"name": "Mine"}, headers=bearer(body["access_token"]))
    assert created.status_code == 201 and created.json()["owner_id"] == 2


def test_the_approval_page_answers_once(oauth, http):
    _, url, _ = oauth
    page = http.get(f"{url}/auth/authorize", params=authorize_params(verifier=new_verifier()))
    form = {"request_id": approval_request_id(page.text), "decision": "approve"}
    assert http.post(f"{url}/auth/authorize", data=form).status_code == 303
    again = http.post(f"{url}/auth/authorize", data=form)
    assert again.status_code == 400 and "already answered" in again.text


def test_deny_redirects_with_access_denied_and_the_state(oauth, http):
    _, url, _ = oauth
    back = sign_in(http, url, new_verifier(), decision="deny", state="s-deny")
    assert back.params["error"] == "access_denied" and back.params["state"] == "s-deny"
    assert "code" not in back.params


def test_auto_approve_redirects_at_once_and_takes_a_login_hint(start_server, http):
    app, server = start_server("oauth", auto_approve=True)
    verifier = new_verifier()
    answer = http.get(f"{server.url}/auth/authorize",
                      params=authorize_params(verifier=verifier, login_hint="carol@example.com"))
    back = read_redirect(answer)
    tokens = exchange(http, server.url, back.params["code"], verifier, secret=app.state.credentials.client_secret)
    me = http.get(f"{server.url}/api/me", headers=bearer(tokens.json()["access_token"])).json()
    assert me["user"]["name"] == "Carol Diaz"


def test_client_secret_post_is_accepted(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    back = sign_in(http, url, verifier)
    tokens = http.post(f"{url}/auth/token", data={
        "grant_type": "authorization_code", "code": back.params["code"], "redirect_uri": CALLBACK,
        "code_verifier": verifier, "client_id": "test-client-id", "client_secret": secret})
    assert tokens.status_code == 200, tokens.text


def test_bad_client_secret_is_invalid_client(oauth, http):
    _, url, _ = oauth
    verifier = new_verifier()
    back = sign_in(http, url, verifier)
    refused = exchange(http, url, back.params["code"], verifier, secret="cs_wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["www-authenticate"].startswith("Basic")
    posted = http.post(f"{url}/auth/token", data={"grant_type": "client_credentials",
                                                   "client_id": "test-client-id", "client_secret": "nope"})
    assert posted.status_code == 401 and posted.json()["error"] == "invalid_client"
    no_secret = http.post(f"{url}/auth/token", data={"grant_type": "client_credentials", "client_id": "test-client-id"})
    assert no_secret.status_code == 401


def test_unknown_client_or_redirect_uri_gets_an_error_page_not_a_redirect(oauth, http):
    _, url, _ = oauth
    verifier = new_verifier()
    unknown = http.get(f"{url}/auth/authorize", params=authorize_params(verifier=verifier, client_id="someone"))
    assert unknown.status_code == 400 and "location" not in unknown.headers
    for uri in ("http://evil.example/oauth/callback", CALLBACK + "/", CALLBACK + "?x=1", "http://localhost:8081/oauth/callback"):
        wrong = http.get(f"{url}/auth/authorize", params=authorize_params(verifier=verifier, redirect_uri=uri))
        assert wrong.status_code == 400 and "location" not in wrong.headers, uri
        assert "not registered" in wrong.text


def test_redirect_uri_option_replaces_the_defaults(start_server, http):
    _, server = start_server("oauth", redirect_uris=["http://127.0.0.1:9999/cb"])
    verifier = new_verifier()
    assert http.get(f"{server.url}/auth/authorize", params=authorize_params(verifier=verifier)).status_code == 400
    back = sign_in(http, server.url, verifier, redirect_uri="http://127.0.0.1:9999/cb")
    assert back.target == "http://127.0.0.1:9999/cb" and "code" in back.params


def test_token_request_must_repeat_the_same_redirect_uri(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    back = sign_in(http, url, verifier)
    refused = exchange(http, url, back.params["code"], verifier, secret=secret,
                       redirect_uri="http://127.0.0.1:8080/oauth/callback")
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "redirect_uri does not match the authorization request"}


@pytest.mark.parametrize(("change", "description"), [
    ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is required (PKCE S256)"),
    ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
    ({"code_challenge": "short"}, "code_challenge is malformed"),
    ({"response_type": "token"}, "response_type must be code"),
    ({"scope": "read:items delete:everything"}, "scope not allowed: delete:everything"),
])
def test_bad_authorization_requests_redirect_with_an_error(oauth, http, change, description):
    _, url, _ = oauth
    params = authorize_params(verifier=new_verifier())
    params.update(change)
    back = read_redirect(http.get(f"{url}/auth/authorize", params={k: v for k, v in params.items() if v is not None}))
    assert back.params["error_description"] == description
    assert back.params["state"] == "state-123" and "code" not in back.params


def test_state_is_required(oauth, http):
    _, url, _ = oauth
    params = authorize_params(verifier=new_verifier())
    del params["state"]
    back = read_redirect(http.get(f"{url}/auth/authorize", params=params))
    assert back.params == {"error": "invalid_request", "error_description": "state is required", "iss": url}


def test_missing_or_wrong_code_verifier_is_refused(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    back = sign_in(http, url, verifier)
    missing = exchange(http, url, back.params["code"], None, secret=secret)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = exchange(http, url, back.params["code"], new_verifier(), secret=secret)
    assert wrong.json() == {"error": "invalid_grant",
                            "error_description": "code_verifier does not match the code_challenge"}
    # The failed attempts did not burn the code: the right verifier still works.
    assert exchange(http, url, back.params["code"], verifier, secret=secret).status_code == 200


def test_a_reused_code_is_refused_and_revokes_its_tokens(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    code = sign_in(http, url, verifier).params["code"]
    first = exchange(http, url, code, verifier, secret=secret).json()
    replay = exchange(http, url, code, verifier, secret=secret)
    assert replay.json()["error"] == "invalid_grant" and "already used" in replay.json()["error_description"]
    assert http.get(f"{url}/api/items", headers=bearer(first["access_token"])).status_code == 401


def test_an_expired_code_is_refused(oauth, http):
    app, url, secret = oauth
    verifier = new_verifier()
    code = sign_in(http, url, verifier).params["code"]
    real_clock = app.state.oauth.clock
    app.state.oauth.clock = lambda: real_clock() + 61
    refused = exchange(http, url, code, verifier, secret=secret)
    assert refused.json()["error_description"] == "the authorization code expired"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    first = exchange(http, url, sign_in(http, url, verifier).params["code"], verifier, secret=secret).json()
    auth = httpx2.BasicAuth("test-client-id", secret)
    second = http.post(f"{url}/auth/token", auth=auth,
                       data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert http.get(f"{url}/api/users", headers=bearer(second["access_token"])).status_code == 200
    reused = http.post(f"{url}/auth/token", auth=auth,
                       data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # Reuse means theft: the newer tokens of that sign-in stop working too.
    assert http.get(f"{url}/api/users", headers=bearer(second["access_token"])).status_code == 401
    later = http.post(f"{url}/auth/token", auth=auth,
                      data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert later.json()["error"] == "invalid_grant"


def test_refresh_may_narrow_but_not_widen_scopes(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    code = sign_in(http, url, verifier, scope="read:items").params["code"]
    tokens = exchange(http, url, code, verifier, secret=secret).json()
    auth = httpx2.BasicAuth("test-client-id", secret)
    widened = http.post(f"{url}/auth/token", auth=auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "read:items read:users"})
    assert widened.json()["error"] == "invalid_scope"


def test_an_expired_access_token_is_invalid_token(start_server, http):
    app, server = start_server("oauth", token_lifetime=0)
    verifier = new_verifier()
    code = sign_in(http, server.url, verifier).params["code"]
    tokens = exchange(http, server.url, code, verifier, secret=app.state.credentials.client_secret).json()
    assert tokens["expires_in"] == 0
    refused = http.get(f"{server.url}/api/items", headers=bearer(tokens["access_token"]))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert "expired" in refused.headers["www-authenticate"]


def test_api_refusals_carry_www_authenticate(oauth, http):
    _, url, _ = oauth
    missing = http.get(f"{url}/api/users")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="castproxy-testserver", scope="read:users"'
    unknown = http.get(f"{url}/api/users", headers=bearer("at_made_up"))
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_token"
    basic = http.get(f"{url}/api/users", auth=httpx2.BasicAuth("a", "b"))
    assert basic.status_code == 401


def test_scopes_are_enforced_per_endpoint(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    code = sign_in(http, url, verifier, scope="read:items").params["code"]
    token = exchange(http, url, code, verifier, secret=secret).json()["access_token"]
    assert http.get(f"{url}/api/items", headers=bearer(token)).status_code == 200
    users = http.get(f"{url}/api/users", headers=bearer(token))
    assert users.status_code == 403 and users.json()["error"] == "insufficient_scope"
    assert 'scope="read:users"' in users.headers["www-authenticate"]
    assert http.post(f"{url}/api/items", json={"name": "x"}, headers=bearer(token)).status_code == 403
    assert http.delete(f"{url}/api/items/1", headers=bearer(token)).status_code == 403


def test_client_credentials_issues_a_token_without_refresh(oauth, http):
    _, url, secret = oauth
    answer = http.post(f"{url}/auth/token", auth=httpx2.BasicAuth("test-client-id", secret),
                       data={"grant_type": "client_credentials", "scope": "read:items read:users"})
    body = answer.json()
    assert answer.status_code == 200 and "refresh_token" not in body and body["scope"] == "read:items read:users"
    me = http.get(f"{url}/api/me", headers=bearer(body["access_token"])).json()
    assert me["user"] is None and me["client_id"] == "test-client-id"
    assert http.post(f"{url}/api/items", json={"name": "x"}, headers=bearer(body["access_token"])).status_code == 403


def test_unsupported_grant_type_and_two_auth_methods(oauth, http):
    _, url, secret = oauth
    auth = httpx2.BasicAuth("test-client-id", secret)
    assert http.post(f"{url}/auth/token", auth=auth, data={"grant_type": "password"}).json()["error"] == \
        "unsupported_grant_type"
    both = http.post(f"{url}/auth/token", auth=auth, data={"grant_type": "client_credentials", "client_secret": secret})
    assert both.json()["error"] == "invalid_request"


def test_revoking_the_refresh_token_ends_the_grant(oauth, http):
    _, url, secret = oauth
    verifier = new_verifier()
    tokens = exchange(http, url, sign_in(http, url, verifier).params["code"], verifier, secret=secret).json()
    auth = httpx2.BasicAuth("test-client-id", secret)
    assert http.post(f"{url}/auth/revoke", auth=auth, data={"token": tokens["refresh_token"]}).status_code == 200
    assert http.get(f"{url}/api/items", headers=bearer(tokens["access_token"])).status_code == 401
    refused = http.post(f"{url}/auth/token", auth=auth,
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refused.json()["error"] == "invalid_grant"


def test_document_declares_oauth_flows_and_per_operation_scopes(oauth, http):
    _, url, _ = oauth
    document = http.get(f"{url}/openapi.json").json()
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["authorizationCode"]["authorizationUrl"] == f"{url}/auth/authorize"
    assert flows["clientCredentials"]["tokenUrl"] == f"{url}/auth/token"
    assert document["paths"]["/api/users"]["get"]["security"] == [{"oauth2": ["read:users"]}]
    assert document["paths"]["/api/items"]["post"]["security"] == [{"oauth2": ["write:items"]}]
    assert http.post(f"{url}/auth/clients", json={"redirect_uris": [CALLBACK]}).status_code in (404, 405)
