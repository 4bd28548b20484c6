"""The one place the rest of castproxy reports to: each event becomes an audit record, metrics and call stats.

`ToolCaller` reports every tool call (direct, or through a meta-tool: both end in its one `_record`),
the reloader every reload, the OAuth side (through `castproxy.auth.events.AuthEvents`) sign-ins,
consent, sign-outs, revocations and refreshes. What goes into a record is chosen here, field by field:
names, short ids, statuses, sizes and timings, never an argument value, a token or a secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castproxy.observe.audit import AuditTrail, Record, open_output
from castproxy.observe.context import CURRENT, RequestInfo
from castproxy.observe.metrics import Metrics
from castproxy.observe.stats import CallStats
from castproxy.observe.tracing import Tracing
from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse

if TYPE_CHECKING:
    from castproxy.access.policy import Caller
    from castproxy.auth.server.records import GrantRecord
    from castproxy.config.model import AuditSettings
    from castproxy.serve.snapshot import Snapshot
    from castproxy.store.base import Store

__all__ = ["Observer"]

log = logging.getLogger(__name__)

NS_GRANT_USED = "observe-grant-used"  # grant id -> when a call last used it (written at most once a minute)
GRANT_USED_EVERY = 60.0
SIGN_IN_COUNT_EVERY = 15.0  # seconds between store reads for castproxy_active_sign_ins
MAX_DETAIL = 300
Send = Callable[..., Awaitable[UpstreamResponse | UpstreamFailure]]


def _caller(info: RequestInfo | None, who: Caller | None) -> dict[str, str]:
    """Who called, as the record says it: ids and names only (a key by its name or a hash, never itself)."""
    caller: dict[str, str] = {}
    client_id = (who.client_id if who is not None else None) or (info.client_id if info is not None else None)
    if client_id:
        caller["client_id"] = client_id
    subject = (who.subject if who is not None else None) or (info.subject if info is not None else None)
    if subject:
        caller["subject"] = subject
    if info is not None and info.grant is not None:
        caller["grant"] = info.grant
    key = (who.key_name if who is not None else None) or (info.key_id if info is not None else None)
    if key:
        caller["key"] = key
    if info is not None and info.address is not None:
        caller["address"] = info.address
    return caller


class ObservedForwarder:
    """The upstream forwarder as ToolCaller sees it: each send counted, its status and size noted for the
    audit record, and (tracing on) wrapped in a client span that sends traceparent upstream."""

    def __init__(self, inner: Any, observer: Observer) -> None:
        self.inner = inner
        self._metrics = observer.metrics
        self._tracing = observer.tracing

    async def send(
        self, request: UpstreamRequest, *, timeout: float, max_bytes: int
    ) -> UpstreamResponse | UpstreamFailure:
        if self._tracing is not None:
            outcome = await self._tracing.send(self.inner.send, request, timeout, max_bytes)
        else:
            outcome = await self.inner.send(request, timeout=timeout, max_bytes=max_bytes)
        info = CURRENT.get()
        if info is not None:
            info.upstream_sends += 1
            if isinstance(outcome, UpstreamResponse):
                info.upstream_status = outcome.status
                info.upstream_bytes += len(outcome.body)
                self._metrics.record_upstream(info.workspace, outcome.status)
            else:
                info.upstream_status = None
                self._metrics.record_upstream(info.workspace, None, outcome.kind)
        return outcome


class Observer:
    def __init__(
        self,
        audit: AuditTrail,
        metrics: Metrics | None = None,
        *,
        tracing: Tracing | None = None,
        owns_tracing: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audit = audit
        self.metrics = metrics or Metrics()
        self.tracing = tracing
        self._owns_tracing = owns_tracing
        self.stats = CallStats(clock)
        self._clock = clock
        self._argument_names: frozenset[str] = frozenset()  # workspaces that record argument names
        self._sign_in_workspaces: tuple[str, ...] = ()
        self._grants: Callable[[], Awaitable[list[GrantRecord]]] | None = None
        self._store: Store | None = None
        self._counted_at = -SIGN_IN_COUNT_EVERY
        self._grant_written: dict[str, float] = {}
        self._dropped_counted = 0
        self._drift_seen: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # lock drift already recorded
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(
        cls, settings: AuditSettings, base_dir: Path, *, tracer_provider: Any = None
    ) -> Observer:
        from castproxy.observe import tracing

        traces = tracing.from_environment(provider=tracer_provider)
        owned = traces is not None and tracer_provider is None
        return cls(AuditTrail(open_output(settings, base_dir)), tracing=traces, owns_tracing=owned)

    def attach_store(self, store: Store, grants: Callable[[], Awaitable[list[GrantRecord]]] | None) -> None:
        """Where sign-ins are listed (active sign-ins, the admin page) and last use is kept."""
        self._store = store
        self._grants = grants

    def forwarder(self, inner: Any) -> ObservedForwarder:
        return ObservedForwarder(inner, self)

    def _emit(self, event: str, **fields: Any) -> None:
        record: Record = {"ts": self._clock(), "event": event}
        record.update((key, value) for key, value in fields.items() if value is not None)
        self.audit.emit(record)

    # --- tool calls (the hot path) ------------------------------------------------------------------------

    def tool_call(self, workspace: str, tool: str, label: str, outcome: str, status: int | None,
                  seconds: float, who: Caller | None = None) -> None:
        """One tool call ended. `label` is the metrics label (the tool name, or `(unknown)`); `tool` the name
        asked for (cut to 64 characters); `who` the caller as castproxy.access knows it (person, key name)."""
        self.metrics.record_call(workspace, label, outcome, seconds)
        self.stats.record(workspace, label, outcome == "ok", seconds)
        record: Record = {"ts": self._clock(), "event": "tool_call", "workspace": workspace, "tool": tool,
                          "outcome": outcome, "upstream_status": status, "duration_ms": round(seconds * 1000, 2)}
        info = CURRENT.get()
        if info is not None:
            record["bytes"] = info.upstream_bytes
            if workspace in self._argument_names and info.arguments is not None:
                record["arguments"] = sorted(str(name)[:64] for name in info.arguments)
            info.outcome = outcome
        if info is not None or who is not None:
            caller = _caller(info, who)
            if caller:
                record["caller"] = caller
        self.audit.emit(record)
        if self.tracing is not None:
            self.tracing.note_outcome(outcome)

    def note_arguments(self, arguments: Mapping[str, Any]) -> None:
        """The call's arguments, for their names only (kept when the workspace opted in to argument_names)."""
        info = CURRENT.get()
        if info is not None:
            info.arguments = arguments

    # --- config ---------------------------------------------------------------------------------------------

    def snapshot_installed(self, snapshot: Snapshot) -> None:
        """A snapshot is served (at start and after each reload): per-workspace options, drift gauge and events."""
        workspaces = snapshot.loaded.config.workspaces
        self._argument_names = frozenset(
            name for name, workspace in workspaces.items() if workspace.audit and workspace.audit.argument_names
        )
        self._sign_in_workspaces = tuple(sorted(name for name, ws in snapshot.workspaces.items() if ws.sign_in))
        drift = snapshot.drift
        if drift is None:
            self.metrics.set_drift(())
            self._drift_seen = {}
            return
        self.metrics.set_drift((name, item.serving, 0 if item.state == "in-sync" else 1)
                               for name, item in sorted(drift.workspaces.items()))
        seen, self._drift_seen = self._drift_seen, {}
        for name, item in sorted(drift.workspaces.items()):
            self._drift_seen[name] = (item.state, item.serving, item.changes)
            if item.state != "in-sync" and seen.get(name) != self._drift_seen[name]:  # new drift, once
                self._emit("lock_drift", workspace=name, outcome=item.state, serving=item.serving,
                           mode=drift.mode, changes=len(item.changes))

    def serving(self, workspaces: int) -> None:
        """The process serves (after start-up, signal handlers in place): a `start` record, so restarts show."""
        self._emit("start", outcome="ok", workspaces=workspaces, pid=os.getpid())

    def record_reload(self, ok: bool, *, workspaces: int | None = None, problems: tuple[str, ...] = ()) -> None:
        """A config reload was swapped in (ok) or rejected (the last good config keeps serving)."""
        self.metrics.config_reloads.labels("ok" if ok else "failed").inc()
        if ok:
            self._emit("reload", outcome="ok", workspaces=workspaces)
        else:
            self._emit("reload", outcome="failed", problems=len(problems),
                       detail=problems[0][:MAX_DETAIL] if problems else None)

    # --- the OAuth side (castproxy.auth.events.AuthEvents) --------------------------------------------------

    def sign_in(self, workspace: str, *, outcome: str, client_id: str | None, grant: str | None = None,
                subject: str | None = None, reason: str | None = None) -> None:
        self.metrics.sign_ins.labels(workspace, outcome).inc()
        caller = {key: value for key, value in (("client_id", client_id), ("subject", subject), ("grant", grant))
                  if value}
        self._emit("sign_in", workspace=workspace, outcome=outcome, caller=caller or None, reason=reason)
        self._counted_at = -SIGN_IN_COUNT_EVERY  # the gauge is read again at the next scrape

    def consent(self, workspace: str, *, client_id: str, decision: str) -> None:
        self._emit("consent", workspace=workspace, outcome=decision, caller={"client_id": client_id})

    def sign_in_ended(self, workspace: str, *, event: str, client_id: str, grant: str, reason: str,
                      subject: str | None = None) -> None:
        self.metrics.sign_in_ends.labels(workspace, event).inc()
        caller = {"client_id": client_id, "grant": grant, **({"subject": subject} if subject else {})}
        self._emit(event, workspace=workspace, outcome="ended", caller=caller, reason=reason)
        self._counted_at = -SIGN_IN_COUNT_EVERY

    def token_revoked(self, workspace: str, *, client_id: str, grant: str) -> None:
        self._emit("revocation", workspace=workspace, outcome="access_token_revoked",
                   caller={"client_id": client_id, "grant": grant}, reason="access token revoked by the client")

    def token_refresh(self, workspace: str, *, outcome: str, grant: str | None = None,
                      reason: str | None = None) -> None:
        self.metrics.token_refreshes.labels(workspace, outcome).inc()
        if outcome != "ok":  # successful refreshes are counted, not audited (one per token lifetime per user)
            self._emit("token_refresh_failed", workspace=workspace, outcome=outcome,
                       caller={"grant": grant} if grant else None, reason=reason)

    # --- sign-ins in the store ------------------------------------------------------------------------------

    def grant_used(self, grant_id: str) -> None:
        """A call ran under this grant: remember when (in the store, at most once a minute per grant)."""
        if self._store is None:
            return
        now = self._clock()
        if now - self._grant_written.get(grant_id, -GRANT_USED_EVERY) < GRANT_USED_EVERY:
            return
        if len(self._grant_written) > 50_000:
            self._grant_written.clear()
        self._grant_written[grant_id] = now
        task = asyncio.get_running_loop().create_task(self._write_grant_used(grant_id, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_grant_used(self, grant_id: str, now: float) -> None:
        assert self._store is not None
        try:
            await self._store.put(NS_GRANT_USED, grant_id, repr(now).encode(), ttl=90 * 86400.0)
        except Exception as exc:  # last-used is a convenience: never fail or log per call for it
            log.debug("could not note a grant's last use", extra={"fields": {"error_type": type(exc).__name__}})

    async def last_used(self) -> dict[str, float]:
        """When each grant was last used by a call (grant id -> epoch seconds), as far as the store knows."""
        if self._store is None:
            return {}
        found: dict[str, float] = {}
        for grant_id, value in await self._store.items(NS_GRANT_USED, limit=100_000):
            try:
                found[grant_id] = float(value)
            except ValueError:
                continue
        return found

    async def sign_ins(self) -> list[GrantRecord]:
        """Every live sign-in in the store (empty without an authorization server)."""
        return await self._grants() if self._grants is not None else []

    async def count_sign_ins(self, *, force: bool = False) -> None:
        """Set castproxy_active_sign_ins from the store, at most every SIGN_IN_COUNT_EVERY seconds."""
        now = time.monotonic()
        if self._grants is None or (not force and now - self._counted_at < SIGN_IN_COUNT_EVERY):
            return
        self._counted_at = now
        counts = dict.fromkeys(self._sign_in_workspaces, 0)
        try:
            for grant in await self._grants():
                if grant.workspace in counts:
                    counts[grant.workspace] += 1
        except Exception as exc:  # the store is down: keep the last values, /readyz says why
            log.warning("could not count sign-ins", extra={"fields": {"error_type": type(exc).__name__}})
            return
        self.metrics.set_active_sign_ins(counts)

    async def before_scrape(self) -> None:
        """Bring what is counted elsewhere into the metrics: audit drops, sign-ins in the store."""
        dropped = self.audit.dropped
        if dropped > self._dropped_counted:
            self.metrics.audit_dropped.inc(dropped - self._dropped_counted)
            self._dropped_counted = dropped
        await self.count_sign_ins()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        self.audit.close()
        if self.tracing is not None and self._owns_tracing:
            self.tracing.shutdown()
