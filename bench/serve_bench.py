"""Throughput and latency of castproxy `tools/call` against a bare forwarder and the upstream itself.

Runs, in one process tree on loopback:
  (a) direct   GET /items/1 on the upstream (a raw ASGI app under uvicorn);
  (b) bare     a minimal Starlette endpoint taking the JSON-RPC body and making the same upstream
               call with aiohttp (bench/serve_apps.py), under the same uvicorn settings;
  (u) the bare endpoint of (b), but validating, building, sending and mapping with castproxy.upstream;
  (c) castproxy `castproxy serve -c <generated cast.yaml> --no-reload`, a stateless `tools/call`
               (no initialize), measured in both protocol modes: the sessionless 2026-07-28 mode
               (`_meta` envelope + Mcp-Method/Mcp-Name headers) and the initialize-era 2025-11-25
               protocol (stateless, `MCP-Protocol-Version` header); --protocol picks one;
  (s) with --only ...s: castproxy again with CASTPROXY_FAST_PATH=off, every request through the SDK.
Every server runs with uvloop, httptools, one worker and no access log, pinned to core 1
(`taskset -c 1`); the load driver, Debian's `wrk` with bench/serve_wrk.lua (which checks each
response), runs on core 0. For each target: a throughput run at N connections and a latency run at
one connection; with --rounds N the targets are measured round robin N times and medians printed
(the machine may be shared). Prints requests/s, p50/p99 and, per protocol mode, the ratios c/b, c/a
and the p50 castproxy adds at one connection. (b) and (u) get the 2025-11-25 body, the smaller one.

Usage: .venv/bin/python bench/serve_bench.py [--duration 5] [--connections 16] [--rounds 1]
                                             [--protocol both] [--only abucs] [--profile]
Needs wrk: apt-get install -y wrk
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "serve_wrk.lua"
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
EXPECT = "widget"  # every good answer carries the upstream's item
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
CASTPROXY = "c castproxy tools/call"
SDK_ONLY = "s castproxy, fast path off"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    good: int
    bad: int
    socket_errors: str


@dataclass
class Target:
    label: str
    url: str
    method: str
    headers: dict[str, str]
    body: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cores() -> tuple[list[str], list[str]]:
    """taskset prefixes for the servers (core 1) and the driver (core 0), when pinning is possible."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", "1"], ["taskset", "-c", "0"]
    print("note: taskset or a second core missing; processes are not pinned")
    return [], []


def wait_http(url: str, process: subprocess.Popen, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers: up
        except OSError:
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(target: Target, *, connections: int, duration: float, pin: list[str]) -> Run:
    env = dict(
        os.environ,
        SERVE_BENCH_METHOD=target.method,
        SERVE_BENCH_BODY=target.body,
        SERVE_BENCH_EXPECT=EXPECT,
        SERVE_BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in target.headers.items()),
    )
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(LUA), target.url]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    found = re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    latency = {percent: _ms(value, unit) for percent, value, unit in found}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    checked = re.search(r"CHECKED good=(\d+) bad=(\d+)", output)
    errors = re.search(r"Socket errors:(.*)", output)
    if not (rps and checked and "50" in latency and "99" in latency):
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return Run(
        rps=float(rps.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        good=int(checked.group(1)),
        bad=int(checked.group(2)),
        socket_errors=errors.group(1).strip() if errors else "",
    )


def measure(target: Target, args: argparse.Namespace, pin: list[str]) -> tuple[Run, Run]:
    wrk(target, connections=args.connections, duration=1, pin=pin)  # warm up: pools, caches, JIT-free paths
    loaded = wrk(target, connections=args.connections, duration=args.duration, pin=pin)
    single = wrk(target, connections=1, duration=args.duration, pin=pin)
    return loaded, single


def rpc_target(label: str, url: str, tool: str, protocol: str) -> Target:
    params: dict = {"name": tool, "arguments": {"id": 1}}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": protocol,
    }
    if protocol >= MODERN:  # sessionless mode: the envelope travels in _meta, mirrored in headers
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": protocol,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": tool}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, separators=(",", ":"))
    return Target(label, url, "POST", headers, body)


def rpc(url: str, method: str, params: dict, protocol: str) -> dict:
    target = rpc_target("probe", url, "", protocol)
    headers = dict(target.headers)
    if protocol >= MODERN:
        params = params | {"_meta": json.loads(target.body)["params"]["_meta"]}
        headers["Mcp-Method"] = method
        headers.pop("Mcp-Name", None)
        if "name" in params:  # name-bearing methods mirror the name in a header
            headers["Mcp-Name"] = params["name"]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def castproxy_available() -> bool:
    try:
        return importlib.util.find_spec("castproxy.serve.command") is not None
    except ModuleNotFoundError:
        return False


def write_config(folder: Path, upstream_url: str, port: int) -> Path:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "bench", "version": "1"},
        "servers": [{"url": upstream_url}],
        "paths": {
            "/items/{id}": {
                "get": {
                    "operationId": "getItem",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "one item",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            }
        },
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    config = folder / "cast.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "store: {backend: sqlite, path: ./state.db}\n"
        "workspaces:\n"
        "  bench:\n"
        "    openapi: ./spec.json\n"
        f"    base_url: {upstream_url}\n"
        "    tools: [getItem]\n"
    )
    return config


def report(results: dict[str, tuple[Run, Run]], args: argparse.Namespace, protocols: list[str]) -> None:
    connections = args.connections
    print()
    print(f"{args.rounds} round(s), {args.duration:g} s per run, protocol {' and '.join(protocols)}; "
          "figures are medians")
    print(
        f"{'target':<34}{'req/s':>10}{f'p50@{connections}':>11}{f'p99@{connections}':>11}"
        f"{'p50@1':>10}{'p99@1':>10}{'req/s@1':>10}  checked"
    )
    for label, (loaded, single) in results.items():
        print(
            f"{label:<34}{loaded.rps:>10.0f}{loaded.p50_ms:>9.2f}ms{loaded.p99_ms:>9.2f}ms"
            f"{single.p50_ms:>8.2f}ms{single.p99_ms:>8.2f}ms{single.rps:>10.0f}  "
            f"bad={loaded.bad + single.bad} of {loaded.good + loaded.bad + single.good + single.bad}"
            + (f" socket errors: {loaded.socket_errors}" if loaded.socket_errors else "")
        )
    a, b, u = (results.get(key) for key in ("a direct upstream", "b bare forwarder", "u bare + castproxy.upstream"))
    print()
    if a and b:
        print(f"b/a throughput: {b[0].rps / a[0].rps:.1%}")
    if u and b:
        print(f"u/b throughput: {u[0].rps / b[0].rps:.1%}   (what castproxy.upstream costs)")
        print(f"added p50 at 1 connection, u - b: {u[1].p50_ms - b[1].p50_ms:.3f} ms")
    for protocol in protocols:
        c = results.get(f"{CASTPROXY} {protocol}")
        if c is None:
            continue
        print(f"\nprotocol {protocol}:")
        if b:
            ratio = c[0].rps / b[0].rps
            print(f"  c/b throughput: {ratio:.1%}   (goal >= 50%: {'met' if ratio >= 0.5 else 'NOT met'})")
        if a:
            print(f"  c/a throughput: {c[0].rps / a[0].rps:.1%}")
            added = c[1].p50_ms - a[1].p50_ms
            print(f"  added p50 at 1 connection, c - a: {added:.3f} ms   "
                  f"(goal < 1 ms: {'met' if added < 1 else 'NOT met'})")
        if b:
            print(f"  added p50 at 1 connection, c - b: {c[1].p50_ms - b[1].p50_ms:.3f} ms")
        if u:
            print(f"  c/u throughput: {c[0].rps / u[0].rps:.1%}   (what the MCP SDK and the serving app cost)")
        s = results.get(f"{SDK_ONLY} {protocol}")
        if s is not None:
            print(f"  c/s throughput: {c[0].rps / s[0].rps:.2f}x, p50 at 1 connection c - s: "
                  f"{c[1].p50_ms - s[1].p50_ms:.3f} ms   (the fast path against the SDK's own handling)")
            if b:
                print(f"  s/b throughput: {s[0].rps / b[0].rps:.1%}" + (
                    f", added p50 s - a: {s[1].p50_ms - a[1].p50_ms:.3f} ms" if a else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="connections for the throughput run")
    parser.add_argument("--rounds", type=int, default=1, help="measure every target N times, round robin; medians")
    parser.add_argument("--protocol", default="both",
                        help=f"castproxy's protocol mode: both (default), {MODERN} (sessionless) or {LEGACY}")
    parser.add_argument("--profile", action="store_true", help="also sample castproxy with py-spy under load")
    parser.add_argument("--only", default="abuc",
                        help="which targets to run, e.g. 'ac' (default abuc); s adds castproxy with the fast path off")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again.")
        return 1
    server_pin, driver_pin = cores()
    protocols = [MODERN, LEGACY] if args.protocol == "both" else [args.protocol]

    with tempfile.TemporaryDirectory(prefix="castproxy-bench-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONPATH=f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

        def uvicorn_app(app: str, name: str, extra_env: dict[str, str], probe: str) -> str | None:
            """Start one comparison server (idle servers cost nothing); its base URL, or None."""
            port = free_port()
            command = [*server_pin, sys.executable, "-m", "uvicorn", f"serve_apps:{app}", "--port", str(port)]
            process = stack.enter_context(started([*command, *UVICORN_FLAGS], env | extra_env, folder / f"{name}.log"))
            url = f"http://127.0.0.1:{port}"
            if wait_http(url + probe, process):
                return url
            print(f"the {name} server did not start:\n" + (folder / f"{name}.log").read_text()[-2000:])
            return None

        upstream_url = uvicorn_app("upstream", "upstream", {}, "/items/1")
        if upstream_url is None:
            return 1
        to_upstream = {"SERVE_BENCH_UPSTREAM": upstream_url}
        targets: list[Target] = []
        if "a" in args.only:
            targets.append(Target("a direct upstream", f"{upstream_url}/items/1", "GET", {}, ""))
        for key, app, label in (
            ("b", "forwarder", "b bare forwarder"),
            ("u", "pipeline", "u bare + castproxy.upstream"),
        ):
            if key in args.only:
                url = uvicorn_app(app, app, to_upstream, "/")
                if url is None:
                    return 1
                targets.append(rpc_target(label, f"{url}/mcp/bench", "getItem", LEGACY))
        proxy = None
        if "c" in args.only:
            proxy = start_castproxy(protocols, folder / "c", upstream_url, env, server_pin, stack, CASTPROXY)
            if proxy is not None:
                targets += proxy[0]
        if "s" in args.only:  # the same castproxy with its tools/call fast path off: every request through the SDK
            sdk_env = env | {"CASTPROXY_FAST_PATH": "off"}
            through_sdk = start_castproxy(protocols, folder / "s", upstream_url, sdk_env, server_pin, stack, SDK_ONLY)
            if through_sdk is not None:
                targets += through_sdk[0]

        runs: dict[str, list[tuple[Run, Run]]] = {target.label: [] for target in targets}
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                print(f"round {round_number}/{args.rounds}: {target.label} ...", flush=True)
                runs[target.label].append(measure(target, args, driver_pin))
        if proxy is not None and args.profile:
            for target in proxy[0]:
                profile(proxy[1], target, args, driver_pin, folder)

    medians = {label: (median([r[0] for r in rs]), median([r[1] for r in rs])) for label, rs in runs.items()}
    report(medians, args, protocols)
    return 0


def median(runs: list[Run]) -> Run:
    """Per figure, the median over the rounds (errors summed)."""
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        good=sum(r.good for r in runs),
        bad=sum(r.bad for r in runs),
        socket_errors="; ".join(r.socket_errors for r in runs if r.socket_errors),
    )


def start_castproxy(
    protocols: list[str],
    folder: Path,
    upstream_url: str,
    env: dict[str, str],
    server_pin: list[str],
    stack: contextlib.ExitStack,
    label: str,
) -> tuple[list[Target], int] | None:
    """`castproxy serve` on a generated config, checked with tools/list and one tools/call per protocol mode."""
    if not castproxy_available():
        print("castproxy serve not available yet")
        return None
    port = free_port()
    folder.mkdir()
    config = write_config(folder, upstream_url, port)
    command = [*server_pin, sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--no-reload"]
    log = folder / "castproxy.log"
    proxy = stack.enter_context(started(command, env, log))
    if not wait_http(f"http://127.0.0.1:{port}/healthz", proxy):
        print("castproxy serve not available yet (it did not start):\n" + log.read_text()[-2000:])
        return None
    url = f"http://127.0.0.1:{port}/mcp/bench"
    targets = []
    for protocol in protocols:
        try:
            listed = rpc(url, "tools/list", {}, protocol)
            names = [tool["name"] for tool in listed["result"]["tools"]]
            tool = next((n for n in names if n.lower().replace("_", "") == "getitem"), names[0])
            probe = rpc(url, "tools/call", {"name": tool, "arguments": {"id": 1}}, protocol)
        except Exception as error:  # report what the proxy said instead of a traceback
            said = error.read().decode(errors="replace")[:500] if isinstance(error, urllib.error.HTTPError) else ""
            print(f"castproxy did not answer tools/list + tools/call in {protocol} ({error} {said}); "
                  f"log:\n{log.read_text()[-2000:]}")
            return None
        if probe.get("result", {}).get("isError") or "error" in probe:
            print(f"castproxy tools/call failed in {protocol}: {json.dumps(probe)[:500]}")
            return None
        targets.append(rpc_target(f"{label} {protocol}", url, tool, protocol))
    return targets, proxy.pid


def profile(pid: int, target: Target, args: argparse.Namespace, driver_pin: list[str], folder: Path) -> None:
    """Sample the proxy with py-spy under load; print where its time goes (inclusive and own samples)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("--profile needs py-spy: .venv/bin/pip install py-spy")
        return
    out = folder / "profile.txt"
    command = [spy, "record", "-p", str(pid), "-d", f"{args.duration:g}", "-r", "200", "-f", "raw", "-o", str(out)]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk(target, connections=args.connections, duration=args.duration, pin=driver_pin)
    sampler.wait(timeout=args.duration + 30)
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r" \((.*/)?", " (", frame) for frame in stack.split(";")]
        total += int(count)
        for function in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:  # per function, not per line
            inclusive[function] = inclusive.get(function, 0) + int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
    print(f"\nprofile of {target.label} under load ({total} samples); top own time:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {count / total:6.1%}  {frame}")
    print("top inclusive time by function:")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:45]:
        print(f"  {count / total:6.1%}  {frame}")


if __name__ == "__main__":
    raise SystemExit(main())
