"""What observability costs castproxy: fast-path `tools/call` throughput with the audit trail and metrics on vs off.

Targets, all `castproxy` on one generated config (one workspace, one tool, the raw upstream of
serve_bench.py), measured round robin in the same run with wrk at N connections (default 16):
  (n) nothing observed: a runner (bench/observe_runner.py) that swaps the Observer's per-call methods
      for no-ops and hands ToolCaller the bare forwarder, i.e. castproxy without metrics or audit;
  (m) metrics only: `server.audit.sink: off` (metrics are always on in castproxy);
  (s) metrics + audit trail to stdout (the default; stdout goes to a file here, as a log collector's would);
  (f) metrics + audit trail to a rotated file (`sink: file`, 100 MiB, 5 backups).
Tracing stays off (no OTEL_* variable): off, castproxy has no tracing code on the request path and never
imports the SDK (tests/serve/test_tracing.py checks that). Servers are pinned to core 1, wrk to core 0.
Prints req/s and p50/p99 per target, each target's throughput against (n), and the CPU time the castproxy
process spent per request during the throughput run (its /proc utime + stime, writer thread included):
that figure barely moves when other work shares the machine, unlike req/s.

Usage: .venv/bin/python bench/observe_bench.py [--duration 5] [--connections 16] [--rounds 3]
                                               [--protocol 2026-07-28] [--only nmsf]
Needs wrk: apt-get install -y wrk
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from serve_bench import (
    BENCH,
    MODERN,
    UVICORN_FLAGS,
    Run,
    Target,
    cores,
    free_port,
    median,
    rpc,
    rpc_target,
    started,
    wait_http,
    write_config,
    wrk,
)

TARGETS = {
    "n": ("n nothing observed", None),
    "m": ("m metrics, audit off", "  audit: {sink: off}\n"),
    "s": ("s metrics + audit to stdout", "  audit: {sink: stdout}\n"),
    "f": ("f metrics + audit to a file", "  audit: {sink: file, path: ./audit.jsonl, max_bytes: 100MiB, backups: 5}\n"),
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_cpu(target: Target, pid: int, args: argparse.Namespace, pin: list[str]) -> tuple[Run, Run, float]:
    """serve_bench's measure, plus the server's CPU microseconds per request in the throughput run."""
    wrk(target, connections=args.connections, duration=1, pin=pin)  # warm up
    before = cpu_seconds(pid)
    loaded = wrk(target, connections=args.connections, duration=args.duration, pin=pin)
    spent = cpu_seconds(pid) - before
    single = wrk(target, connections=1, duration=args.duration, pin=pin)
    return loaded, single, spent * 1e6 / max(1, loaded.good + loaded.bad)


def start_target(key: str, folder: Path, upstream_url: str, env: dict[str, str], pin: list[str],
                 stack: contextlib.ExitStack, protocol: str) -> tuple[str, str, int] | None:
    label, audit = TARGETS[key]
    folder.mkdir()
    port = free_port()
    config = write_config(folder, upstream_url, port)
    text = config.read_text().replace(f"server: {{host: 127.0.0.1, port: {port}}}\n",
                                      f"server:\n  host: 127.0.0.1\n  port: {port}\n{audit or ''}")
    config.write_text(text)
    runner = [sys.executable, str(BENCH / "observe_runner.py"), "off" if audit is None else "on", str(config)]
    log = folder / "castproxy.log"
    process = stack.enter_context(started([*pin, *runner], env, log))
    if not wait_http(f"http://127.0.0.1:{port}/healthz", process):
        print(f"{label}: castproxy did not start:\n" + log.read_text()[-2000:])
        return None
    url = f"http://127.0.0.1:{port}/mcp/bench"
    answer = rpc(url, "tools/call", {"name": "getItem", "arguments": {"id": 1}}, protocol)
    if answer.get("result", {}).get("isError") or "error" in answer:
        print(f"{label}: tools/call failed: {answer}")
        return None
    return label, url, process.pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="connections for the throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="measure every target N times, round robin; medians")
    parser.add_argument("--protocol", default=MODERN, help="MCP protocol mode of the requests (default 2026-07-28)")
    parser.add_argument("--only", default="nmsf", help="targets to run (default nmsf)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again.")
        return 1
    server_pin, driver_pin = cores()
    with tempfile.TemporaryDirectory(prefix="castproxy-observe-bench-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONPATH=f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        env = {key: value for key, value in env.items() if not key.startswith("OTEL_")}
        port = free_port()
        command = [*server_pin, sys.executable, "-m", "uvicorn", "serve_apps:upstream", "--port", str(port)]
        upstream = stack.enter_context(started([*command, *UVICORN_FLAGS], env, folder / "upstream.log"))
        upstream_url = f"http://127.0.0.1:{port}"
        if not wait_http(upstream_url + "/items/1", upstream):
            print("the upstream did not start")
            return 1
        targets = []
        pids: dict[str, int] = {}
        for key in args.only:
            found = start_target(key, folder / key, upstream_url, env, server_pin, stack, args.protocol)
            if found is None:
                return 1
            targets.append(rpc_target(found[0], found[1], "getItem", args.protocol))
            pids[found[0]] = found[2]
        runs: dict[str, list[tuple[Run, Run]]] = {target.label: [] for target in targets}
        cpu: dict[str, list[float]] = {target.label: [] for target in targets}
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                print(f"round {round_number}/{args.rounds}: {target.label} ...", flush=True)
                loaded, single, per_request = measure_cpu(target, pids[target.label], args, driver_pin)
                runs[target.label].append((loaded, single))
                cpu[target.label].append(per_request)
        audit_lines = {key: _lines(folder / key) for key in args.only}
    medians = {label: (median([r[0] for r in rs]), median([r[1] for r in rs])) for label, rs in runs.items()}
    print(f"\n{args.rounds} round(s), {args.duration:g} s per run, {args.connections} connections, protocol "
          f"{args.protocol}, fast path; medians (the machine may be shared: compare ratios, not absolutes)")
    print(f"{'target':<34}{'req/s':>10}{'p50':>10}{'p99':>10}{'p50@1':>10}  audit lines  req/s vs n"
          "   CPU/request  vs n")
    base = next((pair[0].rps for label, pair in medians.items() if label.startswith("n ")), None)
    cpu_medians = {label: statistics.median(values) for label, values in cpu.items()}
    base_cpu = next((value for label, value in cpu_medians.items() if label.startswith("n ")), None)
    for label, (loaded, single) in medians.items():
        ratio = f"{loaded.rps / base:6.1%}" if base else ""
        lines = audit_lines.get(label[0], 0)
        added = f"{cpu_medians[label] - base_cpu:+6.1f} us ({cpu_medians[label] / base_cpu - 1:+.1%})" \
            if base_cpu else ""
        print(f"{label:<34}{loaded.rps:>10.0f}{loaded.p50_ms:>8.2f}ms{loaded.p99_ms:>8.2f}ms"
              f"{single.p50_ms:>8.2f}ms  {lines:>11}  {ratio:>10}  {cpu_medians[label]:8.1f} us  {added}")
    costs = per_call_costs()
    total = sum(costs.values())
    print("\nper-call cost of the observability steps, in this process (steady, whatever the machine's load):")
    for step, micros in costs.items():
        print(f"  {micros:6.2f} us  {step}")
    if base_cpu:
        print(f"  {total:6.2f} us  in all, {total / base_cpu:.1%} of (n)'s {base_cpu:.0f} us CPU per request")
    spread = {label: statistics.pstdev(r[0].rps for r in rs) for label, rs in runs.items()}
    print("round-to-round spread (stdev req/s): " + ", ".join(f"{k[0]} {v:.0f}" for k, v in spread.items()))
    return 0


def per_call_costs() -> dict[str, float]:
    """Microseconds per call of each observability step, measured in this process (best of 7 runs)."""
    import asyncio
    import timeit

    from castproxy.observe import CURRENT, AuditTrail, Observer, RequestInfo
    from castproxy.observe.audit import encode
    from castproxy.upstream.model import UpstreamRequest, UpstreamResponse

    answer = UpstreamResponse(200, "OK", {}, b'{"id":1,"name":"widget"}', False, "http://upstream/items/1", 0.001)

    class Inner:
        async def send(self, request: UpstreamRequest, *, timeout: float, max_bytes: int) -> UpstreamResponse:
            return answer

    observer = Observer(AuditTrail(None))
    observer.snapshot_installed  # noqa: B018 (no snapshot needed: no workspace opted in to argument names)
    CURRENT.set(RequestInfo("bench", address="127.0.0.1"))
    inner, wrapped = Inner(), observer.forwarder(Inner())
    request = UpstreamRequest("GET", "http://upstream/items/1")
    loop = asyncio.new_event_loop()
    record = {"ts": 1767225600.5, "event": "tool_call", "workspace": "bench", "tool": "getItem", "outcome": "ok",
              "upstream_status": 200, "duration_ms": 1.23, "bytes": 24, "caller": {"address": "127.0.0.1"}}

    async def sends(forwarder: object, count: int) -> None:
        for _ in range(count):
            await forwarder.send(request, timeout=30, max_bytes=2**20)  # type: ignore[attr-defined]

    def best(work: object, number: int = 20_000) -> float:
        return min(timeit.repeat(work, number=1, repeat=7)) * 1e6 / number  # type: ignore[arg-type]

    costs = {
        "Observer.tool_call (metrics, stats, record)": best(lambda: [observer.tool_call(
            "bench", "getItem", "getItem", "ok", 200, 0.001) for _ in range(20_000)]),
        "note_arguments": best(lambda: [observer.note_arguments({}) for _ in range(20_000)]),
        "ObservedForwarder.send (over a bare send)": best(lambda: loop.run_until_complete(sends(wrapped, 20_000)))
        - best(lambda: loop.run_until_complete(sends(inner, 20_000))),
        "audit line encoding (writer thread)": best(lambda: [encode(record) for _ in range(20_000)]),
    }
    loop.close()
    return costs


def _lines(folder: Path) -> int:
    """Audit records the target wrote (its stdout log or its audit files)."""
    count = 0
    for path in [folder / "castproxy.log", *folder.glob("audit.jsonl*")]:
        if path.exists():
            with open(path, "rb") as handle:
                count += sum(1 for line in handle if line.startswith(b'{"ts":') and b'"tool_call"' in line)
    return count


if __name__ == "__main__":
    raise SystemExit(main())
