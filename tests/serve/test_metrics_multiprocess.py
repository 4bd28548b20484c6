"""prometheus_client's multiprocess mode, as `serve --workers N` uses it: two castproxy processes share
PROMETHEUS_MULTIPROC_DIR, and either one's /metrics answers the sum of both.

The two processes are started here with the variable set (what the workers' supervisor does after
`prepare_multiprocess()`), each on its own port so the test can send calls to each.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_support import Upstream, config_text, write_spec
from support import web
from support.metrics import scrape, value
from support.serve_process import start_serve, stop_serve

from castproxy.observe.metrics import MULTIPROC_ENV, prepare_multiprocess

pytestmark = pytest.mark.slow

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getItem", "arguments": {"id": "1"}}}
HEADERS = {"Accept": "application/json", "MCP-Protocol-Version": "2025-11-25"}


def test_two_processes_one_sum(tmp_path: Path, upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"a previous run's values")
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    assert prepare_multiprocess() == str(folder)
    assert list(folder.iterdir()) == []  # a restart does not add up the last run's counters

    write_spec(tmp_path)
    config = tmp_path / "cast.yaml"
    config.write_text(config_text(upstream[1], {"open": ""}, extra_server="  audit: {sink: off}\n"))
    first, first_url = start_serve(config, {MULTIPROC_ENV: str(folder)})
    second, second_url = start_serve(config, {MULTIPROC_ENV: str(folder)})
    try:
        for url, count in ((first_url, 2), (second_url, 3)):
            for _ in range(count):
                answer = web.post(f"{url}/mcp/open", json=CALL, headers=HEADERS)
                assert answer.json()["result"]["isError"] is False
        for url in (first_url, second_url):
            samples = scrape(url)
            assert value(samples, "castproxy_tool_calls_total", workspace="open", tool="getItem", outcome="ok") == 5
            assert value(samples, "castproxy_tool_call_duration_seconds_count", workspace="open", tool="getItem") == 5
            assert value(samples, "castproxy_upstream_requests_total", workspace="open", status_class="2xx") == 5
            assert not any(name.startswith("process_") for name, _ in samples)  # per-process: left out here
    finally:
        stop_serve(second)
    try:
        # A worker that is gone still counts in the totals (counters never go down).
        samples = scrape(first_url)
        assert value(samples, "castproxy_tool_calls_total", workspace="open", tool="getItem", outcome="ok") == 5
    finally:
        stop_serve(first)


def test_the_supervisor_helper_sets_up_and_removes_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from castproxy.observe.metrics import shared_metrics

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with shared_metrics() as folder:
        assert Path(folder).is_dir() and os.environ[MULTIPROC_ENV] == folder
    assert not Path(folder).exists() and MULTIPROC_ENV not in os.environ
