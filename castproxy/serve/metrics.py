"""Prometheus metrics in the text exposition format, kept in plain dicts (no client library needed).

Labels are workspace, tool and outcome names only: never argument values, keys or tokens. Under
`serve --workers N` each worker keeps and serves its own counters, labelled with its `pid`; a scrape
reaches whichever worker accepts the connection (see docs/operations.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

# Seconds; covers a fast local upstream (ms) to the default 30 s timeout.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1
                break


class Metrics:
    def __init__(self, *, gauges: Callable[[], list[str]] | None = None, pid: int | None = None) -> None:
        self.gauges = gauges  # more lines, read from the serving state at each scrape (lock drift)
        self.pid = None if pid is None else str(pid)  # set when several worker processes serve one port
        self.calls: dict[tuple[str, str, str], int] = defaultdict(int)
        self.durations: dict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.reloads: dict[str, int] = {"ok": 0, "failed": 0}
        self.rate_limited: dict[tuple[str, str], int] = defaultdict(int)

    def record_call(self, workspace: str, tool: str, outcome: str, seconds: float) -> None:
        self.calls[(workspace, tool, outcome)] += 1
        self.durations[(workspace, tool)].observe(seconds)

    def record_rate_limited(self, workspace: str, scope: str) -> None:
        """A call refused by a rate limit (scope: per_caller, total, tool_per_caller, tool_total)."""
        self.rate_limited[(workspace, scope)] += 1

    def record_reload(self, ok: bool) -> None:
        self.reloads["ok" if ok else "failed"] += 1

    def _labels(self, **labels: str) -> str:
        return _labels(**labels, pid=self.pid) if self.pid is not None else _labels(**labels)

    def render(self) -> str:
        lines = [
            "# HELP castproxy_tool_calls_total MCP tool calls by workspace, tool and outcome.",
            "# TYPE castproxy_tool_calls_total counter",
        ]
        for (workspace, tool, outcome), count in sorted(self.calls.items()):
            labels = self._labels(workspace=workspace, tool=tool, outcome=outcome)
            lines.append(f"castproxy_tool_calls_total{labels} {count}")
        lines += [
            "# HELP castproxy_tool_call_duration_seconds Time from tools/call to its result, upstream included.",
            "# TYPE castproxy_tool_call_duration_seconds histogram",
        ]
        for (workspace, tool), histogram in sorted(self.durations.items()):
            cumulative = 0
            for bound, count in zip(BUCKETS, histogram.counts, strict=True):
                cumulative += count
                labels = self._labels(workspace=workspace, tool=tool, le=repr(bound))
                lines.append(f"castproxy_tool_call_duration_seconds_bucket{labels} {cumulative}")
            labels = self._labels(workspace=workspace, tool=tool, le="+Inf")
            lines.append(f"castproxy_tool_call_duration_seconds_bucket{labels} {histogram.count}")
            labels = self._labels(workspace=workspace, tool=tool)
            lines.append(f"castproxy_tool_call_duration_seconds_sum{labels} {histogram.total:.6f}")
            lines.append(f"castproxy_tool_call_duration_seconds_count{labels} {histogram.count}")
        lines += [
            "# HELP castproxy_config_reloads_total Config reloads by result (a failed one keeps the last good config).",
            "# TYPE castproxy_config_reloads_total counter",
        ]
        for result, count in self.reloads.items():
            lines.append(f"castproxy_config_reloads_total{self._labels(result=result)} {count}")
        lines += [
            "# HELP castproxy_rate_limited_total Tool calls refused by a rate limit, by workspace and limit.",
            "# TYPE castproxy_rate_limited_total counter",
        ]
        for (workspace, scope), count in sorted(self.rate_limited.items()):
            lines.append(f"castproxy_rate_limited_total{self._labels(workspace=workspace, scope=scope)} {count}")
        if self.gauges is not None:
            lines += self.gauges()
        return "\n".join(lines) + "\n"


def metrics_endpoint(metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return endpoint
