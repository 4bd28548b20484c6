"""UpstreamLogin (auth.type login) against login endpoints on loopback: how it logs in, reads the answer, renews.

A small scripted upstream plays the many shapes real login APIs have (token at a JSON pointer, a
bare string, `expires_in` as text, refresh by Bearer, a named header with a prefix); the bundled test
server in mode jwt plays the strict one. Time is a FakeClock; the store a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from support import web
from support.clock import FakeClock
from support.servers import Running, run

from castproxy.auth.login import LoginClients, LoginCredentials, LoginError, UpstreamLogin, locate, sent_token
from castproxy.config.model import LoginAuth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore
from castproxy.testserver.app import create_app as create_testserver

PASSWORD = "pw-unit-canary-4411"
KEY = OctKey.generate_key(256)


def a_jwt(clock: FakeClock, lifetime: int | None, *, iat: bool = True, exp_offset: float | None = None) -> str:
    now = int(clock())
    claims: dict[str, Any] = {"sub": "1"}
    if iat:
        claims["iat"] = now
    if lifetime is not None:
        claims["exp"] = now + lifetime
    if exp_offset is not None:
        claims["exp"] = now + exp_offset
    return jwt.encode({"alg": "HS256"}, claims, KEY)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedUpstream:
    """Answers each POST path with the next scripted response (the last one repeats); records what arrived."""

    script: dict[str, list[Callable[[], Response]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def count(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.path == path)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(Seen(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body))
        answers = self.script[request.url.path]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        await asyncio.sleep(0)  # let concurrent callers pile up behind the lock
        return answer()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/login", self.endpoint, methods=["POST"]),
                                 Route("/refresh", self.endpoint, methods=["POST"])])


def answer(body: Any, status: int = 200) -> Callable[[], Response]:
    return lambda: JSONResponse(body, status)


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedUpstream, str]]:
    upstream = ScriptedUpstream()
    server = run(upstream.app())
    yield upstream, server.url
    server.stop()


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., UpstreamLogin]]:
    store = SQLiteStore(tmp_path / "state.db")
    http = httpx2.AsyncClient(timeout=10, trust_env=False, verify=web.TLS)
    cipher = Cipher.from_secret("k" * 40)

    def build(url: str, clock: FakeClock, *, workspace: str = "api", cipher_: Cipher | None = None,
              **settings: Any) -> UpstreamLogin:
        fields = {"type": "login", "login_url": f"{url}/login",
                  "credentials": {"username": SecretStr("alice"), "password": SecretStr(PASSWORD)}, **settings}
        return UpstreamLogin(workspace, LoginAuth(**fields), store=store, cipher=cipher_ or cipher, http=http,
                             clock=clock)

    yield build
    await http.aclose()
    await store.close()


# ---- reading the login answer ---------------------------------------------------------------------------


async def test_json_login_sends_credentials_and_fields_and_reads_expires_in(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "tok-1", "expires_in": "300"})]
    clock = FakeClock()
    login = make(url, clock, fields={"grant_type": "password"})
    assert await login.token() == "tok-1"
    sent = upstream.seen[0]
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"grant_type": "password", "username": "alice", "password": PASSWORD}
    assert (await login._read()).expires_at == pytest.approx(clock() + 300)


async def test_form_login_and_a_token_at_a_json_pointer(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"data": {"auth/jwt": "tok-2"}, "access_token": "not-this"})]
    login = make(url, FakeClock(), format="form", token_field="/data/auth~1jwt")
    assert await login.token() == "tok-2"
    assert upstream.seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert upstream.seen[0].body == f"username=alice&password={PASSWORD}".encode()


@pytest.mark.parametrize(
    "respond",
    [answer({"token": "tok-3"}), answer("tok-3"), lambda: PlainTextResponse("tok-3\n")],
    ids=["token_field", "json_string", "text_plain"],
)
async def test_default_token_places(scripted, make, respond) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [respond]
    assert await make(url, FakeClock()).token() == "tok-3"


def test_locate_reads_fields_and_pointers() -> None:
    answer_ = {"a": {"b": [{"c": "x"}]}, "t": "y", "~/": "z"}
    assert locate(answer_, "t") == "y"
    assert locate(answer_, "/a/b/0/c") == "x"
    assert locate(answer_, "/~0~1") == "z"
    assert locate(answer_, "/a/b/1/c") is None and locate(answer_, "/t/x") is None and locate(["x"], "t") is None


@pytest.mark.parametrize(
    ("make_token", "lifetime", "expected"),
    [
        (lambda clock: a_jwt(clock, 600), None, 600),  # exp - iat
        (lambda clock: a_jwt(clock, 600, iat=False), None, 600),  # exp against our clock
        (lambda clock: a_jwt(clock, None), 90.0, 90),  # no exp: the configured lifetime
        (lambda clock: "opaque-token", 90.0, 90),
        (lambda clock: a_jwt(clock, None, iat=False, exp_offset=-5), 45.0, 45),  # exp in the past: skew
        (lambda clock: "opaque-token", None, None),  # unknown: renewed only when the upstream refuses it
    ],
    ids=["jwt_exp_iat", "jwt_exp_only", "jwt_no_exp", "opaque_configured", "exp_in_the_past", "unknown"],
)
async def test_lifetime_from_the_jwt_or_the_config(scripted, make, make_token, lifetime, expected) -> None:
    upstream, url = scripted
    clock = FakeClock()
    token = make_token(clock)
    upstream.script["/login"] = [answer({"access_token": token})]
    login = make(url, clock, token_lifetime=lifetime)
    assert await login.token() == token
    stored = await login._read()
    assert stored.expires_at == (None if expected is None else pytest.approx(clock() + expected, abs=1))


async def test_expires_in_wins_over_the_jwt(scripted, make) -> None:
    upstream, url = scripted
    clock = FakeClock()
    upstream.script["/login"] = [answer({"access_token": a_jwt(clock, 600), "meta": {"ttl": 30}})]
    login = make(url, clock, expires_in_field="/meta/ttl")
    await login.token()
    assert (await login._read()).expires_at == pytest.approx(clock() + 30)


# ---- failures: clear, safe messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("respond", "message"),
    [
        (answer({"error": "invalid_credentials", "message": f"no user alice with {PASSWORD}"}, 401),
         "workspace api: the upstream login endpoint refused castproxy's credentials (HTTP 401 "
         "invalid_credentials); check the workspace's auth.credentials"),
        (answer({"code": "has spaces so not shown"}, 403),
         "workspace api: the upstream login endpoint refused castproxy's credentials (HTTP 403); "
         "check the workspace's auth.credentials"),
        (answer({"oops": True}, 503), "workspace api: the upstream login endpoint answered HTTP 503"),
        (answer({"jwt": "x"}), "workspace api: the upstream login answer has no token at `access_token` or `token`; "
         "set auth.token_field to where it is"),
        (answer({"access_token": "two words"}), "workspace api: the token in the upstream login answer is not one "
         "header value (spaces, control or non-ASCII characters, or longer than 16 KiB)"),
        (lambda: Response(b"<html>", 200, media_type="text/html"), "workspace api: the upstream login answer has no "
         "token at `access_token` or `token`; set auth.token_field to where it is"),
    ],
    ids=["401", "403_unsafe_code", "503", "no_token", "token_with_space", "html"],
)
async def test_failures_name_the_workspace_and_no_secret(scripted, make, respond, message) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [respond]
    with pytest.raises(LoginError) as failure:
        await make(url, FakeClock()).token()
    assert str(failure.value) == message
    assert PASSWORD not in str(failure.value) and "alice" not in str(failure.value)


async def test_an_unreachable_login_endpoint(make) -> None:
    with pytest.raises(LoginError, match=r"^workspace api: the upstream login endpoint could not be reached "
                                         r"\(ConnectError\)$"):
        await make("http://127.0.0.1:9", FakeClock()).token()


async def test_refused_credentials_are_not_tried_again_for_30_seconds(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"error": "invalid_credentials"}, 401), answer({"access_token": "tok"})]
    clock = FakeClock()
    login = make(url, clock)
    for _ in range(3):
        with pytest.raises(LoginError, match="refused castproxy's credentials"):
            await login.token()
    assert upstream.count("/login") == 1
    clock.advance(31)
    assert await login.token() == "tok"
    assert upstream.count("/login") == 2


# ---- renewal --------------------------------------------------------------------------------------------


async def test_refresh_by_body_field_rotates_and_keeps_the_old_refresh_token_when_none_comes(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1", "rt": "r1", "expires_in": 100})]
    upstream.script["/refresh"] = [answer({"access_token": "a2", "expires_in": 100}),
                                   answer({"access_token": "a3", "expires_in": 100})]
    clock = FakeClock()
    login = make(url, clock, refresh_url=f"{url}/refresh", refresh_token_field="rt", refresh_body_field="token")
    assert await login.token() == "a1"
    clock.advance(95)  # inside the margin (10% of the lifetime)
    assert await login.token() == "a2"
    clock.advance(95)
    assert await login.token() == "a3"
    refreshes = [seen.json() for seen in upstream.seen if seen.path == "/refresh"]
    assert refreshes == [{"token": "r1"}, {"token": "r1"}]
    assert upstream.count("/login") == 1


async def test_refresh_by_bearer(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1", "refresh_token": "r1", "expires_in": 100})]
    upstream.script["/refresh"] = [answer({"access_token": "a2", "refresh_token": "r2", "expires_in": 100})]
    clock = FakeClock()
    login = make(url, clock, refresh_url=f"{url}/refresh", refresh_send_as="bearer", format="form")
    await login.token()
    clock.advance(100)
    assert await login.token() == "a2"
    refresh = upstream.seen[-1]
    assert refresh.headers["authorization"] == "Bearer r1" and refresh.body == b""


async def test_a_failed_refresh_logs_in_again(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1", "refresh_token": "r1", "expires_in": 100}),
                                 answer({"access_token": "a2", "refresh_token": "r2", "expires_in": 100})]
    upstream.script["/refresh"] = [answer({"error": "expired"}, 401)]
    clock = FakeClock()
    login = make(url, clock, refresh_url=f"{url}/refresh")
    await login.token()
    clock.advance(100)
    assert await login.token() == "a2"
    assert [seen.path for seen in upstream.seen] == ["/login", "/refresh", "/login"]


async def test_a_login_that_fails_while_the_token_still_lives_keeps_the_token(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1", "expires_in": 100}), answer({}, 502)]
    clock = FakeClock()
    login = make(url, clock)
    await login.token()
    clock.advance(95)  # due for renewal, not expired
    assert await login.token() == "a1"
    clock.advance(10)  # expired: now the failure shows
    with pytest.raises(LoginError, match="answered HTTP 502"):
        await login.token()


async def test_a_refused_token_is_renewed_once_however_many_calls_saw_it(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1"}), answer({"access_token": "a2"})]
    login = make(url, FakeClock())
    assert await login.token() == "a1"
    tokens = await asyncio.gather(*(login.token(rejected="a1") for _ in range(20)))
    assert set(tokens) == {"a2"} and upstream.count("/login") == 2
    assert await login.token(rejected="stale-other-token") == "a2" and upstream.count("/login") == 2


async def test_twenty_first_calls_log_in_once(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1", "expires_in": 100})]
    login = make(url, FakeClock())
    assert set(await asyncio.gather(*(login.token() for _ in range(20)))) == {"a1"}
    assert upstream.count("/login") == 1


# ---- the stored token ------------------------------------------------------------------------------------


async def test_the_token_is_stored_encrypted_and_survives_a_restart(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a-secret-token", "refresh_token": "r-secret"})]
    clock = FakeClock()
    first = make(url, clock)
    await first.token()
    blob = await first.store.get("upstream-login", "api")
    assert blob is not None and b"a-secret-token" not in blob and b"r-secret" not in blob
    assert await make(url, clock).token() == "a-secret-token"  # a new process, same config: no new login
    assert upstream.count("/login") == 1


@pytest.mark.parametrize(
    "change",
    [{"credentials": {"username": SecretStr("bob"), "password": SecretStr(PASSWORD)}},
     {"login_url": "http://127.0.0.1:1/elsewhere"}, {"workspace": "other"}, {"cipher_": Cipher.from_secret("z" * 40)}],
    ids=["other_account", "other_login_url", "other_workspace", "other_secret_key"],
)
async def test_a_stored_token_is_never_sent_for_other_settings(scripted, make, change) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1"}), answer({"access_token": "a2"})]
    await make(url, FakeClock()).token()
    other = make(url, FakeClock(), **change)
    if "login_url" in change:
        with pytest.raises(LoginError, match="could not be reached"):
            await other.token()
    else:
        assert await other.token() == "a2"


async def test_a_malformed_stored_token_set_means_logging_in_again(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1"}), answer({"access_token": "a2"})]
    login = make(url, FakeClock())
    await login.token()
    malformed = login.cipher.encrypt(b'{"access_token":"a1"}', aad=login._aad)  # as a MalformedRecord
    await login.store.put("upstream-login", "api", malformed)
    assert await make(url, FakeClock()).token() == "a2"


# ---- where the token goes ----------------------------------------------------------------------------------


async def test_header_with_prefix_replaces_any_header_of_that_name(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1"})]
    login = make(url, FakeClock(), send_as="header", header="X-Auth-Token", prefix="Token ")
    credentials = LoginCredentials(login)
    assert credentials.protected_headers == frozenset({"x-auth-token"})
    headers = {"x-auth-token": "from-an-argument", "Authorization": "Basic kept"}
    await credentials.apply(headers, None)
    assert headers == {"Authorization": "Basic kept", "X-Auth-Token": "Token a1"}
    assert sent_token(login.auth, headers) == "a1"
    assert sent_token(login.auth, {"X-Auth-Token": "other a1"}) is None


async def test_bearer_by_default(scripted, make) -> None:
    upstream, url = scripted
    upstream.script["/login"] = [answer({"access_token": "a1"})]
    login = make(url, FakeClock())
    headers = {"authorization": "Bearer from-an-argument"}
    await LoginCredentials(login).apply(headers, None)
    assert headers == {"Authorization": "Bearer a1"} and sent_token(login.auth, headers) == "a1"


# ---- against the bundled test server -------------------------------------------------------------------------


@pytest.fixture
def jwt_server() -> Iterator[tuple[Any, Running, FakeClock]]:
    clock = FakeClock()
    app = create_testserver("jwt", password=PASSWORD, token_lifetime=60, clock=clock)
    server = run(app)
    yield app, server, clock
    server.stop()


async def test_the_test_servers_jwt_lifetime_and_refresh(jwt_server, make, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app, server, clock = jwt_server
    login = make(server.url, clock, login_url=f"{server.url}/auth/login", refresh_url=f"{server.url}/auth/refresh")
    first = await login.token()
    assert (await login._read()).expires_at == pytest.approx(clock() + 60, abs=1)  # from exp - iat
    clock.advance(61)
    second = await login.token()
    assert second != first and app.state.jwt.refreshes == {"ok": 1} and app.state.jwt.logins == {"ok": 1}
    assert "logged in at the upstream" in caplog.text and "refreshed" in caplog.text
    for secret in (first, second, PASSWORD):
        assert secret not in caplog.text


async def test_login_clients_keep_unchanged_logins_across_updates(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    async with httpx2.AsyncClient() as http:
        clients = LoginClients(store=store, cipher=Cipher.from_secret("k" * 40), http=http)
        auth = LoginAuth(type="login", login_url="http://127.0.0.1:9/login", credentials={"u": SecretStr("x")})
        clients.update({"a": auth, "b": auth})
        kept = clients.get("a")
        clients.update({"a": auth, "b": auth.model_copy(update={"prefix": ""}),
                        "c": auth.model_copy(update={"credentials": {"u": SecretStr("y")}})})
        assert clients.get("a") is kept and clients.get("c") is not None
        clients.update({"c": auth})
        assert clients.get("a") is None and clients.credentials_for("a") is None
        assert isinstance(clients.credentials_for("c"), LoginCredentials)
    await store.close()
