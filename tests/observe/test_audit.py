"""The audit trail's writer: sinks, rotation, the ring of recent records, and dropping instead of blocking."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from castproxy.config.model import AuditSettings
from castproxy.observe.audit import AuditFile, AuditTrail, StdoutOutput, encode, iso_time, open_output


def record(index: int) -> dict:
    return {"ts": 1767225600.5 + index, "event": "tool_call", "workspace": "ws", "tool": "getItem", "n": index}


def test_encode_puts_an_iso_time_first() -> None:
    line = encode(record(0))
    assert line.startswith('{"ts":"2026-01-01T00:00:00.500Z","event":"tool_call"')
    assert iso_time(0.0) == "1970-01-01T00:00:00.000Z"


def test_file_sink_rotates_by_size_keeps_backups_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "trail.jsonl"
    trail = AuditTrail(AuditFile(path, max_bytes=4096, backups=3))
    for index in range(400):
        trail.emit(record(index))
    trail.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["trail.jsonl", "trail.jsonl.1", "trail.jsonl.2", "trail.jsonl.3"]
    assert all(f.stat().st_size <= 4096 for f in files)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = [json.loads(line)["n"] for f in reversed(files) for line in f.read_text().splitlines()]
    assert kept == sorted(kept) and kept[-1] == 399  # the newest records survive, in order


def test_stdout_sink_writes_one_json_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    trail = AuditTrail(StdoutOutput())
    trail.emit(record(1))
    trail.emit(record(2))
    trail.close()
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 2]


def test_off_keeps_only_the_ring_and_the_ring_is_bounded() -> None:
    assert open_output(AuditSettings(sink="off"), Path(".")) is None
    trail = AuditTrail(None, ring_size=5)
    for index in range(12):
        trail.emit(record(index))
    assert [r["n"] for r in trail.records(limit=3)] == [11, 10, 9]
    assert len(trail.recent) == 5 and not trail.writing
    trail.close()


def test_file_path_may_name_the_process(tmp_path: Path) -> None:
    sink = open_output(AuditSettings(sink="file", path="audit-{pid}.jsonl"), tmp_path)
    assert isinstance(sink, AuditFile) and sink.path.name.startswith("audit-") and "{pid}" not in sink.path.name
    sink.close()


class SlowSink:
    """A sink stuck until released: a full disk or a pipe nobody reads."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        self.release.wait(10)
        self.lines.extend(lines)

    def close(self) -> None:
        return None


def test_a_stuck_sink_never_blocks_emit_and_drops_are_counted_and_written() -> None:
    sink = SlowSink()
    trail = AuditTrail(sink, max_pending=10)
    started = time.perf_counter()
    for index in range(200):
        trail.emit(record(index))
    assert time.perf_counter() - started < 1.0  # appends only, whatever the sink does
    assert trail.dropped >= 150
    sink.release.set()
    trail.close()
    written = [json.loads(line) for line in sink.lines]
    dropped = [line for line in written if line["event"] == "audit_dropped"]
    assert sum(line["dropped"] for line in dropped) == trail.dropped
    assert len(written) - len(dropped) + trail.dropped == 200
