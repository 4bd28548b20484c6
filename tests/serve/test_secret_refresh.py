"""`${file:}` secrets are watched like the config: a changed secret is in use within 2 s, without a signal.

Three ways a secret file changes in real deployments: written in place (same inode), replaced by an
atomic rename (most tools), and the Kubernetes Secret volume's `..data` symlink swap. The upstream
records the Authorization header it received, so the test sees which secret a call carried.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serve_support import MODERN, mcp_client, run, wait_until, write_spec
from support import web
from support.net import free_socket
from support.servers import Running

from castproxy.serve.app import create_app

WITHIN = 2.0  # seconds: the bound for a changed secret to be in use


def write_config(folder: Path, upstream: str, secret: str) -> Path:
    path = folder / "cast.yaml"
    path.write_text(f"""version: 1
server:
  host: 127.0.0.1
store:
  path: state.db
workspaces:
  api:
    openapi: spec.json
    base_url: {upstream}
    auth:
      type: bearer
      token: ${{file:{secret}}}
    tools: [whoami]
""")
    return path


@pytest.fixture
def proxy(tmp_path: Path, upstream: tuple[Any, str]) -> Any:
    started: list[Running] = []

    SEEN[:] = [upstream[0]]

    def start(secret: str) -> str:
        write_spec(tmp_path)
        config = write_config(tmp_path, upstream[1], secret)
        sock = free_socket()
        running = run(create_app(config, port_override=sock.getsockname()[1]), sock)
        started.append(running)
        return f"{running.url}/mcp/api"

    yield start
    for running in started:
        running.stop()


SEEN: list[Any] = []  # the upstream's record of requests, set by the `proxy` fixture


async def sent_authorization(url: str) -> str:
    """The Authorization header the upstream received for one call (tool results mask secrets)."""
    async with mcp_client(url, MODERN) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result.content
    return str(SEEN[0].seen[-1].headers["authorization"])


async def in_use_within_bound(url: str, token: str) -> None:
    async def current() -> bool:
        return await sent_authorization(url) == f"Bearer {token}"

    await wait_until(current, timeout=WITHIN)


def in_place(path: Path, value: str) -> None:
    inode = path.stat().st_ino
    with path.open("r+") as handle:
        handle.truncate(0)
        handle.write(value + "\n")
    assert path.stat().st_ino == inode


def atomic(path: Path, value: str) -> None:
    temporary = path.with_name(".token.tmp")
    temporary.write_text(value + "\n")
    os.replace(temporary, path)


@pytest.mark.parametrize("change", [in_place, atomic], ids=["in-place", "atomic-rename"])
async def test_changed_secret_file_is_used_without_a_signal(
    tmp_path: Path, proxy: Callable[[str], str], change: Callable[[Path, str], None]
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("first-token\n")
    url = proxy(str(secrets / "token"))
    assert await sent_authorization(url) == "Bearer first-token"
    change(secrets / "token", "second-token")
    await in_use_within_bound(url, "second-token")
    change(secrets / "token", "third-token")
    await in_use_within_bound(url, "third-token")


async def test_kubernetes_secret_symlink_swap_is_used_without_a_signal(
    tmp_path: Path, proxy: Callable[[str], str]
) -> None:
    """The kubelet layout: token -> ..data/token, ..data -> ..VERSION; an update swaps ..data atomically."""
    volume = tmp_path / "secret-volume"
    volume.mkdir()

    def publish(version: int, value: str) -> None:
        versioned = volume / f"..2026_12_04_{version}"
        versioned.mkdir()
        (versioned / "token").write_text(value)
        os.symlink(versioned.name, volume / "..data_tmp")
        os.replace(volume / "..data_tmp", volume / "..data")

    publish(0, "first-token")
    os.symlink("..data/token", volume / "token")
    url = proxy(str(volume / "token"))  # absolute path, as `${file:/run/secrets/...}`
    assert await sent_authorization(url) == "Bearer first-token"
    for version, value in enumerate(["second-token", "third-token"], start=1):
        publish(version, value)
        await in_use_within_bound(url, value)


async def test_relative_secret_path_beside_the_config_is_watched(tmp_path: Path, proxy: Callable[[str], str]) -> None:
    (tmp_path / "token.txt").write_text("first-token")
    url = proxy("token.txt")
    assert await sent_authorization(url) == "Bearer first-token"
    atomic(tmp_path / "token.txt", "second-token")
    await in_use_within_bound(url, "second-token")


async def test_a_secret_file_a_reload_missed_is_watched_until_it_appears(
    tmp_path: Path, upstream: tuple[Any, str], proxy: Callable[[str], str]
) -> None:
    (tmp_path / "token.txt").write_text("first-token")
    url = proxy("token.txt")
    other = tmp_path / "elsewhere"
    other.mkdir()
    # The edit points at a file that does not exist yet: rejected, the old secret keeps serving...
    write_config(tmp_path, upstream[1], str(other / "token"))
    readyz = url.replace("/mcp/api", "/readyz")
    await wait_until(lambda: "does not exist" in str(web.get(readyz).json().get("last_reload")), timeout=5)
    assert await sent_authorization(url) == "Bearer first-token"
    # ...until the file appears, in a folder the proxy had no reason to watch before.
    atomic(other / "token", "second-token")
    await wait_until(lambda: sent_authorization_is(url, "second-token"), timeout=5)


async def sent_authorization_is(url: str, token: str) -> bool:
    return await sent_authorization(url) == f"Bearer {token}"
