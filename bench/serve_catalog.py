"""Serving a whole big API in search mode: start-up time, memory, search latency, reload of an unchanged spec.

`castproxy serve` runs as a real process on a config with `tools: "*"` and `discovery: search`; the
figures are taken from outside, as an operator sees them:
- start-up: process start to the first 200 from /healthz (load, compile, index);
- RSS once up and its peak (VmRSS, VmHWM from /proc);
- search latency (p50/p95/p99/max): `search_operations` tools/call round trips over HTTP (sequential, after a
  warm-up) for the tasks of bench/data/graph_queries.json (269 tasks as an agent phrases them), and the
  index's own time for the same queries in this process (no HTTP);
- reload: SIGHUP to the "config reloaded" log line, the spec unchanged (compile cache and index reuse).
Baseline in the same run: GitHub's REST spec (1,223 operations), then `--spec` if given (e.g. Graph
beta, 22k operations) with ratios against it. Every child runs under an address-space cap (default
4 GB, as the shared machine demands for Graph); a run that hits it fails with MemoryError in its log.

    .venv/bin/python bench/serve_catalog.py [--spec PATH] [--searches N] [--max-memory BYTES]
    prlimit --as=4000000000 -- .venv/bin/python bench/serve_catalog.py --index-only --spec PATH

Goals (issue 10, Graph beta): start-up < 20 s, RSS < 1 GiB, a search < 50 ms, reload near-free.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".cache/testdata/node_modules/@octokit/openapi/generated/api.github.com.json"
QUERIES: list[str] = json.loads((ROOT / "bench/data/graph_queries.json").read_text())["queries"]
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Served:
    """`castproxy serve` on one spec in search mode, its stderr read line by line with arrival times."""

    def __init__(self, spec: Path, folder: Path, max_memory: int) -> None:
        self.port = _free_port()
        config = folder / "cast.yaml"
        config.write_text(
            "version: 1\nserver:\n  host: 127.0.0.1\nstore:\n  path: state.db\nworkspaces:\n  api:\n"
            f"    openapi: {spec}\n    base_url: http://127.0.0.1:9\n    tools: \"*\"\n    discovery: search\n"
        )
        self.lines: list[tuple[float, str]] = []
        self.started = time.perf_counter()

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))

        self.process = subprocess.Popen(
            [sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--port", str(self.port), "--no-reload"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=cap,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.perf_counter(), line))

    def wait_up(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("serve exited:\n" + "".join(line for _, line in self.lines)[-3000:])
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx2.TransportError:
                time.sleep(0.05)
        raise RuntimeError("serve did not come up")

    def search(self, client: httpx2.Client, query: str, request_id: int) -> float:
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": "search_operations", "arguments": {"query": query, "limit": 10}}}
        start = time.perf_counter()
        answer = client.post(f"{self.url}/mcp/api", json=body, headers=MCP_HEADERS)
        seconds = time.perf_counter() - start
        result = answer.json()["result"]
        assert not result.get("isError"), result
        return seconds

    def reload(self, timeout: float = 120) -> float:
        seen = len(self.lines)
        start = time.perf_counter()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, line in self.lines[seen:]:
                if '"config reloaded"' in line or "config reloaded" in line:
                    return arrived - start
                if "config rejected" in line:
                    raise RuntimeError(line)
            time.sleep(0.01)
        raise RuntimeError("no reload within the timeout")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _in_process_latency(spec: Path, queries: list[str], repeat: int) -> tuple[float, dict[str, float], int]:
    """Index build seconds, search percentiles (ms) without HTTP, and the number of operations."""
    sys.path.insert(0, str(ROOT))
    from castproxy.catalog.index import SearchIndex
    from castproxy.openapi.compiler import compile_spec
    from castproxy.openapi.loader import load_document

    tools = compile_spec(load_document(str(spec), Path.cwd())).tools
    start = time.perf_counter()
    index = SearchIndex(tools)
    build = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        for query in queries:
            start = time.perf_counter()
            index.search(query, 10)
            times.append(time.perf_counter() - start)
    return build, _percentiles(times), len(tools)


def _light_tools(spec: Path) -> tuple[Any, ...]:
    """One ToolDefinition per operation with everything the index reads, but no schemas: measures the index
    on a spec today's compiler cannot compile within the memory cap (Graph, before issue 10's compiler fix)."""
    sys.path.insert(0, str(ROOT))
    from castproxy.openapi.model import Operation, ToolDefinition
    from castproxy.openapi.naming import assign_names, operation_name

    document = json.loads(spec.read_bytes())
    found = []
    for path, item in (document.get("paths") or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            op = item.get(method) if isinstance(item, dict) else None
            if isinstance(op, dict):
                found.append((method.upper(), path, op))
    del document
    names = assign_names([(operation_name(op.get("operationId"), m, p), op.get("operationId"), m, p)
                          for m, p, op in found])
    return tuple(
        ToolDefinition(name=name, operation_id=op.get("operationId"), title=(op.get("summary") or None),
                       description="\n\n".join(t for t in (op.get("summary"), op.get("description")) if t)[:1024],
                       input_schema={}, operation=Operation(method, path), tags=tuple(op.get("tags") or ()))
        for name, (method, path, op) in zip(names, found, strict=True)
    )


def index_only(spec: Path, queries: list[str], repeat: int) -> None:
    from castproxy.catalog.index import SearchIndex

    start = time.perf_counter()
    tools = _light_tools(spec)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    index = SearchIndex(tools)
    build = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        for query in queries:
            start = time.perf_counter()
            index.search(query, 10)
            times.append(time.perf_counter() - start)
    rss = _status_kib(os.getpid(), "VmHWM") / 1024
    print(f"index only, {spec.name}: {len(tools)} operations read in {loaded:.1f} s; index built in {build:.2f} s; "
          f"search {_shown(_percentiles(times))} ({len(times)} searches); process peak RSS {rss:.0f} MiB")
    for query in queries[:5]:
        print(f"  {query!r}: " + ", ".join(hit.name for hit in index.search(query, 3)))


def _percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max in milliseconds (nearest rank)."""
    ordered = sorted(seconds)
    return {name: ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000 for name, share in PERCENTILES}


def _shown(percentiles: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f} ms" for name, value in percentiles.items())


def measure(spec: Path, folder: Path, searches: int, max_memory: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    served = Served(spec, folder, max_memory)
    try:
        startup = served.wait_up()
        rss = _status_kib(served.process.pid, "VmRSS") / 1024
        with httpx2.Client(timeout=30) as client:
            for i, query in enumerate(QUERIES[:20]):  # warm-up
                served.search(client, query, i)
            latencies = [served.search(client, QUERIES[i % len(QUERIES)], i) for i in range(searches)]
        reloads = [served.reload() for _ in range(3)]
        peak = _status_kib(served.process.pid, "VmHWM") / 1024
        rss_after = _status_kib(served.process.pid, "VmRSS") / 1024
    finally:
        served.stop()
    return {"startup_s": startup, "rss_mib": rss, "rss_after_reloads_mib": rss_after, "peak_rss_mib": peak,
            "search_ms": _percentiles(latencies), "reload_s": statistics.median(reloads)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", help="a big spec to measure against the GitHub baseline (e.g. graph-beta.json)")
    parser.add_argument("--searches", type=int, default=2 * len(QUERIES),
                        help="search_operations calls per spec (default: the task set twice)")
    parser.add_argument("--max-memory", type=int, default=4_000_000_000, help="address-space cap per child (bytes)")
    parser.add_argument("--folder", default=str(ROOT / ".bench-serve-catalog"), help="scratch folder")
    parser.add_argument("--index-only", action="store_true",
                        help="only build the search index of --spec in this process (no compile, no serve)")
    args = parser.parse_args()
    if args.index_only:
        if not args.spec:
            parser.error("--index-only needs --spec")
        index_only(Path(args.spec), QUERIES, 3)
        return 0
    if not GITHUB.is_file():
        print(f"no GitHub spec at {GITHUB}: run scripts/fetch-test-data", file=sys.stderr)
        return 1
    specs = [("github (baseline)", GITHUB)] + ([("target", Path(args.spec).resolve())] if args.spec else [])
    results: dict[str, dict[str, Any]] = {}
    for label, spec in specs:
        if label != "target":
            build, alone, count = _in_process_latency(spec, QUERIES, 3)
        figures = measure(spec, Path(args.folder) / label.split()[0], args.searches, args.max_memory)
        if label == "target":  # the in-process figures after the served ones: two Graph compiles at once would not fit
            build, alone, count = _in_process_latency(spec, QUERIES, 3)
        figures.update({"operations": count, "index_build_s": build, "index_search_ms": alone})
        results[label] = figures
        print(f"{label}: {spec.name}, {count} operations")
        print(f"  start-up {figures['startup_s']:.2f} s; RSS {figures['rss_mib']:.0f} MiB (peak "
              f"{figures['peak_rss_mib']:.0f} MiB, {figures['rss_after_reloads_mib']:.0f} MiB after 3 reloads)")
        print(f"  search_operations over HTTP: {_shown(figures['search_ms'])} ({args.searches} calls)")
        print(f"  index alone: built in {build:.2f} s; search {_shown(alone)} ({3 * len(QUERIES)} searches)")
        print(f"  reload, spec unchanged (SIGHUP to 'config reloaded'): {figures['reload_s'] * 1000:.0f} ms")
    if "target" in results:
        base, target = results["github (baseline)"], results["target"]
        ratios = {key: target[key] / base[key] for key in ("startup_s", "rss_mib", "reload_s") if base[key]}
        ratios.update({f"search_{name}": target["search_ms"][name] / base["search_ms"][name]
                       for name in ("p50", "p99") if base["search_ms"][name]})
        print("target / baseline: " + ", ".join(f"{key} {value:.1f}x" for key, value in ratios.items()))
    print(json.dumps(results, indent=2), file=sys.stderr if os.environ.get("QUIET_JSON") else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
