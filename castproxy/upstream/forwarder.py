"""Sending built requests to the upstream with one shared aiohttp session (the hot path).

No cookies kept, no redirect followed, no silent re-send, bodies read up to a cap; every failure is an
`UpstreamFailure` with a short safe message, never an exception.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
from yarl import URL

from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse

__all__ = ["Forwarder", "UpstreamFailure", "UpstreamRequest", "UpstreamResponse"]

USER_AGENT = "castproxy"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
        "set-cookie2",
    }
)


_NO_AUTO_TYPE = frozenset({"Content-Type"})


class Forwarder:
    """Owns the shared aiohttp session; `send` never raises for upstream trouble."""

    def __init__(self, *, pool_size: int = 256, keepalive_timeout: float = 4.0) -> None:
        self._pool_size = pool_size
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, ttl_dns_cache=60, keepalive_timeout=self._keepalive_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
            # aiohttp's own switch for its hidden re-send (its test client sets it the same way);
            # tests/upstream/test_upstream_drops.py fails if a release stops honouring it.
            self._session._retry_connection = False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def send(
        self, request: UpstreamRequest, *, timeout: float, max_bytes: int
    ) -> UpstreamResponse | UpstreamFailure:
        if self._session is None or self._session.closed:
            await self.start()
        assert self._session is not None
        started = time.perf_counter()
        url = URL(request.url, encoded=True)
        for attempt in (1, 2):  # a second one only when the first provably never left (see _never_left)
            try:
                async with self._session.request(
                    request.method,
                    url,
                    headers=request.headers,
                    data=request.body,
                    allow_redirects=False,
                    timeout=self._timeout(timeout),
                    skip_auto_headers=_NO_AUTO_TYPE,  # no invented octet-stream type on body-less requests
                ) as response:
                    body, truncated = await _read_capped(response, max_bytes)
                    if truncated:
                        response.close()  # the rest is unread: this connection cannot go back to the pool
                    return UpstreamResponse(
                        status=response.status,
                        reason=response.reason or "",
                        headers=_kept_headers(response),
                        body=body,
                        truncated=truncated,
                        url=request.url,
                        elapsed=time.perf_counter() - started,
                    )
            except Exception as error:  # aiohttp's errors are many; `_failure` names the kind, never raises
                if attempt == 2 or not _never_left(error):
                    return _failure(error, url, timeout, time.perf_counter() - started)
        raise AssertionError("unreachable")


# What aiohttp's writer raises when the transport is already closing: it checks before handing
# anything to the socket, and a request's head and body go out in that one write (bytes bodies).
_CLOSING_TRANSPORT = "Cannot write to closing transport"


def _never_left(error: BaseException) -> bool:
    """True only when the request provably never left: its first write was refused on a closing connection.

    Without a body the refusal comes as is; with one, aiohttp wraps it ("Can not write request body").
    """
    for candidate in (error, error.__cause__):
        if isinstance(candidate, aiohttp.ClientConnectionResetError) and str(candidate) == _CLOSING_TRANSPORT:
            return True
    return False


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    limit = max_bytes + 1
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if size > max_bytes:
        return data[:max_bytes], True
    return data, False


def _kept_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    raw = response.headers
    dropped = HOP_BY_HOP
    connection = raw.get("Connection")
    if connection:  # headers named in Connection are hop-by-hop too (RFC 9110 7.6.1)
        dropped = dropped | {name.strip().lower() for name in connection.split(",")}
    if "Content-Encoding" in raw:  # the body was decompressed: encoding and length no longer describe it
        dropped = dropped | {"content-encoding", "content-length"}
    kept: dict[str, str] = {}
    for name, value in raw.items():
        lower = name.lower()
        if lower in dropped:
            continue
        kept[lower] = f"{kept[lower]}, {value}" if lower in kept else value
    return kept


def _failure(error: Exception, url: URL, timeout: float, elapsed: float) -> UpstreamFailure:
    host = url.host or "?"
    where = f"{host}:{url.port}" if url.port else host
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return UpstreamFailure("timeout", f"the upstream {where} did not answer within {timeout:g} s", elapsed)
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return UpstreamFailure("dns", f"the upstream host {host} could not be resolved", elapsed)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        reason = getattr(error.certificate_error, "verify_message", None) or "certificate not trusted"
        return UpstreamFailure("tls", f"TLS with the upstream {where} failed: {reason}", elapsed)
    if isinstance(error, aiohttp.ClientSSLError):
        return UpstreamFailure("tls", f"TLS with the upstream {where} failed", elapsed)
    if isinstance(error, aiohttp.ClientConnectorError):
        code = error.os_error.errno
        # uvloop's strerror reads "Connect call failed (...)": the errno's own text says what happened.
        reason = os.strerror(code) if code else (error.os_error.strerror or type(error.os_error).__name__)
        return UpstreamFailure("connect", f"could not connect to the upstream {where} ({reason.lower()})", elapsed)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        # The request may have reached the upstream (and run there): say so, since it is not sent again.
        return UpstreamFailure(
            "reset",
            f"the connection to the upstream {where} dropped before an answer came; the upstream may or may not "
            "have carried out the request, and castproxy did not send it again (check before retrying "
            "anything that is not safe to repeat)",
            elapsed,
        )
    if isinstance(error, aiohttp.ClientPayloadError):
        return UpstreamFailure("protocol", f"the upstream {where} sent a malformed response body", elapsed)
    if isinstance(error, aiohttp.ClientResponseError):
        return UpstreamFailure("protocol", f"the upstream {where} sent a malformed HTTP response", elapsed)
    if isinstance(error, ValueError | aiohttp.InvalidURL):
        return UpstreamFailure("protocol", f"the request to {where} could not be sent (invalid URL or header)", elapsed)
    return UpstreamFailure("connect", f"the request to the upstream {where} failed ({type(error).__name__})", elapsed)
