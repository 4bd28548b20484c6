"""The records the authorization server keeps in the store, and their JSON encoding.

None of them holds a secret: castproxy's codes and tokens are keys (hashed), never values, and the
upstream tokens stay with UpstreamOAuth, encrypted. Each record names the store namespace it lives in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import TypeAdapter

from castproxy.store.base import MalformedRecord, decode_record

__all__ = [
    "NS_ACCESS", "NS_CLIENT", "NS_CLIENT_DOCUMENT", "NS_CODE", "NS_CODE_USED", "NS_CONSENT", "NS_GRANT", "NS_PENDING",
    "NS_REFRESH", "NS_REFRESH_USED", "NS_SIGN_IN", "AuthorizationRequest", "CodeRecord", "Consent", "GrantRecord",
    "Record", "TokenRecord", "UsedMarker", "canonical_resource"
]

NS_CLIENT = "as-client"  # DCR clients by client_id
NS_CLIENT_DOCUMENT = "as-cimd"  # cached client ID metadata documents by URL
NS_PENDING = "as-pending"  # authorization requests waiting for consent, by request id
NS_CONSENT = "as-consent"  # remembered approvals, by browser + client + workspace
NS_SIGN_IN = "as-sign-in"  # approved requests waiting for the upstream callback, by hashed upstream state
NS_CODE = "as-code"  # authorization codes, by hash
NS_CODE_USED = "as-code-used"  # redeemed codes (reuse detection), by hash
NS_GRANT = "as-grant"  # one live sign-in (a token family), by upstream grant id
NS_ACCESS = "as-access"  # access tokens, by hash
NS_REFRESH = "as-refresh"  # refresh tokens, by hash
NS_REFRESH_USED = "as-refresh-used"  # rotated refresh tokens (reuse detection), by hash


def canonical_resource(url: str) -> str:
    """RFC 8707 resource compared case-insensitively in scheme and host, ignoring one trailing slash."""
    parts = urlsplit(url)
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    if kind not in _adapters:
        _adapters[kind] = TypeAdapter(kind)
    return _adapters[kind]


class Record:
    def encode(self) -> bytes:
        return _adapter(type(self)).dump_json(self)

    @classmethod
    def decode(cls, blob: bytes | None) -> Self | None:
        if blob is None:
            return None
        try:
            return cast(Self, decode_record(_adapter(cls), blob, cls.__name__))
        except MalformedRecord:
            return None  # a record this version cannot read counts as absent


@dataclass(frozen=True)
class AuthorizationRequest(Record):
    """A validated /authorize request: everything the code and the tokens will be bound to."""

    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    workspace: str
    resource: str
    scopes: tuple[str, ...]
    upstream_state: str = ""  # kept only for an upstream configured with `state: false`
    browser: str = ""  # hash of the browser's CALLBACK_COOKIE once sent to the upstream sign-in
    # The person signed in at the company identity provider (server.identity), or empty.
    subject: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Consent(Record):
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class CodeRecord(Record):
    client_id: str
    redirect_uri: str
    code_challenge: str
    workspace: str
    resource: str
    grant_id: str
    scopes: tuple[str, ...]
    # The person signed in at the company identity provider (server.identity), or empty.
    subject: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantRecord(Record):
    """castproxy's side of one sign-in: every token issued from it dies with it."""

    grant_id: str
    workspace: str
    resource: str
    client_id: str
    scopes: tuple[str, ...]
    # The person signed in at the company identity provider (server.identity), or empty.
    subject: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()
    # Until when the company sign-in vouches for the person (and their groups): refreshes stop then.
    person_until: float = 0.0
    created_at: float = 0.0  # when the sign-in completed (0: a record from before this field)


@dataclass(frozen=True)
class TokenRecord(Record):
    grant_id: str
    workspace: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    # The person signed in at the company identity provider (server.identity), or empty.
    subject: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class UsedMarker(Record):
    grant_id: str
