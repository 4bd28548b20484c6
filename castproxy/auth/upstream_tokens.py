"""The upstream token endpoint: client authentication, token requests and what their answers mean.

Nothing here logs or puts a token, code or client secret into an exception message: errors carry
only the upstream's OAuth `error` code (checked to be a plain word) and the HTTP status.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import httpx2
from pydantic import TypeAdapter

from castproxy.auth.credentials import AuthError
from castproxy.store.base import decode_record

__all__ = ["ClientIdentity", "TokenEndpointError", "TokenSet", "authenticate_client", "request_token", "safe_word"]

_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# Refresh ahead of expiry by this much, or by 10% of the lifetime when that is shorter.
REFRESH_MARGIN = 60.0
REFRESH_FRACTION = 0.1


def safe_word(value: object, default: str = "unknown_error") -> str:
    """An upstream-provided code, only if it is a plain word (it may end up in a page or a log)."""
    return value if isinstance(value, str) and _SAFE_WORD.match(value) else default


@dataclass(frozen=True)
class ClientIdentity:
    """How castproxy authenticates itself to the upstream token endpoint."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    auth_method: str = "client_secret_basic"  # | client_secret_post | none
    secret_expires_at: float | None = None  # dcr: when the upstream said the secret expires (epoch s)


@dataclass(frozen=True)
class TokenSet:
    """One grant's upstream tokens. `repr` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None  # epoch seconds; None when the upstream did not say
    obtained_at: float
    scopes: tuple[str, ...] = ()

    def needs_refresh(self, now: float) -> bool:
        if self.expires_at is None:
            return False
        lifetime = max(0.0, self.expires_at - self.obtained_at)
        margin = min(REFRESH_MARGIN, lifetime * REFRESH_FRACTION)
        return now >= self.expires_at - margin

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_bytes(self) -> bytes:
        return _TOKEN_SET.dump_json(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenSet:
        """MalformedRecord (a ValueError) when `data` is not a token set."""
        return decode_record(_TOKEN_SET, data, "upstream token set")


_TOKEN_SET = TypeAdapter(TokenSet)


class TokenEndpointError(AuthError):
    """The token endpoint refused or failed. `error` is the OAuth error code (or a word of ours)."""

    def __init__(self, error: str, status: int | None) -> None:
        self.error = error
        self.status = status
        where = f"answered HTTP {status}" if status is not None else "could not be reached"
        super().__init__(f"the upstream token endpoint {where} ({error})")


def authenticate_client(form: dict[str, str], headers: dict[str, str], client: ClientIdentity) -> None:
    if client.auth_method == "client_secret_basic" and client.client_secret is not None:
        # RFC 6749 2.3.1: both parts form-encoded before Base64.
        pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif client.auth_method == "client_secret_post" and client.client_secret is not None:
        form["client_id"] = client.client_id
        form["client_secret"] = client.client_secret
    else:
        form["client_id"] = client.client_id


def _parse_expiry(value: object, now: float) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return now + seconds if seconds > 0 else None


async def request_token(
    http: httpx2.AsyncClient,
    token_url: str,
    form: Mapping[str, str],
    client: ClientIdentity,
    *,
    requested_scopes: Sequence[str] = (),
    previous_refresh_token: str | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """POST one token request; a TokenSet on success, TokenEndpointError otherwise."""
    body = dict(form)
    headers = {"Accept": "application/json"}
    authenticate_client(body, headers, client)
    now = clock()
    try:
        response = await http.post(token_url, data=body, headers=headers)
    except httpx2.HTTPError as exc:
        raise TokenEndpointError(exc.__class__.__name__, None) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TokenEndpointError("not_json", response.status_code)
    if response.status_code >= 400 or "error" in answer:
        raise TokenEndpointError(safe_word(answer.get("error")), response.status_code)
    access_token = answer.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError("no_access_token", response.status_code)
    token_type = answer.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenEndpointError("unsupported_token_type", response.status_code)
    refresh_token = answer.get("refresh_token")
    scope = answer.get("scope")
    return TokenSet(
        access_token=access_token,
        # RFC 6749 6: without a new refresh token the old one stays valid.
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else previous_refresh_token,
        expires_at=_parse_expiry(answer.get("expires_in"), now),
        obtained_at=now,
        scopes=tuple(scope.split()) if isinstance(scope, str) else tuple(requested_scopes),
    )
