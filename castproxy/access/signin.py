"""The company sign-in in the browser: send the person to the provider, take the callback, keep a session.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from castproxy.access.oidc import Identity, IdentityError, IdentityProvider
from castproxy.access.sessions import IdentitySessions, PendingIdentity
from castproxy.auth.pkce import s256_challenge
from castproxy.auth.server.errors import error_page
from castproxy.config.loader import IDENTITY_CALLBACK_PATH
from castproxy.store.crypto import hash_token

__all__ = ["CompanySignIn"]

log = logging.getLogger("castproxy.access")

SESSION_COOKIE = "castproxy_session"
BINDING_COOKIE = "castproxy_identity"
MAX_RETURN = 4096  # an /authorize query string is well under this (state is capped at 512)


class CompanySignIn:
    def __init__(self, provider: IdentityProvider, sessions: IdentitySessions, *, public_url: str) -> None:
        self.provider = provider
        self.sessions = sessions
        self.public_url = public_url.rstrip("/")
        self.redirect_uri = self.public_url + IDENTITY_CALLBACK_PATH
        self._secure = self.public_url.startswith("https://")
        self._base_path = urlsplit(self.public_url).path  # "" or "/prefix" (public_url has no trailing slash)

    async def person(self, request: Request) -> Identity | None:
        return await self.sessions.get(request.cookies.get(SESSION_COOKIE))

    async def start(self, request: Request) -> Response:
        """Redirect to the provider; the callback returns the browser to this same /authorize request."""
        query = request.url.query
        if len(query) > MAX_RETURN:
            return error_page("Sign-in request refused", "The sign-in request is too long.")
        try:
            verifier = secrets.token_urlsafe(48)
            state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            location = await self.provider.authorization_url(
                redirect_uri=self.redirect_uri, state=state, nonce=nonce, code_challenge=s256_challenge(verifier))
        except IdentityError as exc:
            log.warning("company sign-in could not start: %s", exc)
            return error_page("Sign-in unavailable", f"The company sign-in could not start: {exc}.", status=503,
                              retry_after="30")
        binding = request.cookies.get(BINDING_COOKIE)
        if not binding or not 32 <= len(binding) <= 64:
            binding = secrets.token_urlsafe(32)
        await self.sessions.park(state, PendingIdentity(verifier, nonce, query, hash_token(binding)))
        response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
        self._cookie(response, BINDING_COOKIE, binding, max_age=900)
        return response

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state") or ""
        pending = await self.sessions.take(state) if state and len(state) <= 128 else None
        if pending is None:
            return error_page("Sign-in failed", "This company sign-in is unknown, expired or was already completed. "
                              "Start again from your MCP client.")
        binding = request.cookies.get(BINDING_COOKIE) or ""
        if not hmac.compare_digest(hash_token(binding), pending.browser):
            log.warning("company sign-in refused: the callback reached another browser")
            return error_page("Sign-in refused", "This sign-in was started in another browser (or its cookies were "
                              "blocked). Start again from your MCP client, in this browser.")
        if params.get("error"):
            error = params.get("error", "")[:80]
            description = params.get("error_description", "")[:300]
            log.warning("the identity provider refused the sign-in",
                        extra={"fields": {"error": error, "error_description": description}})
            said = f"{error}: {description}" if description else error
            return error_page("Sign-in refused", f"The company sign-in answered: {said}.", status=403)
        code = params.get("code")
        if not code:
            return error_page("Sign-in failed", "The identity provider sent no authorization code.")
        try:
            person = await self.provider.finish(code=code, redirect_uri=self.redirect_uri,
                                                code_verifier=pending.verifier, nonce=pending.nonce)
        except IdentityError as exc:
            log.warning("company sign-in refused: %s", exc, extra={"fields": {"issuer": self.provider.issuer}})
            return error_page("Sign-in refused", f"The company sign-in could not be accepted: {exc}.", status=403)
        cookie = await self.sessions.start(person)
        log.info("company sign-in", extra={"fields": {"subject": person.subject, "email": person.email}})
        response = RedirectResponse(f"{self._base_path}/authorize?{pending.return_to}", status_code=303,
                                    headers={"Cache-Control": "no-store"})
        self._cookie(response, SESSION_COOKIE, cookie, max_age=int(self.sessions.lifetime))
        response.delete_cookie(BINDING_COOKIE, path=self._base_path or "/")
        return response

    def _cookie(self, response: Response, name: str, value: str, *, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=self._base_path or "/", httponly=True, samesite="lax",
                            secure=self._secure)

    async def close(self) -> None:
        await self.provider.close()
