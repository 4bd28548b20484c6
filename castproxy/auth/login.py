"""castproxy logged in at an upstream's login endpoint (`auth.type: login`): the token, kept and renewed.

Why it works this way: docs/architecture.md, "Login upstreams" and "Module notes".
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

import httpx2
from joserfc import jws
from joserfc.errors import JoseError

from castproxy.auth.credentials import UpstreamCredentials, bearer_token, set_bearer
from castproxy.auth.events import NO_EVENTS, AuthEvents
from castproxy.auth.upstream_oauth import UpstreamAuthError
from castproxy.auth.upstream_tokens import TokenSet, safe_word
from castproxy.config.model import LoginAuth
from castproxy.store.base import LockTimeout, Store
from castproxy.store.crypto import Cipher, InvalidCiphertext, record_aad
from castproxy.store.locks import KeyedLocks

__all__ = ["LoginClients", "LoginCredentials", "LoginError", "UpstreamLogin", "login_protected_headers", "sent_token"]

log = logging.getLogger(__name__)

NS_LOGIN = "upstream-login"
LOCK_TIMEOUT = 30.0
IDLE_TTL = 30 * 24 * 3600.0  # a stored token with a refresh token, unused this long, is dropped
REFUSED_PAUSE = 30.0  # after the upstream refused the credentials, calls fail at once for this long
MAX_TOKEN_CHARS = 16 * 1024
DEFAULT_TOKEN_FIELDS = ("access_token", "token")

Clock = Callable[[], float]


class LoginError(UpstreamAuthError):
    """The login (or its refresh) failed; the message names the workspace and never a secret."""


def locate(answer: object, where: str) -> object:
    """The value at a field name or an RFC 6901 JSON pointer ("/data/token") of a JSON answer; None if absent."""
    if not where.startswith("/"):
        return answer.get(where) if isinstance(answer, dict) else None
    node = answer
    for raw in where[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def jwt_lifetime(token: str) -> float | None:
    """Seconds a JWT lives by its own claims (`exp - iat`), read WITHOUT verifying: castproxy is not its audience.

    Without `iat`, None: `exp` alone is compared with castproxy's clock by the caller (`jwt_expiry`).
    """
    claims = _jwt_claims(token)
    exp, iat = claims.get("exp"), claims.get("iat")
    if _number(exp) and _number(iat) and float(exp) > float(iat):
        return float(exp) - float(iat)
    return None


def jwt_expiry(token: str) -> float | None:
    """The JWT's `exp` claim (epoch seconds), unverified; None for a token that is not a JWT or has none."""
    exp = _jwt_claims(token).get("exp")
    return float(exp) if _number(exp) else None


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _jwt_claims(token: str) -> dict[str, Any]:
    if token.count(".") != 2:
        return {}
    try:
        claims = json.loads(jws.extract_compact(token.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def sent_token(auth: LoginAuth, headers: Mapping[str, str]) -> str | None:
    """The token a request carries where this login config sends it (to name the one the upstream refused)."""
    if auth.send_as == "bearer":
        return bearer_token(headers)
    wanted = (auth.header or "").lower()
    for name, value in headers.items():
        if name.lower() == wanted:
            return value[len(auth.prefix) :] if value.startswith(auth.prefix) else None
    return None


def login_protected_headers(auth: LoginAuth) -> frozenset[str]:
    """The header the token goes in (lower case): tool arguments and extra headers may never set it."""
    return frozenset({(auth.header if auth.send_as == "header" and auth.header else "Authorization").lower()})


def _put_token(auth: LoginAuth, headers: dict[str, str], token: str) -> None:
    if auth.send_as == "bearer":
        set_bearer(headers, token)
        return
    name = auth.header or "Authorization"
    for existing in [key for key in headers if key.lower() == name.lower()]:
        del headers[existing]
    headers[name] = auth.prefix + token


def _fingerprint(auth: LoginAuth) -> str:
    """What the stored token is bound to besides the workspace: where it came from and for which account.

    A change of login endpoint or credentials makes the old record unreadable (it is part of the
    AAD, never stored), so a token is never sent on behalf of settings it was not obtained with.
    """
    parts = [auth.login_url, auth.refresh_url or "", json.dumps(auth.fields, sort_keys=True)]
    parts += [f"{name}={value.get_secret_value()}" for name, value in sorted(auth.credentials.items())]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class UpstreamLogin:
    """The login of one workspace: `token()` is all the serving side calls (through LoginCredentials)."""

    def __init__(
        self,
        workspace: str,
        auth: LoginAuth,
        *,
        store: Store,
        cipher: Cipher,
        http: httpx2.AsyncClient,
        clock: Clock = time.time,
        events: AuthEvents = NO_EVENTS,
    ) -> None:
        self.workspace = workspace
        self._events = events  # renewal outcomes, for the audit trail and metrics
        self.auth = auth
        self.store = store
        self.cipher = cipher
        self._http = http
        self._clock = clock
        self._local = KeyedLocks()
        self._aad = record_aad(NS_LOGIN, f"{workspace}\x00{_fingerprint(auth)}")
        self._refused: tuple[float, str] | None = None  # (until, message) after refused credentials
        self._cached: TokenSet | None = None

    # ---- the token -----------------------------------------------------------------------------------

    async def token(self, *, rejected: str | None = None) -> str:
        """A usable token, logging in or renewing first when needed; LoginError when there is none.

        `rejected`: a token the upstream answered 401 to. If it is still the stored one it is renewed
        now (once, however many calls were refused with it); a call whose token was already replaced
        gets the replacement.
        """
        # The hot path: the token this process last read or wrote, while it is not due. The store is
        # read when it is due or refused: another replica may have renewed it already.
        cached = self._cached
        if cached is not None and not self._must_renew(cached, rejected):
            return cached.access_token
        tokens = await self._read()
        if tokens is not None and not self._must_renew(tokens, rejected):
            self._cached = tokens
            return tokens.access_token
        try:
            async with (
                self._local.hold("login", LOCK_TIMEOUT),
                self.store.lock(f"{NS_LOGIN}:{self.workspace}", LOCK_TIMEOUT),
            ):
                # Whoever held the lock before us may have renewed already.
                tokens = await self._read()
                if tokens is None or self._must_renew(tokens, rejected):
                    refused = tokens is not None and tokens.access_token == rejected
                    tokens = await self._renew(tokens, refused=refused)
                self._cached = tokens
                return tokens.access_token
        except LockTimeout:
            if tokens is not None and tokens.access_token != rejected and not tokens.expired(self._clock()):
                return tokens.access_token
            raise LoginError(f"workspace {self.workspace}: timed out waiting for the upstream login") from None

    def _must_renew(self, tokens: TokenSet, rejected: str | None) -> bool:
        return tokens.needs_refresh(self._clock()) or (rejected is not None and tokens.access_token == rejected)

    async def _renew(self, tokens: TokenSet | None, *, refused: bool) -> TokenSet:
        """Refresh when there is a refresh token and endpoint, else (or when that fails) log in again."""
        if refused:
            log.info("workspace %s: the upstream refused the login token before its expiry; renewing", self.workspace)
        if tokens is not None and tokens.refresh_token and self.auth.refresh_url:
            try:
                fresh = await self._refresh(tokens.refresh_token)
            except LoginError as exc:
                log.info("workspace %s: token refresh failed (%s); logging in again", self.workspace, exc)
                self._events.token_refresh(self.workspace, outcome="failed", reason="refresh refused; logging in")
            else:
                await self._write(fresh)
                log.info("workspace %s: upstream login token refreshed", self.workspace)
                self._events.token_refresh(self.workspace, outcome="ok")
                return fresh
        try:
            fresh = await self._login()
        except LoginError:
            self._events.token_refresh(self.workspace, outcome="failed", reason="login failed")
            if tokens is not None and not refused and not tokens.expired(self._clock()):
                return tokens  # still usable; a later call tries again
            raise
        await self._write(fresh)
        log.info("workspace %s: logged in at the upstream", self.workspace)
        self._events.token_refresh(self.workspace, outcome="ok")
        return fresh

    # ---- the store -----------------------------------------------------------------------------------

    async def _read(self) -> TokenSet | None:
        blob = await self.store.get(NS_LOGIN, self.workspace)
        if blob is None:
            return None
        try:
            return TokenSet.from_bytes(self.cipher.decrypt(blob, aad=self._aad))
        except (InvalidCiphertext, ValueError, KeyError, TypeError):
            # Another secret key, or changed login settings: this token is not ours to send. The next
            # login replaces the record; nothing of value is lost (a login token can be had again).
            return None

    async def _write(self, tokens: TokenSet) -> None:
        now = self._clock()
        remaining = None if tokens.expires_at is None else max(1.0, tokens.expires_at - now)
        if tokens.refresh_token is None and remaining is not None:
            ttl = remaining
        else:
            ttl = IDLE_TTL if remaining is None else max(IDLE_TTL, remaining)
        blob = self.cipher.encrypt(tokens.to_bytes(), aad=self._aad)
        await self.store.put(NS_LOGIN, self.workspace, blob, ttl=ttl)

    # ---- the upstream's endpoints --------------------------------------------------------------------

    async def _login(self) -> TokenSet:
        now = self._clock()
        if self._refused is not None and now < self._refused[0]:
            # Do not hammer the endpoint (and lock the account) with credentials it refused.
            raise LoginError(self._refused[1])
        body: dict[str, str] = dict(self.auth.fields)
        body.update((name, value.get_secret_value()) for name, value in self.auth.credentials.items())
        try:
            return await self._post(self.auth.login_url, body, {}, what="login", previous_refresh=None)
        except _Refused as refused:
            message = (
                f"workspace {self.workspace}: the upstream login endpoint refused castproxy's credentials "
                f"({refused.detail}); check the workspace's auth.credentials"
            )
            self._refused = (now + REFUSED_PAUSE, message)
            log.warning("workspace %s: upstream login refused (%s)", self.workspace, refused.detail)
            raise LoginError(message) from None

    async def _refresh(self, refresh_token: str) -> TokenSet:
        assert self.auth.refresh_url is not None
        body: dict[str, str] = {}
        headers: dict[str, str] = {}
        if self.auth.refresh_send_as == "bearer":
            set_bearer(headers, refresh_token)
        else:
            body[self.auth.refresh_body_field] = refresh_token
        try:
            return await self._post(
                self.auth.refresh_url, body, headers, what="refresh", previous_refresh=refresh_token
            )
        except _Refused as refused:
            raise LoginError(f"the refresh endpoint refused the refresh token ({refused.detail})") from None

    async def _post(
        self, url: str, body: dict[str, str], headers: dict[str, str], *, what: str, previous_refresh: str | None
    ) -> TokenSet:
        headers = {"Accept": "application/json", **headers}
        content: dict[str, Any] = {"json": body} if self.auth.format == "json" else {"data": body}
        if self.auth.format == "form" and not body:
            content = {}
        now = self._clock()
        try:
            response = await self._http.post(url, headers=headers, **content)
        except httpx2.HTTPError as exc:
            raise LoginError(
                f"workspace {self.workspace}: the upstream {what} endpoint could not be reached ({type(exc).__name__})"
            ) from None
        answer = _json_or_none(response)
        status = response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            code = _error_code(answer)
            raise _Refused(f"HTTP {status}{' ' + code if code else ''}")
        if status >= 300:
            raise LoginError(f"workspace {self.workspace}: the upstream {what} endpoint answered HTTP {status}")
        return self._token_set(answer, response, now, what=what, previous_refresh=previous_refresh)

    def _token_set(
        self, answer: object, response: httpx2.Response, now: float, *, what: str, previous_refresh: str | None
    ) -> TokenSet:
        places = (self.auth.token_field,) if self.auth.token_field else DEFAULT_TOKEN_FIELDS
        token = next((value for place in places if isinstance(value := locate(answer, place), str) and value), None)
        if token is None and self.auth.token_field is None:
            token = _bare_token(answer, response)
        if token is None:
            shown = " or ".join(f"`{place}`" for place in places)
            raise LoginError(
                f"workspace {self.workspace}: the upstream {what} answer has no token at {shown}; "
                "set auth.token_field to where it is"
            )
        if len(token) > MAX_TOKEN_CHARS or not all("!" <= char <= "~" for char in token):
            raise LoginError(
                f"workspace {self.workspace}: the token in the upstream {what} answer is not one header value "
                "(spaces, control or non-ASCII characters, or longer than 16 KiB)"
            )
        refresh = locate(answer, self.auth.refresh_token_field)
        return TokenSet(
            access_token=token,
            refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
            expires_at=self._expiry(answer, token, now),
            obtained_at=now,
        )

    def _expiry(self, answer: object, token: str, now: float) -> float | None:
        """`expires_in` from the answer, else the JWT's own lifetime, else `token_lifetime`, else unknown."""
        expires_in = _seconds(locate(answer, self.auth.expires_in_field))
        if expires_in is not None:
            return now + expires_in
        # exp - iat is the lifetime as its issuer meant it, whatever the two clocks say; exp alone is
        # read against ours.
        lifetime = jwt_lifetime(token)
        if lifetime is not None:
            return now + lifetime
        exp = jwt_expiry(token)
        if exp is not None:
            if exp > now:
                return exp
            log.warning(
                "workspace %s: the login token's exp lies in the past by castproxy's clock (clock skew?); "
                "using auth.token_lifetime instead",
                self.workspace,
            )
        if self.auth.token_lifetime is not None:
            return now + self.auth.token_lifetime
        return None


class _Refused(Exception):
    """A 4xx answer (other than 408/429): the request itself was refused. `detail` is safe to show."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _seconds(value: object) -> float | None:
    """A positive number of seconds (a JSON number, or a number written as text), else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _json_or_none(response: httpx2.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _error_code(answer: object) -> str:
    """The upstream's error code when it is a plain word (its free-text message may echo a credential)."""
    if not isinstance(answer, dict):
        return ""
    for key in ("error", "code", "error_code"):
        code = safe_word(answer.get(key), "")
        if code:
            return code
    return ""


def _bare_token(answer: object, response: httpx2.Response) -> str | None:
    """APIs that answer the token alone: a JSON string, or a text/plain body."""
    if isinstance(answer, str):
        return answer.strip() or None
    if answer is None and response.headers.get("content-type", "").startswith("text/plain"):
        text = response.text.strip()
        return text if text and "\n" not in text else None
    return None


class LoginCredentials:
    """Sets the login token where the config says (Authorization: Bearer, or a named header with a prefix)."""

    def __init__(self, login: UpstreamLogin) -> None:
        self._login = login
        self.protected_headers = login_protected_headers(login.auth)

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        _put_token(self._login.auth, headers, await self._login.token(rejected=refused))


class LoginClients:
    """The UpstreamLogin of every login workspace; unchanged ones survive a reload (their tokens and locks)."""

    def __init__(
        self, *, store: Store, cipher: Cipher, http: httpx2.AsyncClient, clock: Clock = time.time,
        events: AuthEvents = NO_EVENTS,
    ) -> None:
        self._store = store
        self._events = events
        self._cipher = cipher
        self._http = http
        self._clock = clock
        self._logins: Mapping[str, UpstreamLogin] = {}

    def update(self, workspaces: Mapping[str, LoginAuth]) -> None:
        current = self._logins
        fresh: dict[str, UpstreamLogin] = {}
        for name, auth in workspaces.items():
            old = current.get(name)
            if old is not None and old.auth == auth:
                fresh[name] = old
            else:
                fresh[name] = UpstreamLogin(
                    name, auth, store=self._store, cipher=self._cipher, http=self._http, clock=self._clock,
                    events=self._events,
                )
        self._logins = fresh  # one assignment: a call sees the old set or the new one

    def get(self, workspace: str) -> UpstreamLogin | None:
        return self._logins.get(workspace)

    def credentials_for(self, workspace: str) -> UpstreamCredentials | None:
        login = self.get(workspace)
        return LoginCredentials(login) if login is not None else None
