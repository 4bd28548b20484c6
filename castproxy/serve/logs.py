"""Logging for `castproxy serve`: one JSON object per line (or readable text), on stderr, with repeats counted.

Modules log with `extra={"fields": {...}}` (names, statuses and timings, never argument values or
credentials); identical warning and error lines are written once per 10 s with a count.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

__all__ = [
    "CALLS_LOGGER", "LOG_FORMATS", "HeldLogs", "JsonFormatter", "LogFormat", "RepeatLimitingHandler", "TextFormatter",
    "configure_logging", "parse_level",
]

CALLS_LOGGER = "castproxy.calls"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LogFormat = Literal["json", "text"]

REPEAT_WINDOW = 10.0  # seconds in which identical warning/error lines are written once
MAX_TRACKED_LINES = 1024  # distinct lines remembered at once (bounded, whatever the traffic)

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


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger: message key=value ...` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{created}.{int(record.msecs):03d}Z {record.levelname.lower():<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += "".join(f" {key}={_text_value(value)}" for key, value in fields.items())
        if record.exc_info and record.exc_info[0] is not None:
            line += f" error_type={record.exc_info[0].__name__}"
        return line


def _text_value(value: object) -> str:
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        value = ",".join(value)
    text = value if isinstance(value, str) else _ENCODER.encode(value)
    return text if text and not any(c in text for c in ' "=\n') else json.dumps(text)


@dataclass(slots=True)
class _Repeats:
    started: float  # when the line was last written
    left_out: int = 0  # identical lines not written since
    last: logging.LogRecord | None = None  # the last of those


class RepeatLimitingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes identical warning/error lines once per window and counts the rest.

    Identical means same logger, level, message and fields. The first line after a window in which
    some were left out carries ` (repeated N times in the last S s)` and a `repeated` field; lines
    that stopped coming get that summary from the next record of any kind, or at shutdown (`close`).
    Below WARNING (the line per tool call) every record is written, at the cost of one comparison.
    """

    def __init__(self, stream: TextIO, *, window: float = REPEAT_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stream)
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[object, ...], _Repeats] = {}
        self._next_sweep = float("inf")  # when a window with left-out lines ends

    def handle(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if record.levelno < logging.WARNING:
            if now >= self._next_sweep:
                with self.lock:  # type: ignore[union-attr]  # typeshed: Optional, Handler.__init__ sets it
                    self._sweep(now)
            return bool(super().handle(record))
        key = _line_key(record)
        with self.lock:  # type: ignore[union-attr]  # typeshed: Optional; __init__ sets it
            seen = self._seen.get(key)
            if seen is not None and now - seen.started < self.window:
                seen.left_out += 1
                seen.last = record
                self._next_sweep = min(self._next_sweep, seen.started + self.window)
                return False
            if seen is not None and seen.left_out:
                record = _with_repeats(record, seen.left_out, now - seen.started)  # this line carries its count
            elif seen is None and len(self._seen) >= MAX_TRACKED_LINES:
                self._sweep(now, everything=True)
            self._seen[key] = _Repeats(now)
            if now >= self._next_sweep:
                self._sweep(now)
            return bool(super().handle(record))

    def _sweep(self, now: float, *, everything: bool = False) -> None:
        """Write the count of lines that stopped coming; forget windows that are over."""
        self._next_sweep = float("inf")
        for key, seen in list(self._seen.items()):
            if everything or now - seen.started >= self.window:
                del self._seen[key]
                if seen.last is not None:
                    super().handle(_with_repeats(seen.last, seen.left_out, now - seen.started, more=True))
            elif seen.left_out:
                self._next_sweep = min(self._next_sweep, seen.started + self.window)

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # typeshed: Optional, Handler.__init__ sets it
            self._sweep(self._clock(), everything=True)
        super().close()


def _line_key(record: logging.LogRecord) -> tuple[object, ...]:
    fields = getattr(record, "fields", None)
    shown = _ENCODER.encode(fields) if isinstance(fields, dict) else ""
    error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] is not None else ""
    return (record.name, record.levelno, record.getMessage(), shown, error)


def _with_repeats(record: logging.LogRecord, count: int, seconds: float, *, more: bool = False) -> logging.LogRecord:
    copy = logging.makeLogRecord(record.__dict__)
    times = ("more " if more else "") + ("time" if count == 1 else "times")
    copy.msg = f"{record.getMessage()} (repeated {count:,} {times} in the last {seconds:.0f} s)"
    copy.args = None
    fields = getattr(record, "fields", None)
    copy.fields = {**(fields if isinstance(fields, dict) else {}), "repeated": count}
    return copy


def parse_level(value: str) -> int:
    """A level name (any case) as logging's number; ValueError naming the choices otherwise."""
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {value!r}: use one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, value.upper()))


def configure_logging(level: int = logging.INFO, log_format: LogFormat = "json") -> RepeatLimitingHandler:
    """Send every logger (castproxy, uvicorn, mcp) to stderr, as JSON lines or text; returns the handler."""
    # None of these appear in a line; each costs a lookup per record (the caller's frame walk most).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the logging HOWTO's "Optimization": no findCaller per record
    handler = RepeatLimitingHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
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
    return handler


class HeldLogs:
    """Keeps log records back until `release()` (so `serve` can print its banner first), then writes them."""

    def __init__(self, handler: logging.Handler) -> None:
        self._handler = handler
        # Flushed only by release() (or when 10,000 records pile up, which start-up never logs).
        self._buffer = logging.handlers.MemoryHandler(10_000, flushLevel=logging.CRITICAL + 1, target=handler)
        root = logging.getLogger()
        root.handlers[:] = [self._buffer]

    def release(self) -> None:
        root = logging.getLogger()
        root.handlers[:] = [self._handler]
        self._buffer.flush()
        self._buffer.close()
