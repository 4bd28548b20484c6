"""Throughput of castproxy `tools/call` with an access policy and a rate limit on, against the same call off.

One `castproxy serve` (uvloop, one worker, pinned like bench/serve_bench.py) serves three workspaces on
the same upstream and spec, measured round robin with wrk in the same run:
  off      no inbound key, no policy, no limit (the baseline);
  keys     a named inbound key only (the caller is identified, nothing is checked);
  policy   the named key, workspace `access` by group, a tool-level `access` on another tool (so the
           tools/list of this group differs) and `rate_limit` per caller and in total (set high: every
           call is counted in memory, none is refused).
Prints requests/s, p50/p99 at N connections and at one, and the ratios policy/off and keys/off. The
machine may be shared: run with --rounds 3 and read medians (the lead re-measures on a quiet machine).

Usage: .venv/bin/python bench/access_bench.py [--duration 5] [--connections 16] [--rounds 1]
Needs wrk: apt-get install -y wrk
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import serve_bench as sb  # noqa: E402  (the bench's own helpers: wrk, servers, medians)

KEY = "bench-key-0123456789abcdef0123456789"
PROTOCOL = sb.LEGACY


def write_config(folder: Path, upstream_url: str, port: int) -> Path:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "bench", "version": "1"},
        "servers": [{"url": upstream_url}],
        "paths": {"/items/{id}": {
            "get": {"operationId": "getItem", "parameters": [{"name": "id", "in": "path", "required": True,
                                                                "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "one item",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}}},
            "delete": {"operationId": "deleteItem", "parameters": [{"name": "id", "in": "path", "required": True,
                                                                      "schema": {"type": "integer"}}],
                       "responses": {"204": {"description": "gone"}}},
        }},
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    common = f"    openapi: ./spec.json\n    base_url: {upstream_url}\n"
    key = f"    inbound:\n      api_keys:\n        - {{name: bench-bot, key: {KEY}, groups: [eng]}}\n"
    config = folder / "cast.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "store: {backend: sqlite, path: ./state.db}\n"
        "workspaces:\n"
        f"  off:\n{common}    tools: [getItem, deleteItem]\n"
        f"  keys:\n{common}{key}    tools: [getItem, deleteItem]\n"
        f"  policy:\n{common}{key}"
        "    access: {groups: [eng]}\n"
        "    rate_limit: {per_caller: 1000000/second, total: 1000000/second}\n"
        "    tools:\n      - getItem\n      - {operation: deleteItem, access: {groups: [admins]}}\n"
    )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: install it with `apt-get install -y wrk` and run again.")
        return 1
    server_pin, driver_pin = sb.cores()
    with tempfile.TemporaryDirectory(prefix="castproxy-access-bench-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONPATH=f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        port = sb.free_port()
        command = [*server_pin, sys.executable, "-m", "uvicorn", "serve_apps:upstream", "--port", str(port)]
        upstream = stack.enter_context(sb.started([*command, *sb.UVICORN_FLAGS], env, folder / "upstream.log"))
        upstream_url = f"http://127.0.0.1:{port}"
        if not sb.wait_http(upstream_url + "/items/1", upstream):
            print("the upstream did not start")
            return 1
        proxy_port = sb.free_port()
        config = write_config(folder, upstream_url, proxy_port)
        command = [*server_pin, sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--no-reload"]
        proxy = stack.enter_context(sb.started(command, env, folder / "castproxy.log"))
        if not sb.wait_http(f"http://127.0.0.1:{proxy_port}/healthz", proxy, 60):
            print(f"castproxy did not start (exit {proxy.poll()}):\n" + (folder / "castproxy.log").read_text()[-2000:])
            return 1
        targets = []
        for name in ("off", "keys", "policy"):
            target = sb.rpc_target(name, f"http://127.0.0.1:{proxy_port}/mcp/{name}", "getItem", PROTOCOL)
            if name != "off":
                target.headers["Authorization"] = f"Bearer {KEY}"
            targets.append(target)
        runs: dict[str, list[tuple[sb.Run, sb.Run]]] = {target.label: [] for target in targets}
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                print(f"round {round_number}/{args.rounds}: {target.label} ...", flush=True)
                runs[target.label].append(sb.measure(target, args, driver_pin))
    medians = {label: (sb.median([r[0] for r in rs]), sb.median([r[1] for r in rs])) for label, rs in runs.items()}
    c = args.connections
    print(f"\n{args.rounds} round(s), {args.duration:g} s per run, protocol {PROTOCOL}; medians")
    print(f"{'workspace':<10}{'req/s':>10}{f'p50@{c}':>11}{f'p99@{c}':>11}{'p50@1':>10}{'req/s@1':>10}  checked")
    for label, (loaded, single) in medians.items():
        print(f"{label:<10}{loaded.rps:>10.0f}{loaded.p50_ms:>9.2f}ms{loaded.p99_ms:>9.2f}ms{single.p50_ms:>8.2f}ms"
              f"{single.rps:>10.0f}  bad={loaded.bad + single.bad}")
    off, keys, policy = medians["off"], medians["keys"], medians["policy"]
    print(f"\npolicy/off throughput: {policy[0].rps / off[0].rps:.1%}   keys/off: {keys[0].rps / off[0].rps:.1%}")
    print(f"added p50 at 1 connection, policy - off: {policy[1].p50_ms - off[1].p50_ms:.3f} ms; "
          f"policy - keys: {policy[1].p50_ms - keys[1].p50_ms:.3f} ms")
    micro()
    return 0


def micro(count: int = 20000) -> None:
    """The checks alone, in this process (steadier than wrk on a shared machine): what one request adds."""
    import asyncio
    import time
    from types import MappingProxyType

    from castproxy.access.limits import LimitPair, RateLimits, WorkspaceLimits
    from castproxy.access.policy import Caller, Rule, WorkspaceAccess
    from castproxy.config.model import RateLimit

    access = WorkspaceAccess(connect=Rule(groups=frozenset({"eng"})),
                             tools={"deleteItem": Rule(groups=frozenset({"admins"}))})
    listing = MappingProxyType({"tools": [{"name": "getItem"}, {"name": "deleteItem"}]})
    caller = Caller(key_name="bench-bot", groups=frozenset({"eng"}))
    started = time.perf_counter()
    for _ in range(count):
        access.may_connect(caller)
        access.refusal(caller, "getItem")
        access.listing_for(caller, listing)
    policy = (time.perf_counter() - started) / count
    limits = WorkspaceLimits(LimitPair.of(RateLimit(per_caller="1000000/second", total="1000000/second")))
    counters = RateLimits.in_memory()

    async def count_calls() -> float:
        started = time.perf_counter()
        for _ in range(count):
            await counters.check("bench", "getItem", caller, limits)
        return (time.perf_counter() - started) / count

    limit = asyncio.run(count_calls())
    print(f"in process: policy checks {policy * 1e6:.1f} us per request; rate limit check (per caller + total, "
          f"memory) {limit * 1e6:.1f} us per call")


if __name__ == "__main__":
    raise SystemExit(main())
