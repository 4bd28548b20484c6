"""Mode `jwt`: a login endpoint (JSON or form), HS256 JWTs that expire, rotating refresh tokens, logout."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import httpx2
from joserfc import jws
from support import web
from support.clock import FakeClock

from castproxy.testserver.jwt import REFRESH_LIFETIME

PASSWORD = "pw_fixed_for_tests"


def claims(token: str) -> dict:
    return json.loads(jws.extract_compact(token.encode()).payload)


def login(http: httpx2.Client, url: str, **body: str) -> httpx2.Response:
    return http.post(f"{url}/auth/login", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_with_json_or_form_gives_a_jwt_that_opens_the_api(start_server, http):
    app, server = start_server("jwt", password=PASSWORD)
    answer = login(http, server.url, username="bob", password=PASSWORD)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    tokens = answer.json()
    assert set(tokens) == {"access_token", "token_type", "refresh_token"}  # the lifetime only inside the JWT
    access = claims(tokens["access_token"])
    assert access["sub"] == "2" and access["exp"] - access["iat"] == 300 and access["token_use"] == "access"
    me = http.get(f"{server.url}/api/me", headers=bearer(tokens["access_token"])).json()
    assert me["auth"] == "jwt" and me["user"]["name"] == "Bob Chen"

    form = http.post(f"{server.url}/auth/login", data={"username": "carol", "password": PASSWORD})
    assert form.status_code == 200 and claims(form.json()["access_token"])["sub"] == "3"
    assert app.state.jwt.logins == {"ok": 2}


def test_wrong_or_missing_credentials(start_server, http):
    app, server = start_server("jwt", password=PASSWORD)
    wrong = login(http, server.url, username="alice", password="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    assert login(http, server.url, username="mallory", password=PASSWORD).status_code == 401
    assert login(http, server.url, username="alice").status_code == 400
    text = http.post(f"{server.url}/auth/login", content=b"alice", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    assert app.state.jwt.logins == {"refused": 4}


def test_the_api_refuses_missing_forged_and_refresh_tokens(start_server, http):
    _, server = start_server("jwt", password=PASSWORD)
    tokens = login(http, server.url, username="alice", password=PASSWORD).json()
    missing = http.get(f"{server.url}/api/items")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer ")
    header, payload, signature = tokens["access_token"].split(".")
    flipped = "A" if signature[5] != "A" else "B"
    forged = f"{header}.{payload}.{signature[:5]}{flipped}{signature[6:]}"
    assert http.get(f"{server.url}/api/items", headers=bearer(forged)).status_code == 401
    assert http.get(f"{server.url}/api/items", headers=bearer(tokens["refresh_token"])).status_code == 401
    _, other = start_server("jwt", password=PASSWORD)  # its own signing key
    assert http.get(f"{other.url}/api/items", headers=bearer(tokens["access_token"])).status_code == 401


def test_tokens_expire_by_the_servers_clock(start_server, http):
    clock = FakeClock()
    _, server = start_server("jwt", password=PASSWORD, token_lifetime=60, clock=clock)
    tokens = login(http, server.url, username="alice", password=PASSWORD).json()
    clock.advance(59)
    assert http.get(f"{server.url}/api/items", headers=bearer(tokens["access_token"])).status_code == 200
    clock.advance(1)
    expired = http.get(f"{server.url}/api/items", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    refreshed = http.post(f"{server.url}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    clock.advance(REFRESH_LIFETIME)
    late = http.post(f"{server.url}/auth/refresh", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert late.status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(start_server, http):
    app, server = start_server("jwt", password=PASSWORD)
    first = login(http, server.url, username="alice", password=PASSWORD).json()
    second = http.post(f"{server.url}/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    by_bearer = http.post(f"{server.url}/auth/refresh", headers=bearer(second.json()["refresh_token"]))
    assert by_bearer.status_code == 200
    replayed = http.post(f"{server.url}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replayed.status_code == 401 and "already used" in replayed.json()["message"]
    # The whole session ended: the newest tokens are refused too.
    newest = by_bearer.json()
    assert http.get(f"{server.url}/api/items", headers=bearer(newest["access_token"])).status_code == 401
    assert http.post(f"{server.url}/auth/refresh", json={"refresh_token": newest["refresh_token"]}).status_code == 401
    assert app.state.jwt.refreshes == {"ok": 2, "refused": 2}


def test_logout_and_revocation(start_server, http):
    app, server = start_server("jwt", password=PASSWORD)
    alice = login(http, server.url, username="alice", password=PASSWORD).json()
    bob = login(http, server.url, username="bob", password=PASSWORD).json()
    assert http.post(f"{server.url}/auth/logout", headers=bearer(alice["access_token"])).status_code == 204
    assert http.get(f"{server.url}/api/items", headers=bearer(alice["access_token"])).status_code == 401
    assert http.post(f"{server.url}/auth/refresh", json={"refresh_token": alice["refresh_token"]}).status_code == 401
    assert http.get(f"{server.url}/api/items", headers=bearer(bob["access_token"])).status_code == 200

    app.state.jwt.revoke_access_token(bob["access_token"])  # that token only: its session lives on
    assert http.get(f"{server.url}/api/items", headers=bearer(bob["access_token"])).status_code == 401
    renewed = http.post(f"{server.url}/auth/refresh", json={"refresh_token": bob["refresh_token"]}).json()
    assert http.get(f"{server.url}/api/items", headers=bearer(renewed["access_token"])).status_code == 200
    app.state.jwt.revoke_all()
    assert http.get(f"{server.url}/api/items", headers=bearer(renewed["access_token"])).status_code == 401


def test_document_declares_the_bearer_jwt_scheme(start_server, http):
    _, server = start_server("jwt", password=PASSWORD)
    document = http.get(f"{server.url}/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearerJwt"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"
    assert f"{server.url}/auth/login" in scheme["description"]
    assert document["security"] == [{"bearerJwt": []}]


def test_each_server_generates_its_own_password(start_server):
    first, _ = start_server("jwt")
    second, _ = start_server("jwt")
    assert first.state.credentials.password != second.state.credentials.password
    assert re.fullmatch(r"pw_[A-Za-z0-9_-]{20,}", first.state.credentials.password)


def test_the_banner_prints_how_to_log_in():
    process = subprocess.Popen([sys.executable, "-m", "castproxy", "testserver", "--mode", "jwt", "--port", "0",
                                "--token-lifetime", "45"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = ""
        for line in process.stdout:
            banner += line
            if "Logout" in line:
                break
        port = re.search(r"OpenAPI spec    : http://localhost:(\d+)/openapi.json", banner).group(1)
        password = re.search(r"password      : (pw_\S+)", banner).group(1)
        assert "username      : alice   (also bob, carol, same password)" in banner
        assert "lives 45 s" in banner
        assert f"Login endpoint  : http://localhost:{port}/auth/login" in banner
        assert f"Refresh         : http://localhost:{port}/auth/refresh" in banner
        answer = web.post(f"http://127.0.0.1:{port}/auth/login", data={"username": "alice", "password": password},
                          timeout=10)
        assert answer.status_code == 200
        access = claims(answer.json()["access_token"])
        assert access["exp"] - access["iat"] == 45
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
