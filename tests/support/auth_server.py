"""castproxy's authorization server driven in-process: a stand-in upstream sign-in and a browser-like driver.

`FakeUpstream` has UpstreamOAuth's sign-in surface (start/complete/access_token/revoke) without an
upstream HTTP server, so these tests exercise castproxy's own authorization server alone; the
end-to-end tests (tests/e2e) use the real UpstreamOAuth against a real upstream.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from castproxy.auth.bridge import AuthBridge
from castproxy.auth.credentials import SignInRequired, UpstreamCredentials
from castproxy.auth.upstream_oauth import SignInError, UpstreamOAuth
from castproxy.config.model import OAuth2Auth
from castproxy.store.base import Store
from castproxy.store.crypto import Cipher
from support.clock import FakeClock

PUBLIC_URL = "http://proxy.test"
CLIENT_REDIRECT = "http://127.0.0.1:5173/callback"


def oauth(scopes: list[str], grant: str = "authorization_code", state: bool = True) -> OAuth2Auth:
    return OAuth2Auth(
        type="oauth2",
        grant=grant,  # type: ignore[arg-type]
        authorization_url="https://upstream.test/authorize",
        token_url="https://upstream.test/token",
        client_id="castproxy-at-upstream",
        scopes=scopes,
        state=state,
    )


@dataclass
class Pending:
    url: str
    state: str


@dataclass
class Outcome:
    grant_id: str
    context: dict[str, Any]


@dataclass
class FakeUpstream:
    workspace: str
    auth: OAuth2Auth
    callback_url: str
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    fail_start: bool = False
    requested_scopes: list[tuple[str, ...] | None] = field(default_factory=list)  # per start_sign_in
    narrowed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (grant id, scopes) per narrow
    fail_narrow: Exception | None = None

    async def start_sign_in(self, context: dict[str, Any], *, scopes: tuple[str, ...] | None = None) -> Pending:
        if self.fail_start:
            raise SignInError("upstream metadata could not be fetched")
        self.requested_scopes.append(None if scopes is None else tuple(scopes))
        state = secrets.token_urlsafe(16)
        self.pending[state] = context
        query = {"client_id": "castproxy-at-upstream", "redirect_uri": self.callback_url}
        if scopes:
            query["scope"] = " ".join(scopes)
        if self.auth.state:
            query["state"] = state
        return Pending(f"https://upstream.test/authorize?{urlencode(query)}", state)

    async def complete_sign_in(self, params: dict[str, str], *, state: str | None = None) -> Outcome:
        context = self.pending.pop(params.get("state") if self.auth.state else state or "", None)
        if context is None:
            raise SignInError("The sign-in state is unknown, already used or expired.")
        if "error" in params:
            raise SignInError(f"The upstream refused the sign-in ({params['error']}).")
        grant_id = "grant-" + secrets.token_urlsafe(8)
        self.grants[grant_id] = "upstream-token-" + secrets.token_urlsafe(8)
        return Outcome(grant_id, context)

    async def access_token(self, grant_id: str, *, rejected: str | None = None) -> str:
        if grant_id not in self.grants:
            raise SignInRequired("the upstream grant is gone")
        return self.grants[grant_id]

    async def service_token(self, *, rejected: str | None = None) -> str:
        return "service-token-" + self.workspace

    async def revoke(self, grant_id: str) -> None:
        self.grants.pop(grant_id, None)
        self.revoked.append(grant_id)

    async def narrow(self, grant_id: str, scopes: tuple[str, ...]) -> None:
        if self.fail_narrow is not None:
            raise self.fail_narrow
        self.narrowed.append((grant_id, tuple(scopes)))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="(request_id|csrf_token)" value="([^"]*)"', page))


@dataclass
class SignedIn:
    access_token: str
    refresh_token: str
    grant_id: str
    client_id: str
    body: dict[str, Any]


class Harness:
    """castproxy's auth routes plus a protected `/mcp/{workspace}` echoing the grant id, driven in-process."""

    def __init__(self, bridge: AuthBridge, upstreams: dict[str, FakeUpstream], clock: Any) -> None:
        self.bridge = bridge
        self.upstreams = upstreams
        self.clock = clock  # the bridge's: a FakeClock unless the test passed its own

        async def mcp(request: Request) -> Response:
            outcome = await bridge.authenticate(request, request.path_params["workspace"])
            if isinstance(outcome, Response):
                return outcome
            headers: dict[str, str] = {}
            try:
                await bridge.credentials_for(request.path_params["workspace"]).apply(headers, outcome)
            except SignInRequired:
                return JSONResponse({"error": "sign_in_required"}, status_code=401)
            return JSONResponse({"grant_id": outcome, "upstream_authorization": headers["Authorization"]})

        app = Starlette(routes=[*bridge.routes(), Route("/mcp/{workspace}", mcp, methods=["POST", "GET"])])
        self.app = app
        self.http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=PUBLIC_URL)
        self._callers: list[httpx2.AsyncClient] = []

    def caller(self, address: str) -> httpx2.AsyncClient:
        """A client of the same routes whose requests come from `address` (closed with the harness)."""
        transport = httpx2.ASGITransport(app=self.app, client=(address, 40000))
        self._callers.append(httpx2.AsyncClient(transport=transport, base_url=PUBLIC_URL))
        return self._callers[-1]

    async def register(self, redirect_uris: list[str] | None = None, **extra: Any) -> str:
        response = await self.http.post(
            "/register",
            json={"redirect_uris": redirect_uris or [CLIENT_REDIRECT], "client_name": "Test client", **extra},
        )
        assert response.status_code == 201, response.text
        return response.json()["client_id"]

    def authorize_params(self, client_id: str, challenge: str, workspace: str = "alpha", **over: str | None) -> dict:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CLIENT_REDIRECT,
            "state": "client-state-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{PUBLIC_URL}/mcp/{workspace}",
        }
        params.update(over)
        return {key: value for key, value in params.items() if value is not None}

    async def approve(self, page: httpx2.Response, decision: str = "approve") -> httpx2.Response:
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        return await self.http.post("/authorize/consent", data={**fields, "decision": decision})

    async def upstream_callback(self, upstream_redirect: httpx2.Response, **params: str) -> httpx2.Response:
        """Play the upstream: it sends the browser back to castproxy's callback with a code and the state."""
        assert upstream_redirect.status_code == 303, upstream_redirect.text
        location = upstream_redirect.headers["location"]
        assert location.startswith("https://upstream.test/authorize")
        state = query_of(location).get("state")
        query = {"code": "upstream-code", **({"state": state} if state else {}), **params}
        return await self.http.get("/oauth/callback", params=query)

    async def code_for(self, client_id: str, verifier_challenge: tuple[str, str], workspace: str = "alpha") -> str:
        page = await self.http.get(
            "/authorize", params=self.authorize_params(client_id, verifier_challenge[1], workspace)
        )
        if page.status_code == 200:
            page = await self.approve(page)
        back = await self.upstream_callback(page)
        assert back.status_code == 303, back.text
        answer = query_of(back.headers["location"])
        assert "code" in answer, answer
        return answer["code"]

    async def exchange(self, client_id: str, code: str, verifier: str, **over: str) -> httpx2.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLIENT_REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            **over,
        }
        return await self.http.post("/token", data=data)

    async def refresh(self, client_id: str, refresh_token: str, **over: str) -> httpx2.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **over}
        return await self.http.post("/token", data=data)

    async def sign_in(self, workspace: str = "alpha", client_id: str | None = None) -> SignedIn:
        client_id = client_id or await self.register()
        verifier, challenge = pkce()
        code = await self.code_for(client_id, (verifier, challenge), workspace)
        response = await self.exchange(client_id, code, verifier)
        assert response.status_code == 200, response.text
        body = response.json()
        call = await self.call(workspace, body["access_token"])
        return SignedIn(body["access_token"], body["refresh_token"], call.json()["grant_id"], client_id, body)

    async def call(self, workspace: str, token: str | None, **kwargs: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(f"/mcp/{workspace}", headers=headers, **kwargs)

    async def aclose(self) -> None:
        for client in self._callers:
            await client.aclose()
        await self.http.aclose()
        await self.bridge.close()


# The workspaces every authorization-server test runs against.
WORKSPACES = {
    "alpha": oauth(["read:items", "write:items"]),
    "beta": oauth(["read:users"]),
    "service": oauth(["read:items"], grant="client_credentials"),
}


def harness_for(store: Store, **bridge_options: Any) -> Harness:
    """A bridge over `store` serving WORKSPACES, each signing in at a FakeUpstream; `aclose()` it after.
    Its clock (`harness.clock`) is a FakeClock unless `clock=` is given: expiry is a clock step, not a sleep."""
    upstreams: dict[str, FakeUpstream] = {}

    def factory(name: str, auth: OAuth2Auth, callback_url: str) -> FakeUpstream:
        upstreams[name] = FakeUpstream(name, auth, callback_url)
        return upstreams[name]

    bridge_options.setdefault("public_url", PUBLIC_URL)
    bridge_options.setdefault("clock", FakeClock())
    bridge = AuthBridge(store=store, cipher=Cipher.from_secret("s" * 32), upstream_factory=factory, **bridge_options)
    bridge.update(WORKSPACES)
    return Harness(bridge, upstreams, bridge_options["clock"])


def bridge_credentials(oauth: UpstreamOAuth) -> UpstreamCredentials:
    """What a tool call of `oauth`'s workspace applies: an AuthBridge's credentials over it (production's path)."""
    bridge = AuthBridge(store=oauth.store, cipher=oauth.cipher, public_url=PUBLIC_URL,
                        upstream_factory=lambda *_: oauth)
    bridge.update({oauth.workspace: oauth.auth})
    return bridge.credentials_for(oauth.workspace)
