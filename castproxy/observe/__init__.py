"""Observability: the audit trail, Prometheus metrics and OpenTelemetry traces, behind one `Observer`."""

from __future__ import annotations

from castproxy.observe.audit import AuditTrail
from castproxy.observe.context import CURRENT, RequestInfo
from castproxy.observe.metrics import Metrics, prepare_multiprocess
from castproxy.observe.observer import Observer

__all__ = ["CURRENT", "AuditTrail", "Metrics", "Observer", "RequestInfo", "prepare_multiprocess"]
