"""Prometheus metrics with `prometheus_client`: counters, histograms and gauges the rest of castproxy feeds.

One registry per app; the per-call series are counted in plain dicts and collected at scrape time; under
`serve --workers N` the client's multiprocess mode sums the workers.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import bisect
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = [
    "CONTENT_TYPE", "MULTIPROC_ENV", "UNKNOWN_TOOL", "Metrics", "prepare_multiprocess", "shared_metrics",
    "worker_exited",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds; covers a fast local upstream (ms) to the default 30 s timeout.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNKNOWN_TOOL = "(unknown)"


def status_class(status: int | None, failure: str | None = None) -> str:
    """`2xx`..`5xx` for an HTTP answer; the failure kind (timeout, connect, ...) when there was none."""
    if status is not None:
        return f"{status // 100}xx" if 100 <= status < 600 else "other"
    return failure or "none"


def prepare_multiprocess(directory: str | None = None) -> str:
    """Set up PROMETHEUS_MULTIPROC_DIR for worker processes started after this call; returns the folder.

    An existing value of the variable is kept (its folder emptied of old values: a restart must not add
    up the previous run's counters), otherwise a fresh temporary folder is made."""
    folder = directory or os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="castproxy-metrics-")
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.db")):
        os.remove(stale)
    os.environ[MULTIPROC_ENV] = folder
    return folder


def worker_exited(pid: int) -> None:
    """Tell the multiprocess files that a worker is gone (its live gauges stop counting)."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # prometheus_client is unannotated


def remove_multiprocess(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def shared_metrics() -> Iterator[str]:
    """For the supervisor of `serve --workers N`, around starting and watching its workers: the workers it
    starts inside share their metrics through PROMETHEUS_MULTIPROC_DIR (emptied first). A folder made
    here is removed afterwards; one the operator chose (the variable was set) is kept."""
    chosen = bool(os.environ.get(MULTIPROC_ENV))
    folder = prepare_multiprocess()
    try:
        yield folder
    finally:
        if not chosen:
            os.environ.pop(MULTIPROC_ENV, None)
            remove_multiprocess(folder)


_CALLS_HELP = "MCP tool calls by workspace, tool and outcome."
_DURATION_HELP = "Time from tools/call to its result, upstream included."
_UPSTREAM_HELP = ("Requests sent to upstream APIs, by workspace and answer class (2xx..5xx, or "
                  "timeout/connect/dns/tls/reset/protocol when there was no answer).")
_BOUNDS = tuple(repr(bound) for bound in BUCKETS)


class _CallCounts:
    """The per-call series of one process, as plain dicts: a collector for the app's registry."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}  # bucket counts..., +Inf count, sum
        self.upstream: dict[tuple[str, str], int] = {}

    def record_call(self, workspace: str, tool: str, outcome: str, seconds: float) -> None:
        key = (workspace, tool, outcome)
        self.calls[key] = self.calls.get(key, 0) + 1
        histogram = self.durations.get((workspace, tool))
        if histogram is None:
            histogram = self.durations[(workspace, tool)] = [0.0] * (len(BUCKETS) + 2)
        histogram[bisect.bisect_left(BUCKETS, seconds)] += 1  # a value on a bound belongs to that bucket (le)
        histogram[-1] += seconds

    def record_upstream(self, workspace: str, answer: str) -> None:
        key = (workspace, answer)
        self.upstream[key] = self.upstream.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("castproxy_tool_calls", _CALLS_HELP, labels=("workspace", "tool", "outcome"))
        for labels, count in sorted(self.calls.items()):
            calls.add_metric(labels, count)
        durations = HistogramMetricFamily("castproxy_tool_call_duration_seconds", _DURATION_HELP,
                                          labels=("workspace", "tool"))
        for pair, histogram in sorted(self.durations.items()):
            cumulative, buckets = 0.0, []
            for bound, in_bucket in zip((*_BOUNDS, "+Inf"), histogram[:-1], strict=True):
                cumulative += in_bucket
                buckets.append((bound, cumulative))
            durations.add_metric(pair, buckets, histogram[-1])
        upstream = CounterMetricFamily("castproxy_upstream_requests", _UPSTREAM_HELP,
                                       labels=("workspace", "status_class"))
        for answer, total in sorted(self.upstream.items()):
            upstream.add_metric(answer, total)
        yield from (calls, durations, upstream)


class Metrics:
    """castproxy's metrics for one app; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if self.multiprocess and _values.ValueClass is _values.MutexValue:
            # The client picks its value class when first imported; a process that set the variable after
            # that (a forked worker) would otherwise keep its values in memory, invisible to the others.
            _values.ValueClass = _values.get_value_class()  # type: ignore[no-untyped-call]  # unannotated
        # No `_created` series next to every counter: nobody graphs them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client is unannotated
        self.registry = CollectorRegistry()
        # In multiprocess mode the metrics themselves are registered nowhere: the collector reads the files.
        own = None if self.multiprocess else self.registry
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]  # prometheus_client is unannotated
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        # The per-call series: plain dicts behind a collector, or in multiprocess mode the client's metrics.
        self._counts: _CallCounts | None = None
        if self.multiprocess:
            self.tool_calls = Counter("castproxy_tool_calls", _CALLS_HELP, ("workspace", "tool", "outcome"),
                                      registry=None)
            self.tool_call_duration = Histogram("castproxy_tool_call_duration_seconds", _DURATION_HELP,
                                                ("workspace", "tool"), buckets=BUCKETS, registry=None)
            self.upstream_requests = Counter("castproxy_upstream_requests", _UPSTREAM_HELP,
                                             ("workspace", "status_class"), registry=None)
        else:
            self._counts = _CallCounts()
            self.registry.register(self._counts)
        self.sign_ins = Counter(
            "castproxy_sign_ins", "Completed upstream sign-ins by workspace and outcome (ok, failed).",
            ("workspace", "outcome"), registry=own)
        self.token_refreshes = Counter(
            "castproxy_token_refreshes", "Upstream token refreshes by workspace and outcome "
            "(ok, failed, sign_in_required).", ("workspace", "outcome"), registry=own)
        self.config_reloads = Counter(
            "castproxy_config_reloads", "Config reloads by outcome (a failed one keeps the last good config).",
            ("outcome",), registry=own)
        self.active_sign_ins = Gauge(
            "castproxy_active_sign_ins", "Live sign-ins (castproxy grants) per workspace, read from the store.",
            ("workspace",), registry=own, multiprocess_mode="mostrecent")
        self.sign_in_ends = Counter(
            "castproxy_sign_in_ends", "Sign-ins ended, by workspace and event (sign_out by the client, "
            "revocation by castproxy or an admin).", ("workspace", "event"), registry=own)
        self.lock_drift = Gauge(
            "castproxy_lock_drift", "Whether a workspace's tools differ from the lock file (1) or not (0), "
            "and what it serves: compiled, reviewed or none.", ("workspace", "serving"), registry=own,
            multiprocess_mode="max")
        self.rate_limited = Counter(
            "castproxy_rate_limited", "Tool calls refused by a rate limit, by workspace and limit "
            "(per_caller, total, tool_per_caller, tool_total).", ("workspace", "scope"), registry=own)
        self.audit_dropped = Counter(
            "castproxy_audit_records_dropped", "Audit records dropped because the writer fell too far behind.",
            registry=own)
        for outcome in ("ok", "failed"):  # present from the start, so rate() and absent() alerts work at once
            self.config_reloads.labels(outcome)
        self._drift_series: set[tuple[str, str]] = set()
        self._sign_in_series: set[str] = set()
        self._tool_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._upstream_children: dict[tuple[str, str], Counter] = {}

    # --- the hot path ---------------------------------------------------------------------------------

    def record_call(self, workspace: str, tool: str, outcome: str, seconds: float) -> None:
        if self._counts is not None:
            self._counts.record_call(workspace, tool, outcome, seconds)
            return
        key = (workspace, tool, outcome)
        children = self._tool_children.get(key)
        if children is None:  # labels() takes a lock and builds keys: look each child up once
            if len(self._tool_children) > 50_000:
                self._tool_children.clear()
            children = (self.tool_calls.labels(workspace, tool, outcome),
                        self.tool_call_duration.labels(workspace, tool))
            self._tool_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_upstream(self, workspace: str, status: int | None, failure: str | None = None) -> None:
        if self._counts is not None:
            self._counts.record_upstream(workspace, status_class(status, failure))
            return
        key = (workspace, status_class(status, failure))
        child = self._upstream_children.get(key)
        if child is None:
            if len(self._upstream_children) > 10_000:
                self._upstream_children.clear()
            child = self._upstream_children[key] = self.upstream_requests.labels(*key)
        child.inc()

    def record_rate_limited(self, workspace: str, scope: str) -> None:
        """A call refused by a rate limit (castproxy/access; scope: per_caller, total, tool_per_caller, tool_total)."""
        self.rate_limited.labels(workspace, scope).inc()

    # --- state set from elsewhere ---------------------------------------------------------------------

    def set_drift(self, drift: Iterable[tuple[str, str, int]]) -> None:
        """(workspace, serving, 0|1) per workspace; series no longer present are removed (or zeroed)."""
        current = set()
        for workspace, serving, value in drift:
            self.lock_drift.labels(workspace, serving).set(value)
            current.add((workspace, serving))
        for stale in self._drift_series - current:
            self._forget(self.lock_drift, stale)
        self._drift_series = current

    def set_active_sign_ins(self, counts: Mapping[str, int]) -> None:
        for workspace, count in counts.items():
            self.active_sign_ins.labels(workspace).set(count)
        for stale in self._sign_in_series - set(counts):
            self._forget(self.active_sign_ins, (stale,))
        self._sign_in_series = set(counts)

    def _forget(self, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if self.multiprocess:  # the files keep every series written; a zero is what can be said
            gauge.labels(*labels).set(0)
        else:
            gauge.remove(*labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)
