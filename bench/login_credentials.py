"""What an `auth.type: login` credential costs per tool call, against a static bearer token in the same process.

Runs the bundled test server in mode jwt on loopback, logs in once, then times `apply()` (what every
tool call does before sending) for:
  (a) static   StaticCredentials with a fixed bearer token (auth.type: bearer);
  (l) login    LoginCredentials in steady state (the token this process holds, not yet due);
  (r) re-read  the same with the in-memory token dropped before each call: a SQLite read and an
               AES-GCM decryption per call (what a replica pays right after another one renewed).
Prints calls/s and the ratios l/a and r/a. The machine may be shared: compare ratios, not absolutes.

Usage: .venv/bin/python bench/login_credentials.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
from pydantic import SecretStr

from castproxy.auth.login import LoginCredentials, UpstreamLogin
from castproxy.auth.static import StaticCredentials
from castproxy.config.model import LoginAuth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore
from castproxy.testserver.app import create_app
from castproxy.testserver.runner import run_in_thread

PASSWORD = "pw_bench"


async def rate(calls: int, one: Callable[[], Awaitable[None]]) -> float:
    for _ in range(200):  # warm-up
        await one()
    started = time.perf_counter()
    for _ in range(calls):
        await one()
    return calls / (time.perf_counter() - started)


async def main(calls: int) -> None:
    server = run_in_thread(create_app("jwt", password=PASSWORD, token_lifetime=3600))
    folder = Path(tempfile.mkdtemp(prefix="castproxy-bench-"))
    store = SQLiteStore(folder / "state.db")
    try:
        async with httpx2.AsyncClient(trust_env=False) as http:
            auth = LoginAuth(type="login", login_url=f"{server.url}/auth/login",
                             credentials={"username": SecretStr("alice"), "password": SecretStr(PASSWORD)})
            login = UpstreamLogin("bench", auth, store=store, cipher=Cipher.from_secret("b" * 40), http=http)
            credentials = LoginCredentials(login)
            static = StaticCredentials({"Authorization": "Bearer " + await login.token()}, "bearer")

            async def apply_static() -> None:
                await static.apply({"Accept": "application/json"}, None)

            async def apply_login() -> None:
                await credentials.apply({"Accept": "application/json"}, None)

            async def apply_reread() -> None:
                login._cached = None
                await credentials.apply({"Accept": "application/json"}, None)

            results = {
                "a static bearer": await rate(calls, apply_static),
                "l login (held token)": await rate(calls, apply_login),
                "r login (store re-read)": await rate(calls, apply_reread),
            }
    finally:
        await store.close()
        server.stop()
    for name, value in results.items():
        print(f"{name:28s} {value:12,.0f} calls/s  ({1e6 / value:8.1f} µs per call)")
    baseline = results["a static bearer"]
    print(f"ratio l/a: {results['l login (held token)'] / baseline:.2f}   "
          f"ratio r/a: {results['r login (store re-read)'] / baseline:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20000)
    asyncio.run(main(parser.parse_args().calls))
