"""Hot reload against a running proxy: edits, bad edits, atomic renames, ConfigMap swaps, in-flight calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path

import httpx2
from serve_support import MODERN, config_text, mcp_client
from support.metrics import scrape, value

OPEN = {"open": ""}


async def tool_names(proxy, workspace: str = "open") -> list[str]:
    async with mcp_client(proxy.mcp(workspace), MODERN) as client:
        return [tool.name for tool in (await client.list_tools()).tools]


def readyz(proxy) -> dict:
    return httpx2.get(f"{proxy.url}/readyz").json()


def edit(path: Path, upstream_url: str, workspaces: dict[str, str]) -> None:
    path.write_text(config_text(upstream_url, workspaces))


def atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def wait_for_tools(proxy, expected: list[str], workspace: str = "open", timeout: float = 5.0) -> float:
    started = asyncio.get_running_loop().time()
    while True:
        try:
            if await tool_names(proxy, workspace) == expected:
                return asyncio.get_running_loop().time() - started
        except Exception:
            pass  # the workspace may not exist yet
        if asyncio.get_running_loop().time() - started > timeout:
            raise AssertionError(f"tools never became {expected}")
        await asyncio.sleep(0.02)


async def test_valid_edit_is_served_within_a_second(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    assert "whoami" in await tool_names(proxy)
    edit(proxy.config, upstream[1], {"open": "    tools: [listItems, getItem]"})
    took = await wait_for_tools(proxy, ["listItems", "getItem"])
    assert took < 1.0
    assert readyz(proxy).get("last_reload") is None


async def test_invalid_edit_is_rejected_and_the_old_config_keeps_serving(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    before = await tool_names(proxy)
    loaded_at = readyz(proxy)["config"]["loaded_at"]
    good = proxy.config.read_text()
    proxy.config.write_text(good.replace("tools: [listItems,", "timeout: soon\n    tools: [listItems,"))
    for _ in range(250):
        body = readyz(proxy)
        if "last_reload" in body:
            break
        await asyncio.sleep(0.02)
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
    await wait_for_tools(proxy, ["createItem", "getItem", "failHard", "slow", "whoami"])
    assert "last_reload" not in readyz(proxy)


async def test_workspace_edit_that_does_not_build_keeps_its_previous_version(start_proxy, upstream):
    """An unknown operationId is this workspace's problem: the rest of the edit applies, it keeps its old tools."""
    proxy = start_proxy({"open": "", "other": "    tools: [whoami]"})
    before = await tool_names(proxy)
    good = proxy.config.read_text()
    proxy.config.write_text(good.replace("tools: [listItems,", "tools: [noSuchOperation, listItems,")
                            .replace("tools: [whoami]", "tools: [whoami, getItem]"))
    await wait_for_tools(proxy, ["whoami", "getItem"], workspace="other")  # the healthy part of the edit applied
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
    await wait_for_tools(proxy, ["createItem", "getItem", "failHard", "slow", "whoami"])
    assert readyz(proxy)["status"] == "ready"


async def test_atomic_rename_is_seen(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    atomic_write(proxy.config, config_text(upstream[1], {"open": "", "second": "    tools: [whoami]"}))
    await wait_for_tools(proxy, ["whoami"], workspace="second")


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
    running = run(create_app(folder / "cast.yaml", port_override=sock.getsockname()[1]), sock)
    try:
        proxy.url = running.url
        assert await tool_names(proxy) == ["listItems"]
        for version, tools in enumerate(["getItem", "whoami", "listItems, slow"], start=1):
            publish(version, tools)
            await wait_for_tools(proxy, [t.strip() for t in tools.split(",")])
    finally:
        running.stop()


async def test_call_in_flight_finishes_on_its_config(start_proxy, upstream):
    proxy = start_proxy(OPEN)
    api, _ = upstream
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        slow = asyncio.create_task(client.call_tool("slow", {"seconds": 1.5}))
        while not any(seen.path == "/api/slow" for seen in api.seen):
            await asyncio.sleep(0.01)
        # The new config drops the tool and points the workspace elsewhere; the call started before it.
        proxy.config.write_text(config_text("http://127.0.0.1:9", {"open": "    tools: [listItems]"}))
        await wait_for_tools(proxy, ["listItems"])
        result = await slow
    assert not result.is_error
    assert result.structured_content == {"slept": 1.5}


async def test_spec_file_edit_is_seen(start_proxy, tmp_path):
    proxy = start_proxy({"open": "    tools: [getItem]"})
    spec = json.loads((tmp_path / "spec.json").read_text())
    spec["paths"]["/api/items/{id}"]["get"]["summary"] = "Fetch one item by its id"
    atomic_write(tmp_path / "spec.json", json.dumps(spec))
    for _ in range(250):
        async with mcp_client(proxy.mcp("open"), MODERN) as client:
            tools = (await client.list_tools()).tools
        if tools[0].description == "Fetch one item by its id":
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("spec edit not applied")


async def test_settings_bound_at_start_are_reported(start_proxy, caplog):
    proxy = start_proxy(OPEN)
    with caplog.at_level(logging.WARNING, logger="castproxy.serve.builds"):
        proxy.config.write_text(proxy.config.read_text().replace("path: state.db", "path: other.db"))
        await wait_for_reload_count(proxy, 1)
    assert any(getattr(r, "fields", {}).get("settings") == ["store"] for r in caplog.records)


async def wait_for_reload_count(proxy, count: int) -> None:
    for _ in range(250):
        if value(scrape(proxy.url), "castproxy_config_reloads_total", outcome="ok") == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("reload not seen")
