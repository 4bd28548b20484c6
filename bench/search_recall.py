"""Recall of the operation search on GitHub's REST spec, for tasks phrased as an agent would phrase them.

The phrasings and the operations that accomplish each are data: bench/data/github_phrasings.json
(95 tasks: "dev" and "holdout" may be used for tuning, "holdout2" is never looked at while tuning;
its "about" says when each set was written and looked at). A task counts as found at k when any of
its operations is among the first k results. Baseline in the same run: plain FTS5 bm25 over the same
fields with equal weights and the raw query words (no aliases, verbs, re-ranking).

    .venv/bin/python bench/search_recall.py [--spec PATH] [--set dev|holdout|holdout2|tune|all] [--misses]

Goal (issue 10): recall@5 >= 90%. Also prints index build time and search latency (p50/p99).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from castproxy.catalog.index import SearchIndex  # noqa: E402
from castproxy.openapi.compiler import compile_spec  # noqa: E402
from castproxy.openapi.loader import load_document  # noqa: E402
from castproxy.openapi.model import ToolDefinition  # noqa: E402

GITHUB = ROOT / ".cache/testdata/node_modules/@octokit/openapi/generated/api.github.com.json"
PHRASINGS = ROOT / "bench/data/github_phrasings.json"


class PlainBm25:
    """The baseline: FTS5 bm25, equal column weights, the query's words OR-ed as typed."""

    def __init__(self, tools: tuple[ToolDefinition, ...]) -> None:
        self.tools = tools
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE ops USING fts5(name, summary, tags, path, description, "
                        "tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO ops VALUES (?, ?, ?, ?, ?)",
                            [_plain_document(tool) for tool in tools])

    def search(self, text: str, limit: int) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        if not words:
            return []
        rows = self.db.execute("SELECT rowid FROM ops WHERE ops MATCH ? ORDER BY bm25(ops) LIMIT ?",
                               (" OR ".join(f'"{w}"' for w in words), limit)).fetchall()
        return [self.tools[rowid - 1].name for (rowid,) in rows]


def _plain_document(tool: ToolDefinition) -> tuple[str, ...]:
    return (" ".join(re.findall(r"[a-z0-9]+", (tool.operation_id or tool.name).lower())), tool.title or "",
            " ".join(tool.tags), tool.operation.path, tool.description)


def recall(found: list[list[str]], expected: list[set[str]], k: int) -> float:
    hits = sum(1 for names, wanted in zip(found, expected, strict=True) if wanted & set(names[:k]))
    return hits / len(expected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(GITHUB))
    parser.add_argument("--set", choices=("dev", "holdout", "holdout2", "tune", "all"), default="all",
                        help="tune: dev + holdout, the sets tuning may look at")
    parser.add_argument("--misses", action="store_true", help="print the tasks not found at 5, with the top 5")
    args = parser.parse_args()
    if not Path(args.spec).is_file():
        print(f"no spec at {args.spec}: run scripts/fetch-test-data", file=sys.stderr)
        return 1
    data: dict[str, Any] = json.loads(PHRASINGS.read_text())
    compiled = compile_spec(load_document(args.spec, Path.cwd()))
    tools = compiled.tools
    by_operation = {tool.operation_id: tool.name for tool in tools}

    started = time.perf_counter()
    index = SearchIndex(tools)
    build_seconds = time.perf_counter() - started
    baseline = PlainBm25(tools)

    sets = {"all": ("dev", "holdout", "holdout2"), "tune": ("dev", "holdout")}.get(args.set, (args.set,))
    print(f"{len(tools)} operations; index built in {build_seconds * 1000:.0f} ms")
    print(f"{'set':8} {'tasks':>5}  {'recall@1':>9} {'recall@5':>9}   {'baseline @1':>11} {'baseline @5':>11}")
    latencies: list[float] = []
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        (name, [p for p in data["phrasings"] if p.get("set", "dev") == name]) for name in sets]
    if args.set == "all":
        rows.append(("all", data["phrasings"]))
    for name, phrasings in rows:
        expected = [{by_operation[op] for op in p["expect"]} for p in phrasings]
        found = []
        for phrasing in phrasings:
            start = time.perf_counter()
            hits = index.search(phrasing["query"], limit=5)
            latencies.append(time.perf_counter() - start)
            found.append([hit.name for hit in hits])
        plain = [baseline.search(p["query"], 5) for p in phrasings]
        print(f"{name:8} {len(phrasings):>5}  {recall(found, expected, 1):>9.0%} {recall(found, expected, 5):>9.0%}"
              f"   {recall(plain, expected, 1):>11.0%} {recall(plain, expected, 5):>11.0%}")
        if args.misses and name != "all":
            for phrasing, names, wanted in zip(phrasings, found, expected, strict=True):
                if not wanted & set(names[:5]):
                    print(f"  miss: {phrasing['query']!r} wants {sorted(wanted)}; got {names}")
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"search latency over {len(latencies)} searches: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
