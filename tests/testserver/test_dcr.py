"""Mode `oauth-dcr`: RFC 7591 registration at POST /auth/clients, and registered clients signing in."""

from __future__ import annotations

import httpx2
import pytest

from testserver.flow import bearer, exchange, new_verifier, sign_in

APP_CALLBACK = "http://127.0.0.1:9000/oauth/callback"


@pytest.fixture
def dcr(start_server):
    app, server = start_server("oauth-dcr")
    return app, server.url


def register(http, url, **metadata):
    return http.post(f"{url}/auth/clients", json={"redirect_uris": [APP_CALLBACK], "client_name": "my app", **metadata})


def test_metadata_lists_the_registration_endpoint(dcr, http):
    _, url = dcr
    metadata = http.get(f"{url}/.well-known/oauth-authorization-server").json()
    assert metadata["registration_endpoint"] == f"{url}/auth/clients"


def test_a_registered_client_signs_in(dcr, http):
    _, url = dcr
    registered = register(http, url)
    assert registered.status_code == 201
    client = registered.json()
    assert client["client_id"].startswith("dcr_") and client["client_secret"].startswith("cs_")
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    assert client["grant_types"] == ["authorization_code", "refresh_token"]
    assert client["client_secret_expires_at"] == 0 and client["redirect_uris"] == [APP_CALLBACK]
    verifier = new_verifier()
    back = sign_in(http, url, verifier, client_id=client["client_id"], redirect_uri=APP_CALLBACK)
    tokens = exchange(http, url, back.params["code"], verifier, secret=client["client_secret"],
                      client_id=client["client_id"], redirect_uri=APP_CALLBACK)
    assert tokens.status_code == 200
    assert http.get(f"{url}/api/items", headers=bearer(tokens.json()["access_token"])).status_code == 200


def test_the_pre_registered_client_still_works(dcr, http):
    app, url = dcr
    verifier = new_verifier()
    back = sign_in(http, url, verifier)
    assert exchange(http, url, back.params["code"], verifier, secret=app.state.credentials.client_secret).is_success


def test_a_client_must_use_the_auth_method_it_registered(dcr, http):
    _, url = dcr
    client = register(http, url, token_endpoint_auth_method="client_secret_post",
                      grant_types=["client_credentials"]).json()
    basic = http.post(f"{url}/auth/token", auth=httpx2.BasicAuth(client["client_id"], client["client_secret"]),
                      data={"grant_type": "client_credentials"})
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    posted = http.post(f"{url}/auth/token", data={"grant_type": "client_credentials", "client_id": client["client_id"],
                                                  "client_secret": client["client_secret"]})
    assert posted.status_code == 200
    code_grant = http.get(f"{url}/auth/authorize", params={"client_id": client["client_id"], "response_type": "code",
                                                           "redirect_uri": APP_CALLBACK, "state": "s"})
    assert code_grant.status_code == 302 and "unauthorized_client" in code_grant.headers["location"]


def test_a_public_client_signs_in_with_pkce_alone(dcr, http):
    _, url = dcr
    client = register(http, url, token_endpoint_auth_method="none").json()
    assert "client_secret" not in client
    verifier = new_verifier()
    back = sign_in(http, url, verifier, client_id=client["client_id"], redirect_uri=APP_CALLBACK)
    tokens = http.post(f"{url}/auth/token", data={
        "grant_type": "authorization_code", "code": back.params["code"], "redirect_uri": APP_CALLBACK,
        "code_verifier": verifier, "client_id": client["client_id"]})
    assert tokens.status_code == 200, tokens.text


@pytest.mark.parametrize(("metadata", "error"), [
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"redirect_uris": ["not a uri"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://x.example/cb#frag"]}, "invalid_redirect_uri"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    ({"scope": "read:items admin"}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
])
def test_bad_registrations_are_refused(dcr, http, metadata, error):
    _, url = dcr
    refused = register(http, url, **metadata)
    assert refused.status_code == 400 and refused.json()["error"] == error


def test_a_body_that_is_not_an_object_is_refused(dcr, http):
    _, url = dcr
    refused = http.post(f"{url}/auth/clients", content=b"[1]", headers={"content-type": "application/json"})
    assert refused.json()["error"] == "invalid_client_metadata"


def test_a_forgotten_client_is_invalid_client(dcr, http):
    app, url = dcr
    client = register(http, url, grant_types=["client_credentials"]).json()
    app.state.oauth.forget_client(client["client_id"])
    refused = http.post(f"{url}/auth/token", auth=httpx2.BasicAuth(client["client_id"], client["client_secret"]),
                        data={"grant_type": "client_credentials"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_registered_scopes_limit_what_the_client_may_ask(dcr, http):
    _, url = dcr
    client = register(http, url, scope="read:items").json()
    assert client["scope"] == "read:items"
    verifier = new_verifier()
    back = sign_in(http, url, verifier, client_id=client["client_id"], redirect_uri=APP_CALLBACK, scope="")
    tokens = exchange(http, url, back.params["code"], verifier, secret=client["client_secret"],
                      client_id=client["client_id"], redirect_uri=APP_CALLBACK).json()
    assert tokens["scope"] == "read:items"
