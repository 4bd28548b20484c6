"""What the lock costs on GitHub's REST spec (1,223 tools), against compiling the same spec in the same run.

Measured: digests of every tool (what `castproxy lock` and every serve reload under a lock do), the
lock's text, reading it back, and a `diff` in which every tool changed (each input schema walked).
Baseline: `compile_spec` of the same document. Best of N runs each.

    .venv/bin/python bench/lock_bench.py [--spec PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GITHUB = ROOT / ".cache/testdata/node_modules/@octokit/openapi/generated/api.github.com.json"


def best(repeat: int, action: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    from castproxy.gitops.changes import compare
    from castproxy.gitops.lockfile import Inventory, WorkspaceRecord, parse_lock, render_lock, tool_record
    from castproxy.openapi.compiler import compile_spec
    from castproxy.openapi.loader import SpecDocument

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=GITHUB)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.spec.is_file():
        print(f"{args.spec} not found: run scripts/fetch-test-data first", file=sys.stderr)
        return 1
    raw = json.loads(args.spec.read_bytes())

    def compiled() -> Any:
        document = SpecDocument(raw)  # the compiler never modifies its input
        document.digest = f"bench-{time.perf_counter_ns()}"  # a fresh digest: no compile cache hit
        return compile_spec(document)

    compile_s, spec = best(args.repeat, compiled)
    tools = spec.tools
    digest_s, records = best(args.repeat, lambda: tuple(sorted((tool_record(t) for t in tools),
                                                                key=lambda r: r.name)))
    inventory = Inventory((WorkspaceRecord("github", "api.github.com.json", "sha256:" + "0" * 64, None, records),))
    render_s, text = best(args.repeat, lambda: render_lock(inventory, "cast.yaml"))
    parse_s, _ = best(args.repeat, lambda: parse_lock(text, Path("cast.lock")))
    changed = []
    for record in records:
        definition = copy.deepcopy(dict(record.definition or {}))
        definition["description"] = definition["description"] + " (edited)"
        properties = definition["inputSchema"].setdefault("properties", {})
        properties["added_by_bench"] = {"type": "string"}
        changed.append(type(record)(record.name, record.operation, record.method, record.path, "sha256:" + "1" * 64,
                                    definition))
    edited = Inventory((WorkspaceRecord("github", "api.github.com.json", "sha256:" + "0" * 64, None,
                                        tuple(changed)),))
    diff_s, comparison = best(args.repeat, lambda: compare(inventory, edited, "old", "new"))

    print(f"spec: {args.spec.name}, {len(tools)} tools; lock file {len(text.encode()) / 1024:.0f} KiB, "
          f"{text.count(chr(10))} lines; best of {args.repeat}")
    print(f"{'measurement':<44} {'time':>9} {'vs compile':>11}")
    rows = [
        ("compile_spec (baseline)", compile_s),
        ("digests of every tool (lock, each reload)", digest_s),
        ("render cast.lock", render_s),
        ("read cast.lock back (libyaml)", parse_s),
        (f"diff, every tool changed ({len(comparison.changes)} changes)", diff_s),
    ]
    for name, seconds in rows:
        print(f"{name:<44} {seconds * 1000:>7.1f}ms {seconds / compile_s:>10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
