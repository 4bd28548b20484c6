"""Structured logging: one JSON object per line, so log pipelines can index fields without parsing prose.

Modules log with `extra={"fields": {...}}` for machine-readable fields; callers only ever pass names,
statuses and timings there, never argument values or credentials.

A line is written per tool call, so the per-line cost matters under load: `configure_logging` turns
off what no line shows (the caller's file and line, thread, process and multiprocessing names, all
looked up for every record otherwise), and the formatter encodes with one prebuilt JSON encoder
rather than building one per line (what `json.dumps` with options does).
"""

from __future__ import annotations

import json
import logging
import sys
import time

CALLS_LOGGER = "castproxy.calls"

_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


class JsonFormatter(logging.Formatter):
    _second = -1
    _second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime per second, not per line (a line per tool call adds up)
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: its message could echo a request value.
            entry["error_type"] = record.exc_info[0].__name__
        return _ENCODER.encode(entry)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger (castproxy, uvicorn, mcp) to stderr as JSON lines."""
    # None of these appear in a line; each costs a lookup per record (the caller's frame walk most).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the logging HOWTO's "Optimization": no findCaller per record
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The SDK logs each stateless request, and httpx2 each spec fetch, at info level: noise at our volume.
    for name in ("mcp", "httpx2", "httpx"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
