"""A connection that drops after the upstream read the request: the request is never sent a second time.

aiohttp on its own re-sends GET, PUT and DELETE once when the connection drops before the answer, so
an upstream could run a DELETE twice. The raw upstream here (support.dropping) reads the request in
full, then drops the connection, and counts what it read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_writer import StreamWriter
from multidict import CIMultiDict
from support.dropping import DroppingUpstream

from castproxy.upstream.forwarder import Forwarder, _never_left
from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse
from castproxy.upstream.response import to_tool_result

CAP = 2**20


@pytest.fixture
async def dropping() -> AsyncIterator[DroppingUpstream]:
    server = DroppingUpstream()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("method", ["DELETE", "PUT", "GET", "POST", "PATCH"])
async def test_a_dropped_request_reaches_the_upstream_once(dropping, forwarder, method):
    body = b'{"name":"x"}' if method in ("PUT", "POST", "PATCH") else None
    request = UpstreamRequest(method, f"{dropping.url}/drop/7", {"Content-Type": "application/json"}, body)
    outcome = await forwarder.send(request, timeout=5, max_bytes=CAP)
    assert dropping.count(method, "/drop/7") == 1
    assert isinstance(outcome, UpstreamFailure) and outcome.kind == "reset"
    result = to_tool_result(outcome, max_bytes=CAP)
    text = result.content[0].text
    assert result.is_error
    assert "connection to the upstream" in text and "dropped" in text and "did not send it again" in text


async def test_a_delete_dropped_on_a_kept_alive_connection_is_not_sent_again(dropping, forwarder):
    first = await forwarder.send(UpstreamRequest("GET", f"{dropping.url}/ok"), timeout=5, max_bytes=CAP)
    assert isinstance(first, UpstreamResponse) and first.status == 200
    outcome = await forwarder.send(UpstreamRequest("DELETE", f"{dropping.url}/drop/items/4"), timeout=5,
                                   max_bytes=CAP)
    assert isinstance(outcome, UpstreamFailure)
    assert dropping.count("DELETE", "/drop/items/4") == 1
    assert dropping.seen[0].peer == dropping.seen[1].peer  # the DELETE went out on the pooled connection
    # The next call works on a new connection.
    again = await forwarder.send(UpstreamRequest("GET", f"{dropping.url}/ok"), timeout=5, max_bytes=CAP)
    assert isinstance(again, UpstreamResponse) and again.status == 200


async def test_many_dropped_deletes_each_arrive_once(dropping, forwarder):
    requests = [UpstreamRequest("DELETE", f"{dropping.url}/drop/{n}") for n in range(40)]
    outcomes = await asyncio.gather(*(forwarder.send(r, timeout=5, max_bytes=CAP) for r in requests))
    assert all(isinstance(outcome, UpstreamFailure) for outcome in outcomes)
    assert sorted(seen.target for seen in dropping.seen) == sorted(f"/drop/{n}" for n in range(40))


async def _closed_writer(dropping: DroppingUpstream) -> StreamWriter:
    """aiohttp's own request writer on a connection that is closing before anything was written."""
    loop = asyncio.get_running_loop()
    host, port = dropping.url.removeprefix("http://").split(":")
    transport, protocol = await loop.create_connection(lambda: ResponseHandler(loop), host, int(port))
    transport.close()
    writer = StreamWriter(protocol, loop)
    await writer.write_headers("DELETE /drop/1 HTTP/1.1", CIMultiDict({"Host": host}))
    return writer


async def test_only_a_write_refused_on_a_closing_connection_counts_as_never_sent(dropping):
    """The one case that is re-sent: aiohttp refused the request's first write, so nothing left."""
    writer = await _closed_writer(dropping)
    with pytest.raises(aiohttp.ClientConnectionResetError) as refused_head:
        writer.set_eof()  # a body-less request: the head is its only write
    assert _never_left(refused_head.value)

    writer = await _closed_writer(dropping)
    with pytest.raises(aiohttp.ClientConnectionResetError) as refused_body:
        await writer.write(b'{"a":1}')  # head and body in one write
    wrapped = aiohttp.ClientOSError(None, "Can not write request body")  # how aiohttp's body task reports it
    wrapped.__cause__ = refused_body.value
    assert _never_left(wrapped)

    assert not _never_left(aiohttp.ServerDisconnectedError())
    assert not _never_left(aiohttp.ClientConnectionResetError("Connection lost"))  # after a write: may have left
    assert not _never_left(aiohttp.ClientOSError(104, "Connection reset by peer"))


async def test_the_session_has_the_hidden_resend_turned_off(forwarder: Forwarder):
    session = forwarder._session
    assert session is not None and session._retry_connection is False


async def test_a_request_that_never_left_is_sent_once_on_a_new_connection(dropping, forwarder):
    """The pooled connection is closing when the request is about to be written (closed right as the pool
    hands it out, through aiohttp's own trace hook): nothing left, so the forwarder sends it, once, anew."""
    first = await forwarder.send(UpstreamRequest("GET", f"{dropping.url}/ok"), timeout=5, max_bytes=CAP)
    assert isinstance(first, UpstreamResponse)
    session = forwarder._session
    closed: list[bool] = []

    async def close_the_pooled_connection(*_: object) -> None:
        if not closed:
            for protocol in list(session.connector._acquired):  # the connection just taken from the pool
                protocol.transport.close()
            closed.append(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(close_the_pooled_connection)
    trace.freeze()
    session._trace_configs.append(trace)

    outcome = await forwarder.send(UpstreamRequest("DELETE", f"{dropping.url}/ok/items/4"), timeout=5, max_bytes=CAP)
    assert closed == [True]
    assert isinstance(outcome, UpstreamResponse) and outcome.status == 200
    assert dropping.count("DELETE", "/ok/items/4") == 1
    assert dropping.seen[-1].peer != dropping.seen[0].peer  # on a new connection
