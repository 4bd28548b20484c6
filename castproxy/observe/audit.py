"""The audit trail: one JSON line per tool call, sign-in, consent, sign-out, revocation, refresh failure and reload.

`emit` only appends to a ring (the admin page) and a queue a writer thread drains to stdout or a rotated
file; past `MAX_PENDING` queued records new ones are dropped and counted.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson

from castproxy.config.model import AuditSettings

__all__ = ["AuditFile", "AuditTrail", "Record", "StdoutOutput", "encode", "iso_time", "open_output"]

log = logging.getLogger(__name__)

Record = dict[str, Any]
RING_SIZE = 1000  # recent records kept in memory for the admin page, per process
MAX_PENDING = 100_000  # records waiting for the writer before new ones are dropped
BATCH = 1000  # records written per wake-up at most
GATHER = 0.1  # seconds the writer waits for more records after the first, unless a full batch is there
_STOP = object()


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text (one strftime per second)


def iso_time(seconds: float) -> str:
    whole = int(seconds)
    if whole != _second[0]:
        _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
    return f"{_second[1]}.{int((seconds - whole) * 1000):03d}Z"


def encode(record: Record) -> str:
    """One line of the trail: `ts` as ISO 8601 UTC, then the record's fields as given.

    Records are built with `ts` (epoch seconds) first, so the encoded float is swapped for its ISO text
    in the line rather than by copying the record (this runs once per record, on the writer thread)."""
    line = orjson.dumps(record, default=str).decode()
    if line.startswith('{"ts":'):
        end = line.find(",", 6)
        return '{"ts":"' + iso_time(record["ts"]) + '"' + (line[end:] if end != -1 else "}")
    return line


class AuditOutput(Protocol):
    """Where the writer thread puts audit lines (`server.audit.sink`): stdout or a rotated file."""

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class StdoutOutput:
    def __init__(self, stream: Callable[[], Any] = lambda: sys.stdout) -> None:
        self._stream = stream  # looked up per batch: tests and embedders may swap sys.stdout

    def write(self, lines: list[str]) -> None:
        stream = self._stream()
        stream.write("\n".join(lines) + "\n")
        stream.flush()

    def close(self) -> None:
        return None


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created readable by their owner only (they name people)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


class AuditFile:
    """Appends batches to `path`, rotating to PATH.1 ... PATH.N before a batch would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._max_bytes = max_bytes
        self._handler = _PrivateRotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, lines: list[str]) -> None:
        # One emit (rotation check, write, flush) per chunk of lines that fits in a file, not per line.
        chunk: list[str] = []
        size = 0
        for line in lines:
            length = len(line.encode()) + 1
            if chunk and size + length > self._max_bytes:
                self._emit(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            self._emit(chunk)

    def _emit(self, lines: list[str]) -> None:
        self._handler.emit(logging.makeLogRecord({"msg": "\n".join(lines), "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


def open_output(settings: AuditSettings, base_dir: Path) -> AuditOutput | None:
    """The output `server.audit.sink` names; None for `off`. A file path may contain {pid} (one file per worker)."""
    if settings.sink == "off":
        return None
    if settings.sink == "stdout":
        return StdoutOutput()
    assert settings.path is not None  # the model requires a path for the file sink
    path = Path(settings.path.replace("{pid}", str(os.getpid()))).expanduser()
    return AuditFile(path if path.is_absolute() else base_dir / path, settings.max_bytes, settings.backups)


class AuditTrail:
    """The per-process trail: a ring of recent records plus the writer thread for the sink."""

    def __init__(self, sink: AuditOutput | None, *, ring_size: int = RING_SIZE, max_pending: int = MAX_PENDING) -> None:
        self.sink = sink
        self.recent: deque[Record] = deque(maxlen=ring_size)
        self.dropped = 0  # records not written because the writer was too far behind
        self._max_pending = max_pending
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reported_drops = 0
        if sink is not None:
            self._thread = threading.Thread(target=self._run, name="castproxy-audit", daemon=True)
            self._thread.start()

    @property
    def writing(self) -> bool:
        return self.sink is not None

    def emit(self, record: Record) -> None:
        """Keep and queue one record (called on the event loop: append only, never blocks)."""
        self.recent.append(record)
        if self._thread is None:
            return
        if self._queue.qsize() >= self._max_pending:
            self.dropped += 1
            return
        self._queue.put(record)

    def records(self, keep: Callable[[Record], bool] | None = None, limit: int = 100) -> list[Record]:
        """The newest records first (those `keep` accepts), at most `limit`."""
        found: list[Record] = []
        for record in reversed(self.recent):
            if keep is None or keep(record):
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def _run(self) -> None:
        assert self.sink is not None
        stopping = False
        while not stopping:
            batch: list[Any] = [self._queue.get()]
            if batch[0] is not _STOP and self._queue.qsize() < BATCH:
                time.sleep(GATHER)  # let a batch gather: one wake-up and one write per batch, not per record
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            records = [item for item in batch if item is not _STOP]
            lines = [encode(record) for record in records]
            dropped = self.dropped
            if dropped != self._reported_drops:  # say so in the trail itself, once caught up
                lines.append(encode({"ts": time.time(), "event": "audit_dropped",
                                     "dropped": dropped - self._reported_drops, "outcome": "dropped"}))
                self._reported_drops = dropped
            if lines:
                self._write(lines)

    def _write(self, lines: Iterable[str]) -> None:
        assert self.sink is not None
        try:
            self.sink.write(list(lines))
        except Exception as exc:  # a full disk or a closed pipe must not kill the writer
            log.error("the audit trail could not be written", extra={"fields": {"error_type": type(exc).__name__}})

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer and close the sink."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        if self.sink is not None:
            self.sink.close()
