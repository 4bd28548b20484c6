"""An ASGI wrapper in front of the bundled test server (castproxy.testserver) that records what it received.

Tests assert at the upstream itself: which Authorization headers its API saw, which /api/ requests
arrived (a re-sent call shows up twice), and how many token requests of each grant type were made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx2

from castproxy.testserver.app import create_app as create_testserver
from support.servers import Running, run

Receive = Callable[[], Awaitable[dict]]


@dataclass
class Sent:
    method: str
    path: str
    authorization: str
    body: bytes


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the connection's own messages."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class UpstreamRecorder:
    """`seen`: the Authorization header of every request outside /auth/; `sent`: every /api/ request;
    `grants`: the token endpoint's requests by grant_type."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []
        self.sent: list[Sent] = []
        self.grants: Counter[str] = Counter()

    @property
    def refreshes(self) -> int:
        return self.grants["refresh_token"]

    @property
    def service_fetches(self) -> int:
        return self.grants["client_credentials"]

    async def __call__(self, scope: dict, receive: Receive, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        authorizations = [value.decode() for name, value in scope["headers"] if name == b"authorization"]
        if not path.startswith("/auth/"):
            self.seen.extend(authorizations)
        if not (path.startswith("/api/") or path == "/auth/token"):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if path == "/auth/token":
            self.grants[parse_qs(body.decode()).get("grant_type", ["?"])[0]] += 1
        else:
            self.sent.append(Sent(scope["method"], path, authorizations[-1] if authorizations else "", body))
        await self.app(scope, replaying(body, receive), send)


async def revoke(upstream_url: str, token: str, client_secret: str, client_id: str = "test-client-id") -> None:
    """RFC 7009 revocation of one access token at the test server: the grant (its refresh token) stays valid."""
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{upstream_url}/auth/revoke",
            data={"token": token, "token_type_hint": "access_token"},
            auth=httpx2.BasicAuth(client_id, client_secret),
        )
    assert response.status_code == 200


@dataclass
class RecordedUpstream:
    """The bundled test server running on loopback behind an UpstreamRecorder."""

    app: Any
    recorder: UpstreamRecorder
    server: Running
    client_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def oauth(self) -> Any:
        return self.app.state.oauth

    def stop(self) -> None:
        self.server.stop()

    async def revoke(self, token: str) -> None:
        await revoke(self.url, token, self.client_secret)

    def last_token(self) -> str:
        """The access token of the last request that carried one."""
        return self.recorder.seen[-1].split(" ", 1)[1]


def start_recorded(mode: str, client_secret: str, **options: Any) -> RecordedUpstream:
    """`castproxy.testserver.app.create_app(mode, client_secret=..., **options)`, recorded and running."""
    app = create_testserver(mode, client_secret=client_secret, **options)
    recorder = UpstreamRecorder(app)
    return RecordedUpstream(app, recorder, run(recorder), client_secret)
