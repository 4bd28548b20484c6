"""Test helpers that play the OAuth client's part against the test server: authorize, answer the approval
page, read the redirect, exchange the code."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2

from castproxy.testserver.oauth import pkce_challenge

CALLBACK = "http://localhost:8080/oauth/callback"


@dataclass
class Redirect:
    target: str  # scheme://host/path of the Location
    params: dict[str, str]


def read_redirect(response: httpx2.Response) -> Redirect:
    assert response.status_code in (302, 303), (response.status_code, response.text)
    location = urlsplit(response.headers["location"])
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    return Redirect(f"{location.scheme}://{location.netloc}{location.path}", params)


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def authorize_params(
    *, client_id: str = "test-client-id", redirect_uri: str = CALLBACK, verifier: str | None = None,
    state: str = "state-123", scope: str = "read:items write:items read:users", **extra: str,
) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "scope": scope}
    if verifier is not None:
        params.update(code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    params.update(extra)
    return {key: value for key, value in params.items() if value is not None}


def approval_request_id(page: str) -> str:
    match = re.search(r"name=request_id value='([^']+)'", page)
    assert match, page
    return match.group(1)


def sign_in(http: httpx2.Client, url: str, verifier: str, *, decision: str = "approve", user_id: int = 1,
            **params: str) -> Redirect:
    """GET the authorization endpoint, answer the approval page, return the redirect back to the client."""
    page = http.get(f"{url}/auth/authorize", params=authorize_params(verifier=verifier, **params))
    assert page.status_code == 200, page.text
    answer = http.post(f"{url}/auth/authorize", data={
        "request_id": approval_request_id(page.text), "decision": decision, "user_id": str(user_id)})
    return read_redirect(answer)


def exchange(http: httpx2.Client, url: str, code: str, verifier: str | None, *, secret: str,
             client_id: str = "test-client-id", redirect_uri: str = CALLBACK) -> httpx2.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post(f"{url}/auth/token", data=form, auth=httpx2.BasicAuth(client_id, secret))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
