"""Hot reload against a running proxy: edits, bad edits, atomic renames, ConfigMap swaps, in-flight calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve_support import MODERN, config_text, mcp_client
from support import web
from support.metrics import scrape, value

from castproxy.serve.snapshot import Snapshot

OPEN = {"open": ""}


class Swaps:
    """Stands between an app's reloader and its Observer (the ReloadObserver protocol) and wakes a waiting test
    at every snapshot swap and every reload outcome, so tests wait on the swap itself rather than on a timer."""

    def __init__(self, app: Any) -> None:
        self.state = app.state.serve
        reloader = app.state.reloader
        self._inner = reloader.metrics
        self._changed = threading.Condition()
        self.outcomes: list[bool] = []  # each reload's outcome: True swapped in, False rejected
        reloader.metrics = self

    def record_reload(self, ok: bool, *, workspaces: int | None = None, problems: tuple[str, ...] = ()) -> None:
        self._inner.record_reload(ok, workspaces=workspaces, problems=problems)
        with self._changed:
            self.outcomes.append(ok)
            self._changed.notify_all()

    def snapshot_installed(self, snapshot: Snapshot) -> None:
        self._inner.snapshot_installed(snapshot)
        with self._changed:
            self._changed.notify_all()

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> float:
        """Seconds until `check()` holds, re-checked after each swap or reload outcome."""
        started = time.monotonic()

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(check, timeout)

        assert await asyncio.to_thread(wait), "the awaited reload did not happen"
        return time.monotonic() - started

    def served(self, workspace: str = "open") -> set[str]:
        runtime = self.state.snapshot.workspaces.get(workspace)
        return set(runtime.tools) if runtime is not None and runtime.unavailable is None else set()

    async def serving(self, expected: list[str], workspace: str = "open") -> float:
        """Seconds until the served snapshot has exactly these tools in `workspace`."""
        return await self.until(lambda: self.served(workspace) == set(expected))


async def tool_names(proxy, workspace: str = "open") -> list[str]:
    async with mcp_client(proxy.mcp(workspace), MODERN) as client:
        return [tool.name for tool in (await client.list_tools()).tools]


def readyz(proxy) -> dict:
    return web.get(f"{proxy.url}/readyz").json()


def edit(path: Path, upstream_url: str, workspaces: dict[str, str]) -> None:
    path.write_text(config_text(upstream_url, workspaces))


def atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def test_valid_edit_is_served_within_a_second(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    swaps = Swaps(proxy.app)
    assert "whoami" in await tool_names(proxy)
    edit(proxy.config, upstream[1], {"open": "    tools: [listItems, getItem]"})
    assert await swaps.serving(["listItems", "getItem"]) < 1.0
    assert await tool_names(proxy) == ["listItems", "getItem"]
    assert readyz(proxy).get("last_reload") is None


async def test_invalid_edit_is_rejected_and_the_old_config_keeps_serving(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    swaps = Swaps(proxy.app)
    before = await tool_names(proxy)
    loaded_at = readyz(proxy)["config"]["loaded_at"]
    good = proxy.config.read_text()
    proxy.config.write_text(good.replace("tools: [listItems,", "timeout: soon\n    tools: [listItems,"))
    await swaps.until(lambda: False in swaps.outcomes)
    body = readyz(proxy)
    assert body["status"] == "ready"
    errors = body["last_reload"]["errors"]
    assert any(re.match(rf"{re.escape(str(proxy.config))}:\d+:\d+: .*timeout", line) for line in errors), errors
    assert body["config"]["loaded_at"] == loaded_at
    assert await tool_names(proxy) == before
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        assert not (await client.call_tool("getItem", {"id": "1"})).is_error
    assert value(scrape(proxy.url), "castproxy_config_reloads_total", outcome="failed") == 1
    # Fixing the file clears the error.
    proxy.config.write_text(good.replace("tools: [listItems,", "tools: ["))
    await swaps.serving(["createItem", "getItem", "failHard", "slow", "whoami"])
    assert await tool_names(proxy) == ["createItem", "getItem", "failHard", "slow", "whoami"]
    assert "last_reload" not in readyz(proxy)


async def test_workspace_edit_that_does_not_build_keeps_its_previous_version(start_proxy, upstream):
    """An unknown operationId is this workspace's problem: the rest of the edit applies, it keeps its old tools."""
    proxy = start_proxy({"open": "", "other": "    tools: [whoami]"})
    swaps = Swaps(proxy.app)
    before = await tool_names(proxy)
    good = proxy.config.read_text()
    proxy.config.write_text(good.replace("tools: [listItems,", "tools: [noSuchOperation, listItems,")
                            .replace("tools: [whoami]", "tools: [whoami, getItem]"))
    await swaps.serving(["whoami", "getItem"], workspace="other")  # the healthy part of the edit applied
    assert await tool_names(proxy, "other") == ["whoami", "getItem"]
    body = readyz(proxy)
    assert body["status"] == "degraded" and "last_reload" not in body
    state = body["workspaces"]["open"]
    assert state["state"] == "stale"
    assert any(re.match(rf"{re.escape(str(proxy.config))}:\d+:\d+: .*noSuchOperation", line)
               for line in state["problems"]), state
    assert body["workspaces"]["other"] == {"state": "serving"}
    assert await tool_names(proxy) == before  # the previous version of `open` keeps serving
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        assert not (await client.call_tool("getItem", {"id": "1"})).is_error
    proxy.config.write_text(good.replace("tools: [listItems,", "tools: ["))
    await swaps.serving(["createItem", "getItem", "failHard", "slow", "whoami"])
    assert readyz(proxy)["status"] == "ready"


async def test_atomic_rename_is_seen(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    swaps = Swaps(proxy.app)
    atomic_write(proxy.config, config_text(upstream[1], {"open": "", "second": "    tools: [whoami]"}))
    await swaps.serving(["whoami"], workspace="second")
    assert await tool_names(proxy, "second") == ["whoami"]


async def test_configmap_symlink_swaps_three_in_a_row(tmp_path, start_proxy, upstream):
    """The kubelet layout: cast.yaml -> ..data/cast.yaml, ..data -> ..<version>; an update swaps ..data."""
    proxy = start_proxy(OPEN)
    folder = tmp_path / "configmap"
    folder.mkdir()
    (tmp_path / "spec.json").rename(folder / "spec.json")

    def publish(version: int, tools: str) -> None:
        versioned = folder / f"..2026_{version}"
        versioned.mkdir()
        (versioned / "cast.yaml").write_text(config_text(upstream[1], {"open": f"    tools: [{tools}]"}))
        os.symlink("../spec.json", versioned / "spec.json")
        os.symlink(versioned.name, folder / "..data_tmp")
        os.replace(folder / "..data_tmp", folder / "..data")

    publish(0, "listItems")
    os.symlink("..data/cast.yaml", folder / "cast.yaml")
    from serve_support import run
    from support.net import free_socket

    from castproxy.serve.app import create_app

    sock = free_socket()
    app = create_app(folder / "cast.yaml", port_override=sock.getsockname()[1])
    swaps = Swaps(app)
    running = run(app, sock)
    try:
        proxy.url = running.url
        assert await tool_names(proxy) == ["listItems"]
        for version, tools in enumerate(["getItem", "whoami", "listItems, slow"], start=1):
            publish(version, tools)
            expected = [t.strip() for t in tools.split(",")]
            await swaps.serving(expected)
            assert await tool_names(proxy) == expected
    finally:
        running.stop()


async def test_call_in_flight_finishes_on_its_config(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    swaps = Swaps(proxy.app)
    api, _ = upstream
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        slow = asyncio.create_task(client.call_tool("slow", {"seconds": 1.5}))
        assert await asyncio.to_thread(api.slow_started.wait, 5)  # the upstream has the call
        # The new config drops the tool and points the workspace elsewhere; the call started before it.
        proxy.config.write_text(config_text("http://127.0.0.1:9", {"open": "    tools: [listItems]"}))
        await swaps.serving(["listItems"])
        assert not slow.done()
        result = await slow
    assert not result.is_error
    assert result.structured_content == {"slept": 1.5}


async def test_spec_file_edit_is_seen(start_proxy, tmp_path):
    proxy = start_proxy({"open": "    tools: [getItem]"})
    swaps = Swaps(proxy.app)
    spec = json.loads((tmp_path / "spec.json").read_text())
    spec["paths"]["/api/items/{id}"]["get"]["summary"] = "Fetch one item by its id"
    atomic_write(tmp_path / "spec.json", json.dumps(spec))
    await swaps.until(lambda: swaps.state.snapshot.workspaces["open"].tools["getItem"].definition.description
                      == "Fetch one item by its id")
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        assert (await client.list_tools()).tools[0].description == "Fetch one item by its id"


async def test_settings_bound_at_start_are_reported(start_proxy, caplog):
    proxy = start_proxy(OPEN)
    swaps = Swaps(proxy.app)
    with caplog.at_level(logging.WARNING, logger="castproxy.serve.builds"):
        proxy.config.write_text(proxy.config.read_text().replace("path: state.db", "path: other.db"))
        await swaps.until(lambda: True in swaps.outcomes)
    assert value(scrape(proxy.url), "castproxy_config_reloads_total", outcome="ok") == 1
    assert any(getattr(r, "fields", {}).get("settings") == ["store"] for r in caplog.records)
