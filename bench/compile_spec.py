"""Compile time and peak memory of the OpenAPI compiler on GitHub's REST spec, against `json.loads`.

Each measurement runs in a fresh subprocess, so peak memory (ru_maxrss) and caches belong to that
measurement alone. Baseline: plain `json.loads` of the same file, in the same run.

    .venv/bin/python bench/compile_spec.py [--spec PATH] [--repeat N]

Goals (issue 3): GitHub compile < 1.5 s and < 3x the JSON parse; a ~22,000-operation spec (GitHub's
paths repeated under 18 prefixes) < 30 s and < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".cache/testdata/node_modules/@octokit/openapi/generated/api.github.com.json"
PREFIXES = 18


def _child(kind: str, spec: str) -> dict[str, float]:
    """One measurement, run inside a fresh interpreter; prints its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    raw = Path(spec).read_bytes()
    if kind == "parse":
        start = time.perf_counter()
        json.loads(raw)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rss_mib": _rss_mib()}

    from castproxy.openapi.compiler import compile_spec
    from castproxy.openapi.loader import SpecDocument

    document = SpecDocument(json.loads(raw))
    if kind == "scaled":  # the path items shared between prefixes, as a bundler's output may share them
        paths = document["paths"]
        document["paths"] = {f"/v{n}{path}": item for n in range(PREFIXES) for path, item in paths.items()}
    elif kind == "scaled-parsed":  # every operation its own objects, parsed from one big JSON text
        paths = json.dumps(document.pop("paths"))
        text = json.dumps(document)[:-1] + ', "paths": {' + ", ".join(
            paths[1:-1].replace('"/', f'"/v{n}/') for n in range(PREFIXES)) + "}}"
        del paths
        document = SpecDocument(json.loads(text))
        del text
    document.digest = f"{kind}-bench"  # what the loader sets from the bytes; compile_spec caches by it
    before = _rss_mib()
    start = time.perf_counter()
    compiled = compile_spec(document, output_schema=kind == "output")
    seconds = time.perf_counter() - start
    rss = _rss_mib()
    # Again under tracemalloc (slower, so not timed): what the compiler itself allocates at its peak.
    import tracemalloc

    from castproxy.openapi import compiler

    compiler._cache.clear()
    del compiled
    tracemalloc.start()
    compiled = compile_spec(document, output_schema=kind == "output")
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": seconds, "rss_mib": rss, "rss_before_mib": before, "traced_mib": traced,
            "tools": len(compiled.tools), "warnings": len(compiled.warnings)}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(kind: str, spec: Path, repeat: int) -> dict[str, float]:
    """Best of `repeat` runs (each in its own process)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--spec", str(spec)],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out)
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(GITHUB), help="OpenAPI JSON file (default: GitHub's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept (default 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.spec)))
        return 0
    spec = Path(args.spec)
    if not spec.is_file():
        print(f"spec not found: {spec} (run scripts/fetch-test-data)", file=sys.stderr)
        return 1

    print(f"spec: {spec.name} ({spec.stat().st_size / 2**20:.1f} MiB), best of {args.repeat} runs each")
    parse = _measure("parse", spec, args.repeat)
    plain = _measure("compile", spec, args.repeat)
    output = _measure("output", spec, args.repeat)
    scaled = _measure("scaled", spec, max(1, args.repeat // 2))
    parsed = _measure("scaled-parsed", spec, 1)
    ratio = plain["seconds"] / parse["seconds"]
    print(f"json.loads (baseline):              {parse['seconds'] * 1000:8.0f} ms   "
          f"peak RSS {parse['rss_mib']:6.0f} MiB")
    print(f"compile ({plain['tools']:.0f} tools):                {plain['seconds'] * 1000:8.0f} ms   "
          f"peak RSS {plain['rss_mib']:6.0f} MiB (compiler peak {plain['traced_mib']:.0f} MiB)"
          f"   {ratio:.2f}x json.loads")
    print(f"compile with output schemas:        {output['seconds'] * 1000:8.0f} ms   "
          f"peak RSS {output['rss_mib']:6.0f} MiB (compiler peak {output['traced_mib']:.0f} MiB)"
          f"   {output['seconds'] / parse['seconds']:.2f}x json.loads")
    print(f"scaled x{PREFIXES} ({scaled['tools']:.0f} tools):       {scaled['seconds'] * 1000:8.0f} ms   "
          f"peak RSS {scaled['rss_mib']:6.0f} MiB (compiler peak {scaled['traced_mib']:.0f} MiB)")
    print(f"scaled x{PREFIXES}, parsed ({parsed['tools']:.0f} tools): {parsed['seconds'] * 1000:8.0f} ms   "
          f"peak RSS {parsed['rss_mib']:6.0f} MiB (compiler peak {parsed['traced_mib']:.0f} MiB)")
    goals = [
        ("GitHub compile < 1.5 s", plain["seconds"] < 1.5),
        ("GitHub compile < 3x json.loads", ratio < 3),
        ("22k-operation compile < 30 s", max(scaled["seconds"], parsed["seconds"]) < 30),
        ("22k-operation peak memory < 1 GiB", max(scaled["rss_mib"], parsed["rss_mib"]) < 1024),
    ]
    for goal, met in goals:
        print(f"{'met    ' if met else 'MISSED '} {goal}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
