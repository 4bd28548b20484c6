"""Throughput of `castproxy serve --workers N`: 1 worker (the baseline) against 2 (or more), in the same run.

Runs on loopback: the upstream (bench/serve_apps.py's raw ASGI app, one process), then castproxy with
`--workers 1` and `--workers 2` on a generated cast.yaml, each measured with Debian's `wrk` posting a
stateless `tools/call` (bench/serve_wrk.lua checks every response). Nothing is pinned: the point is
what a second process buys on this machine, with the upstream and the load driver sharing its cores
as they would on a small host. With --rounds N the worker counts are measured round robin N times and
medians printed; the CPU time each worker spent during the run (/proc; workers found by their audit `start`
records) shows how evenly the kernel spread the connections.

Usage: .venv/bin/python bench/workers.py [--duration 5] [--connections 32] [--rounds 3] [--workers 1,2]
Needs wrk: apt-get install -y wrk
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from serve_bench import (
    BENCH,
    LEGACY,
    MODERN,
    ROOT,
    UVICORN_FLAGS,
    Run,
    free_port,
    rpc_target,
    started,
    wait_http,
    write_config,
    wrk,
)


def worker_pids(log: Path) -> list[str]:
    """The workers that started, from their audit trail's `start` records (stdout, in the log file)."""
    return sorted(set(re.findall(r'"event":"start".*?"pid":(\d+)', log.read_text())))


def cpu_seconds(pid: str) -> float:
    """utime + stime of one process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_workers(url: str, workers: int, process: subprocess.Popen, log: Path, seconds: float = 60.0) -> bool:
    """Until /readyz answers and every worker has written its `start` record."""
    if not wait_http(f"{url}/readyz", process, seconds):
        return False
    deadline = time.monotonic() + seconds
    while len(worker_pids(log)) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(worker_pids(log)) >= workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--rounds", type=int, default=1, help="measure each worker count N times, round robin")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare; the first is the baseline")
    parser.add_argument("--protocol", default=MODERN, choices=[MODERN, LEGACY], help=f"default {MODERN}")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again.")
        return 1
    counts = [int(value) for value in args.workers.split(",")]
    runs: dict[int, list[Run]] = {count: [] for count in counts}
    shares: dict[int, list[dict[str, float]]] = {count: [] for count in counts}

    with tempfile.TemporaryDirectory(prefix="castproxy-workers-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONPATH=f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        upstream_port = free_port()
        upstream = stack.enter_context(started(
            [sys.executable, "-m", "uvicorn", "serve_apps:upstream", "--port", str(upstream_port), *UVICORN_FLAGS],
            env, folder / "upstream.log"))
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        if not wait_http(f"{upstream_url}/items/1", upstream):
            print("the upstream did not start:\n" + (folder / "upstream.log").read_text()[-2000:])
            return 1
        for round_number in range(1, args.rounds + 1):
            for count in counts:
                port = free_port()
                config = write_config(folder, upstream_url, port)
                command = [sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--no-reload",
                           "--workers", str(count)]
                log = folder / f"castproxy-{count}.log"
                with started(command, env, log) as proxy:
                    url = f"http://127.0.0.1:{port}"
                    if not wait_workers(url, count, proxy, log):
                        print(f"castproxy --workers {count} did not start:\n" + log.read_text()[-2000:])
                        return 1
                    target = rpc_target(f"{count} worker(s)", f"{url}/mcp/bench", "getItem", args.protocol)
                    wrk(target, connections=args.connections, duration=1, pin=[])  # warm up
                    pids = worker_pids(log)
                    before = {pid: cpu_seconds(pid) for pid in pids}
                    result = wrk(target, connections=args.connections, duration=args.duration, pin=[])
                    runs[count].append(result)
                    if count > 1:
                        shares[count].append({pid: cpu_seconds(pid) - before[pid] for pid in pids})
                print(f"round {round_number}: --workers {count}: {result.rps:,.0f} req/s "
                      f"(p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, bad={result.bad})", flush=True)

    base = statistics.median(run.rps for run in runs[counts[0]])
    print(f"\n{args.rounds} round(s), {args.duration:g} s each, {args.connections} connections, protocol "
          f"{args.protocol}, {os.cpu_count()} cores shared with the upstream and wrk; medians")
    print(f"{'workers':<10}{'req/s':>10}{'p50':>10}{'p99':>10}{'vs ' + str(counts[0]):>10}  checked / CPU per worker")
    for count in counts:
        rps = statistics.median(run.rps for run in runs[count])
        p50 = statistics.median(run.p50_ms for run in runs[count])
        p99 = statistics.median(run.p99_ms for run in runs[count])
        bad = sum(run.bad for run in runs[count])
        total = sum(run.good + run.bad for run in runs[count])
        split = ""
        if shares[count]:
            last = shares[count][-1]
            everything = sum(last.values()) or 1
            split = ", last round: " + " / ".join(f"{value / everything:.0%}" for value in sorted(last.values()))
        print(f"{count:<10}{rps:>10,.0f}{p50:>8.2f}ms{p99:>8.2f}ms{rps / base:>9.2f}x  bad={bad} of {total}{split}")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
