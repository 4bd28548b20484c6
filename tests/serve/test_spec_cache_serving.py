"""Remote specs while serving: the disk cache across restarts, conditional re-fetches, `refresh:`.

Real proxy and spec server on loopback; the spec server counts full answers and 304s.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import MODERN, SPEC, mcp_client, run, wait_until
from support import web
from support.metrics import scrape, value
from support.net import free_socket
from support.servers import Running
from support.spec_host import SpecHost, serve_spec

from castproxy.serve.app import create_app
from castproxy.serve.recovery import Backoff

FAST = Backoff(initial=0.05, maximum=0.2)


def write_config(folder: Path, spec_url: str, upstream: str, *, names: tuple[str, ...] = ("remote",),
                 extra: str = "") -> Path:
    blocks = "".join(f"  {name}:\n    openapi: {spec_url}\n    base_url: {upstream}\n{extra}"
                     "    tools: [listItems, getItem]\n" for name in names)
    path = folder / "cast.yaml"
    path.write_text(f"version: 1\nserver:\n  host: 127.0.0.1\nstore:\n  path: data/state.db\nworkspaces:\n{blocks}")
    return path


class Proxies:
    def __init__(self) -> None:
        self.running: list[Running] = []

    def start(self, config: Path) -> tuple[str, Any]:
        sock = free_socket()
        app = create_app(config, port_override=sock.getsockname()[1], retry=FAST)
        running = run(app, sock)
        self.running.append(running)
        return running.url, app

    def stop_all(self) -> None:
        for running in self.running:
            running.stop()
        self.running.clear()


@pytest.fixture
def proxies() -> Iterator[Proxies]:
    started = Proxies()
    yield started
    started.stop_all()


async def descriptions(url: str) -> dict[str, str]:
    async with mcp_client(url, MODERN) as client:
        return {tool.name: tool.description or "" for tool in (await client.list_tools()).tools}


async def test_restart_with_the_spec_url_down_serves_the_cached_spec(
    tmp_path: Path, upstream: tuple[Any, str], proxies: Proxies, caplog: pytest.LogCaptureFixture
) -> None:
    host = SpecHost(SPEC)
    spec_server = serve_spec(host)
    port = int(spec_server.url.rsplit(":", 1)[1])
    config = write_config(tmp_path, spec_server.url + "/openapi.json", upstream[1])
    url, _ = proxies.start(config)
    assert list(await descriptions(f"{url}/mcp/remote")) == ["listItems", "getItem"]
    assert list((tmp_path / "data" / "spec-cache" / "objects").iterdir())  # beside the store, by default
    proxies.stop_all()
    spec_server.stop()

    with caplog.at_level(logging.WARNING, logger="castproxy.serve.reload"):
        url, _ = proxies.start(config)
        assert list(await descriptions(f"{url}/mcp/remote")) == ["listItems", "getItem"]
        async with mcp_client(f"{url}/mcp/remote", MODERN) as client:
            assert not (await client.call_tool("getItem", {"id": "1"})).is_error
    report = web.get(f"{url}/readyz").json()
    assert report["status"] == "degraded"  # serving, but not from the live spec: say so
    remote = report["workspaces"]["remote"]
    assert remote["state"] == "serving" and remote["spec"]["from"] == "cache"
    assert "cannot fetch the spec" in remote["problems"][0] and "serving the copy cached at" in remote["problems"][0]
    assert any("last good copy" in record.getMessage() for record in caplog.records)

    again = serve_spec(host, port)  # the URL comes back: the live spec is fetched again on its own
    try:
        await wait_until(lambda: web.get(f"{url}/readyz").json()["status"] == "ready", timeout=10)
    finally:
        again.stop()


async def test_reload_fetches_each_url_once_and_conditionally(
    tmp_path: Path, upstream: tuple[Any, str], proxies: Proxies
) -> None:
    host = SpecHost(SPEC)
    spec_server = serve_spec(host)
    try:
        config = write_config(tmp_path, spec_server.url + "/openapi.json", upstream[1], names=("a", "b", "c"))
        url, app = proxies.start(config)
        assert (host.full_fetches, host.not_modified) == (1, 0)  # three workspaces, one fetch
        before = app.state.serve.snapshot.workspaces["a"]
        config.write_text(config.read_text() + "\n")  # any edit reloads
        await wait_until(lambda: value(scrape(url), "castproxy_config_reloads_total", outcome="ok") == 1, timeout=10)
        assert (host.full_fetches, host.not_modified) == (1, 1)  # 304: the cached copy is reused
        assert app.state.serve.snapshot.workspaces["a"] is before  # same config, same bytes: nothing rebuilt
        assert host.seen[-1].if_none_match is not None
        for name in ("a", "b", "c"):
            assert list(await descriptions(f"{url}/mcp/{name}")) == ["listItems", "getItem"]
    finally:
        spec_server.stop()


@pytest.mark.slow
async def test_refresh_picks_up_a_changed_spec_without_a_signal(
    tmp_path: Path, upstream: tuple[Any, str], proxies: Proxies
) -> None:
    host = SpecHost(SPEC)
    spec_server = serve_spec(host)
    try:
        config = write_config(tmp_path, spec_server.url + "/openapi.json", upstream[1], extra="    refresh: 1s\n")
        url, _ = proxies.start(config)
        assert (await descriptions(f"{url}/mcp/remote"))["getItem"] == "Get one item"
        await wait_until(lambda: host.not_modified >= 1, timeout=10)  # re-checked, unchanged: nothing rebuilt
        changed = copy.deepcopy(SPEC)
        changed["paths"]["/api/items/{id}"]["get"]["summary"] = "Fetch one item by its id"
        host.change(changed)

        async def updated() -> bool:
            return (await descriptions(f"{url}/mcp/remote"))["getItem"] == "Fetch one item by its id"

        await wait_until(updated, timeout=10)
        assert web.get(f"{url}/readyz").json()["status"] == "ready"
    finally:
        spec_server.stop()
