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
Prints req/s and p50/p99 per target, and each target's throughput against (n).

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
    cores,
    free_port,
    measure,
    median,
    rpc,
    rpc_target,
    started,
    wait_http,
    write_config,
)

TARGETS = {
    "n": ("n nothing observed", None),
    "m": ("m metrics, audit off", "  audit: {sink: off}\n"),
    "s": ("s metrics + audit to stdout", "  audit: {sink: stdout}\n"),
    "f": ("f metrics + audit to a file", "  audit: {sink: file, path: ./audit.jsonl, max_bytes: 100MiB, backups: 5}\n"),
}


def start_target(key: str, folder: Path, upstream_url: str, env: dict[str, str], pin: list[str],
                 stack: contextlib.ExitStack, protocol: str) -> tuple[str, str] | None:
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
    return label, url


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
        for key in args.only:
            found = start_target(key, folder / key, upstream_url, env, server_pin, stack, args.protocol)
            if found is None:
                return 1
            targets.append(rpc_target(found[0], found[1], "getItem", args.protocol))
        runs: dict[str, list[tuple[Run, Run]]] = {target.label: [] for target in targets}
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                print(f"round {round_number}/{args.rounds}: {target.label} ...", flush=True)
                runs[target.label].append(measure(target, args, driver_pin))
        audit_lines = {key: _lines(folder / key) for key in args.only}
    medians = {label: (median([r[0] for r in rs]), median([r[1] for r in rs])) for label, rs in runs.items()}
    print(f"\n{args.rounds} round(s), {args.duration:g} s per run, {args.connections} connections, protocol "
          f"{args.protocol}, fast path; medians (the machine may be shared: compare ratios, not absolutes)")
    print(f"{'target':<34}{'req/s':>10}{'p50':>10}{'p99':>10}{'p50@1':>10}  audit lines  vs n")
    base = next((pair[0].rps for label, pair in medians.items() if label.startswith("n ")), None)
    for label, (loaded, single) in medians.items():
        ratio = f"{loaded.rps / base:6.1%}" if base else ""
        lines = audit_lines.get(label[0], 0)
        print(f"{label:<34}{loaded.rps:>10.0f}{loaded.p50_ms:>8.2f}ms{loaded.p99_ms:>8.2f}ms"
              f"{single.p50_ms:>8.2f}ms  {lines:>11}  {ratio}")
    spread = {label: statistics.pstdev(r[0].rps for r in rs) for label, rs in runs.items()}
    print("round-to-round spread (stdev req/s): " + ", ".join(f"{k[0]} {v:.0f}" for k, v in spread.items()))
    return 0


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
