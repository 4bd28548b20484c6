"""Who may ask for tokens: clients registered here (RFC 7591) and clients identified by a URL.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from castproxy.auth.credentials import AuthError
from castproxy.auth.server.documents import DocumentError, DocumentFetcher, DocumentRateLimited, client_id_url_problem
from castproxy.auth.server.errors import OAuthError
from castproxy.auth.server.records import NS_CLIENT, NS_CLIENT_DOCUMENT, Record
from castproxy.auth.server.redirects import redirect_uri_problem
from castproxy.store.base import Store

__all__ = ["Client", "ClientLookupError", "ClientRegistry"]

MAX_REDIRECT_URIS = 10
MAX_NAME_LENGTH = 200
# How long a fetched metadata document is reused: its Cache-Control max-age, within these bounds.
DOCUMENT_CACHE_DEFAULT = 300.0
DOCUMENT_CACHE_MIN = 60.0
DOCUMENT_CACHE_MAX = 86400.0
# After that, a known-good document is still used while a new fetch is refused by the rate limit.
KNOWN_GOOD_TTL = 86400.0
SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token")
# A registration is kept this long after its last use; a client that is gone simply registers again.
CLIENT_TTL = 90 * 86400.0
# Until its first /authorize a registration lives one day: MCP clients sign in right after registering,
# and a flood of registrations that are never used cannot fill the store for 90 days.
UNUSED_CLIENT_TTL = 86400.0


@dataclass(frozen=True)
class Client(Record):
    client_id: str
    redirect_uris: tuple[str, ...]
    client_name: str
    kind: str  # "registered" (RFC 7591) | "metadata document" (URL client_id)
    issued_at: int = 0
    fresh_until: float = 0.0  # metadata documents: reused without a fetch until then (epoch seconds)


class ClientLookupError(AuthError):
    """The client_id names no usable client; the message is safe to show on an error page.

    `retry_after` is set when the lookup was only refused for now (a rate limit): the answer is a 429.
    """

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _redirect_uris(value: object, error: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise OAuthError(error, "redirect_uris must be a non-empty list")
    if len(value) > MAX_REDIRECT_URIS:
        raise OAuthError(error, f"at most {MAX_REDIRECT_URIS} redirect_uris")
    for uri in value:
        problem = redirect_uri_problem(uri)
        if problem:
            raise OAuthError("invalid_redirect_uri", problem)
    return tuple(value)


def _client_name(value: object, fallback: str) -> str:
    if value is None:
        return fallback
    if not isinstance(value, str) or not value.strip():
        raise OAuthError("invalid_client_metadata", "client_name must be a non-empty string")
    return value.strip()[:MAX_NAME_LENGTH]


class ClientRegistry:
    def __init__(self, store: Store, fetcher: DocumentFetcher, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._fetcher = fetcher
        self._clock = clock  # epoch seconds: when a client was registered, how long a document is reused

    async def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """RFC 7591 §3: validate and store; returns the client information response."""
        redirect_uris = _redirect_uris(metadata.get("redirect_uris"), "invalid_redirect_uri")
        grant_types = metadata.get("grant_types", ["authorization_code"])
        if not isinstance(grant_types, list) or not all(
            isinstance(grant, str) and grant in SUPPORTED_GRANT_TYPES for grant in grant_types
        ):
            raise OAuthError(
                "invalid_client_metadata", f"grant_types may only contain {', '.join(SUPPORTED_GRANT_TYPES)}"
            )
        response_types = metadata.get("response_types", ["code"])
        if response_types != ["code"]:
            raise OAuthError("invalid_client_metadata", 'response_types must be ["code"]')
        client = Client(
            client_id="cpc-" + secrets.token_urlsafe(18),
            redirect_uris=redirect_uris,
            client_name=_client_name(metadata.get("client_name"), "Unnamed MCP client"),
            kind="registered",
            issued_at=int(self._clock()),
        )
        await self._store.put(NS_CLIENT, client.client_id, client.encode(), ttl=UNUSED_CLIENT_TTL)
        return {
            "client_id": client.client_id,
            "client_id_issued_at": client.issued_at,
            "client_name": client.client_name,
            "redirect_uris": list(client.redirect_uris),
            # Every client is public here, whatever it asked for (RFC 7591 §3.2.1 lets us substitute).
            "token_endpoint_auth_method": "none",
            "grant_types": list(SUPPORTED_GRANT_TYPES),
            "response_types": ["code"],
        }

    async def get(self, client_id: str, *, caller: str = "") -> Client:
        """The client, registered or described by its URL (fetched on behalf of `caller`, a limiter key);
        raises ClientLookupError."""
        if client_id.startswith("https://"):
            return await self._from_document(client_id, caller)
        client = Client.decode(await self._store.get(NS_CLIENT, client_id))
        if client is None:
            raise ClientLookupError(f"unknown client_id {client_id!r}; the MCP client must register again")
        return client

    async def touch(self, client: Client) -> None:
        """Keep a registration that is in use."""
        if client.kind == "registered":
            await self._store.put(NS_CLIENT, client.client_id, client.encode(), ttl=CLIENT_TTL)

    async def _from_document(self, url: str, caller: str) -> Client:
        problem = client_id_url_problem(url)
        if problem:
            raise ClientLookupError(problem)
        now = self._clock()
        cached = Client.decode(await self._store.get(NS_CLIENT_DOCUMENT, url))
        if cached is not None and cached.fresh_until > now:
            return cached
        try:
            fetched = await self._fetcher.fetch_document(url, caller=caller)
        except DocumentRateLimited as exc:
            if cached is not None:  # known good: a busy limit does not lock its users out
                return cached
            raise ClientLookupError(str(exc), retry_after=exc.retry_after) from None
        except DocumentError as exc:
            raise ClientLookupError(str(exc)) from None
        client = _client_from_document(url, fetched.document)
        lifetime = DOCUMENT_CACHE_DEFAULT if fetched.max_age is None else fetched.max_age
        lifetime = min(max(lifetime, DOCUMENT_CACHE_MIN), DOCUMENT_CACHE_MAX)
        client = dataclasses.replace(client, fresh_until=now + lifetime)
        await self._store.put(NS_CLIENT_DOCUMENT, url, client.encode(), ttl=lifetime + KNOWN_GOOD_TTL)
        return client


def _client_from_document(url: str, document: dict[str, Any]) -> Client:
    if document.get("client_id") != url:
        raise ClientLookupError("the client metadata document's client_id is not the URL it was fetched from")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientLookupError(
            f"the client metadata document asks for token_endpoint_auth_method {json.dumps(method)}; "
            "only none is supported"
        )
    try:
        redirect_uris = _redirect_uris(document.get("redirect_uris"), "invalid_client_metadata")
        name = _client_name(document.get("client_name"), url)
    except OAuthError as exc:
        raise ClientLookupError(f"the client metadata document is unusable: {exc.description}") from None
    return Client(client_id=url, redirect_uris=redirect_uris, client_name=name, kind="metadata document")
