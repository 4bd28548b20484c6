"""Fetching client ID metadata documents without letting a client_id turn castproxy into a proxy.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx2

from castproxy.auth.credentials import AuthError
from castproxy.auth.server.limits import DOCUMENT_FETCHES, RateLimiter, retry_after
from castproxy.tls import outbound_tls

__all__ = ["DocumentError", "DocumentFetcher", "DocumentRateLimited", "client_id_url_problem"]

MAX_DOCUMENT_BYTES = 16 * 1024
FETCH_TIMEOUT = 5.0
MAX_URL_LENGTH = 2048

_JSON_MEDIA_TYPE = re.compile(r"^application/(?:json|[a-z0-9.+-]+\+json)$")

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class FetchedDocument:
    document: dict[str, Any]
    max_age: float | None  # from Cache-Control: seconds it may be reused (0: no-store/no-cache); None: not said


def cache_lifetime(cache_control: str) -> float | None:
    """What a Cache-Control header says about reuse: 0 for no-store/no-cache, max-age seconds, else None."""
    max_age: float | None = None
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                max_age = max(0.0, float(value.strip().strip('"')))
            except ValueError:
                return 0.0
    return max_age


class DocumentError(AuthError):
    """The client's metadata document could not be used; the message is safe to show."""


class DocumentRateLimited(DocumentError):
    """Too many fetches from this document's host lately; `retry_after` is the Retry-After value."""

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def client_id_url_problem(url: str) -> str | None:
    """Why `url` cannot be a metadata-document client_id, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"client_id URL longer than {MAX_URL_LENGTH} characters"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return "a URL client_id must be an https URL"
    if parts.fragment or "#" in url:
        return "a URL client_id must not contain a fragment"
    if "@" in parts.netloc:
        return "a URL client_id must not contain user information"
    if parts.path in ("", "/"):
        return "a URL client_id must have a path"
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return "a URL client_id must not contain . or .. path segments"
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "a URL client_id has an invalid port"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: a NAT64 gateway reaches the embedded IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local-use translation, site-internal
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 0xFFFF):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_problem(address: str) -> str | None:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return f"resolves to a non-public address ({ip}, local-use NAT64)"
        ip = _embedded_ipv4(ip) or ip
    if not ip.is_global or ip.is_multicast:
        return f"resolves to a non-public address ({ip})"
    return None


class DocumentFetcher:
    """Fetches one document per URL; `resolve`, `transport` and `limiter` are replaceable for tests."""

    def __init__(
        self,
        *,
        resolve: Resolver = resolve_host,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = FETCH_TIMEOUT,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._resolve = resolve
        # Per caller and client_id host: one caller's junk cannot use up what another caller may fetch.
        self.limiter = RateLimiter(DOCUMENT_FETCHES) if limiter is None else limiter
        self._max_bytes = max_bytes
        self._deadline = timeout  # for the whole fetch: httpx's timeout is per read, a drip would outlast it
        self._http = httpx2.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False,
                                       trust_env=False, verify=outbound_tls())

    async def close(self) -> None:
        await self._http.aclose()

    async def fetch_document(self, url: str, *, caller: str = "") -> FetchedDocument:
        """The document at `url` and its cache lifetime; `caller` is the requesting address's limiter key."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        wait = self.limiter.take(f"{caller} {host}")  # before resolving: a refused fetch sends nothing out
        if wait:
            seconds = retry_after(wait)
            raise DocumentRateLimited(
                f"too many client metadata document fetches from {host} lately; retry in {seconds} s", seconds
            )
        try:
            addresses = await self._resolve(host, port)
        except OSError:
            raise DocumentError(f"cannot resolve {host}") from None
        if not addresses:
            raise DocumentError(f"cannot resolve {host}")
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise DocumentError(f"refusing to fetch the client metadata document: {host} {problem}")
        try:
            body, cache_control = await asyncio.wait_for(
                self._download(host, port, addresses[0], parts), self._deadline
            )
        except TimeoutError:
            raise DocumentError("client metadata document: the request timed out") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise DocumentError("client metadata document is not JSON") from None
        if not isinstance(document, dict):
            raise DocumentError("client metadata document is not a JSON object")
        return FetchedDocument(document, cache_lifetime(cache_control))

    async def _download(self, host: str, port: int, pinned: str, parts: SplitResult) -> tuple[bytes, str]:
        netloc = f"[{pinned}]" if ":" in pinned else pinned
        target = urlunsplit(("https", f"{netloc}:{port}", parts.path or "/", parts.query, ""))
        headers = {"Host": parts.netloc, "Accept": "application/json"}
        try:
            async with self._http.stream("GET", target, headers=headers, extensions={"sni_hostname": host}) as response:
                if response.status_code != 200:
                    raise DocumentError(f"client metadata document answered HTTP {response.status_code}")
                media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if not _JSON_MEDIA_TYPE.match(media_type):
                    raise DocumentError(
                        f"client metadata document has content type {media_type or 'none'}, not application/json"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise DocumentError(f"client metadata document is larger than {self._max_bytes} bytes")
        except httpx2.TimeoutException:
            raise DocumentError("client metadata document: the request timed out") from None
        except httpx2.HTTPError as exc:
            raise DocumentError(f"client metadata document could not be fetched ({type(exc).__name__})") from None
        return bytes(body), response.headers.get("cache-control", "")
