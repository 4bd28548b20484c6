"""The company identity provider in tests: `oidc-provider` (a certified OP, run with Node) and a browser
stand-in that signs a person in there, plus a small test-controlled provider whose ID tokens can be wrong.

`CompanyBrowser` does what Browser (support.oauth_client) does and, on the provider's development login and
consent pages, logs in as its person (any password is accepted there) and continues.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx2
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from support.net import free_port, free_socket
from support.node import NODE_TOOLS, node22, unavailable
from support.oauth_client import Browser, query_of
from support.servers import Running, run

PROVIDER_SCRIPT = __file__.rsplit("/", 1)[0] + "/oidc_provider.mjs"
CLIENT_ID = "castproxy-test"
CLIENT_SECRET = "idp-client-secret-0123456789abcdef"
PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@corp.example", "email_verified": True, "name": "Alice Admin",
              "groups": ["eng", "admins"]},
    "bob": {"email": "bob@corp.example", "email_verified": True, "name": "Bob Builder", "groups": ["eng"]},
    "mallory": {"email": "mallory@elsewhere.example", "email_verified": True, "name": "Mallory", "groups": ["sales"]},
}


@dataclass
class OidcProvider:
    process: subprocess.Popen[str]
    issuer: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_oidc_provider(redirect_uris: list[str]) -> OidcProvider:
    """oidc-provider on a free loopback port with CLIENT_ID and PEOPLE; up once it prints its issuer."""
    if not (NODE_TOOLS / "oidc-provider" / "package.json").exists():
        unavailable("oidc-provider is not installed under .cache/node-tools")
    port = free_port()
    settings = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris,
                "people": PEOPLE}
    process = subprocess.Popen(
        [node22(), PROVIDER_SCRIPT, str(port), json.dumps(settings)],
        cwd=NODE_TOOLS.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "OIDC_PROVIDER_MAIN": str(NODE_TOOLS / "oidc-provider" / "lib" / "index.js")},
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until it listens (or exits)
    if not line.startswith("ready "):
        process.kill()
        raise AssertionError(f"oidc-provider did not start: {line!r}")
    return OidcProvider(process, line.split()[1])


@dataclass
class CompanyBrowser(Browser):
    """A browser that signs `person` in at the identity provider when its login or consent page shows."""

    person: str = "alice"
    provider_logins: int = 0
    pages: list[tuple[int, str]] = field(default_factory=list)  # (status, text) of pages that stopped a sign-in

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        self._answer = asyncio.get_running_loop().create_future()
        location = authorization_url
        for _ in range(20):
            if location.startswith(self.client_redirect):
                self._answer.set_result(query_of(location))
                return
            self.visited.append(location)
            response = await self.open(location)
            if response.status_code in (302, 303):
                location = urljoin(location, response.headers["location"])
                continue
            self.pages.append((response.status_code, response.text))
            self._answer.set_result({"error": "stopped", "status": str(response.status_code)})
            return
        raise AssertionError("too many redirects during sign-in")

    async def open(self, location: str) -> httpx2.Response:
        """GET `location` and answer the page it shows (consent, provider login, provider consent)."""
        response = await self.http.get(location)
        if response.status_code != 200:
            return response
        text = response.text
        action = re.search(r'<form[^>]*action="([^"]+)"', text)
        parts = urlsplit(location)
        if 'name="csrf_token"' in text and action is not None:  # castproxy's consent page
            self.consent_pages += 1
            fields = dict(re.findall(r'name="(request_id|csrf_token)" value="([^"]*)"', text))
            return await self.http.post(action.group(1), data={**fields, "decision": "approve"},
                                        headers={"Origin": f"{parts.scheme}://{parts.netloc}"})
        if 'name="prompt" value="login"' in text and action is not None:  # the provider's login page
            self.provider_logins += 1
            return await self.http.post(action.group(1), data={"prompt": "login", "login": self.person,
                                                               "password": "any"})
        if 'name="prompt" value="consent"' in text and action is not None:
            return await self.http.post(action.group(1), data={"prompt": "consent"})
        return response

    async def callback_handler(self) -> Any:
        from support.oauth_client import code_result

        assert self._answer is not None
        answer = await self._answer
        if "code" not in answer:
            raise AssertionError(f"sign-in stopped: {self.pages[-1] if self.pages else answer}")
        return code_result(answer)


# -- a provider whose ID tokens the test spoils on purpose ------------------------------------------------------

@dataclass
class SpoilingProvider:
    """A small OIDC provider (discovery, JWKS, authorize, token) signing with its own RSA key; `spoil` names
    what is wrong with the next ID tokens: None | "nonce" | "audience" | "expired" | "signature" | "issuer"."""

    running: Running
    issuer: str
    spoil: str | None = None

    def stop(self) -> None:
        self.running.stop()


def start_test_provider() -> SpoilingProvider:
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
    other = RSAKey.generate_key(2048, parameters={"kid": "test-key"})  # same kid, different key: forged
    codes: dict[str, dict[str, str]] = {}
    sock = free_socket()
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    holder: dict[str, SpoilingProvider] = {}

    async def discovery(request: Request) -> Response:
        return JSONResponse({"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                             "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                             "response_types_supported": ["code"], "subject_types_supported": ["public"],
                             "id_token_signing_alg_values_supported": ["RS256"]})

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [key.as_dict(private=False)]})

    async def authorize(request: Request) -> Response:
        params = request.query_params
        code = f"code-{len(codes)}"
        codes[code] = {"nonce": params["nonce"], "redirect_uri": params["redirect_uri"]}
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}",
                                status_code=303)

    async def token(request: Request) -> Response:
        form = await request.form()
        pending = codes.pop(str(form.get("code")), None)
        if pending is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        spoil = holder["provider"].spoil
        now = int(time.time())
        claims = {"iss": issuer, "sub": "carol", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": pending["nonce"], "email": "carol@corp.example", "email_verified": True}
        if spoil == "nonce":
            claims["nonce"] = "a-nonce-from-another-sign-in"
        elif spoil == "audience":
            claims["aud"] = "some-other-client"
        elif spoil == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif spoil == "issuer":
            claims["iss"] = "http://127.0.0.1:1/elsewhere"
        signer = other if spoil == "signature" else key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, signer)
        return JSONResponse({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

    app = Starlette(routes=[
        Route("/.well-known/openid-configuration", discovery),
        Route("/jwks", jwks),
        Route("/authorize", authorize),
        Route("/token", token, methods=["POST"]),
    ])
    provider = SpoilingProvider(run(app, sock), issuer)
    holder["provider"] = provider
    return provider
