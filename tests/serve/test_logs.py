"""The JSON log line: every field kept, and none of the per-record lookups no line shows (a line per tool call)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from castproxy.serve.logs import (
    CALLS_LOGGER,
    HeldLogs,
    JsonFormatter,
    RepeatLimitingHandler,
    TextFormatter,
    configure_logging,
)

FLAGS = ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile")


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """configure_logging() with its stderr handler writing to a buffer; global logging state restored after."""
    root = logging.getLogger()
    saved = ([*root.handlers], root.level, {flag: getattr(logging, flag) for flag in FLAGS})
    levels = {name: logging.getLogger(name).level for name in ("mcp", "httpx2", "httpx")}
    uvicorn_state = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
                     for name in ("uvicorn", "uvicorn.error")}
    access_disabled = logging.getLogger("uvicorn.access").disabled
    configure_logging()
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for flag, value in saved[2].items():
            setattr(logging, flag, value)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name, (handlers, propagate) in uvicorn_state.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate
        logging.getLogger("uvicorn.access").disabled = access_disabled


def test_call_line_keeps_every_field(configured: io.StringIO) -> None:
    fields = {"workspace": "items", "tool": "getItem", "upstream_status": 200, "duration_ms": 1.25, "outcome": "ok"}
    logging.getLogger(CALLS_LOGGER).info("tool call", extra={"fields": fields})
    [line] = configured.getvalue().splitlines()
    entry = json.loads(line)
    assert entry.pop("ts").endswith("Z")
    assert entry == {"level": "info", "logger": CALLS_LOGGER, "msg": "tool call", **fields}


def test_no_per_record_lookups_that_no_line_shows(configured: io.StringIO) -> None:
    # The caller's frame walk (findCaller), thread, process and multiprocessing names: each a cost per record.
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing) == (False, False, False)
    assert logging._srcfile is None  # type: ignore[attr-defined]
    logging.getLogger("castproxy.x").info("hello %s", "there")
    record = json.loads(configured.getvalue())
    assert record["msg"] == "hello there" and set(record) == {"ts", "level", "logger", "msg"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _limited(clock: Clock) -> tuple[logging.Logger, io.StringIO, RepeatLimitingHandler]:
    buffer = io.StringIO()
    handler = RepeatLimitingHandler(buffer, window=10.0, clock=clock)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("castproxy.test.repeats")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, buffer, handler


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_identical_error_lines_are_written_once_per_window_and_counted() -> None:
    clock = Clock()
    logger, buffer, _ = _limited(clock)
    fields = {"workspace": "items", "error_type": "StoreUnavailable"}
    for _ in range(1235):
        logger.error("sign-in check failed", extra={"fields": fields})
    logger.error("sign-in check failed", extra={"fields": {**fields, "workspace": "users"}})  # not identical
    assert [line["workspace"] for line in _lines(buffer)] == ["items", "users"]

    clock.now += 10
    logger.error("sign-in check failed", extra={"fields": fields})
    last = _lines(buffer)[-1]
    assert last["msg"] == "sign-in check failed (repeated 1,234 times in the last 10 s)"
    assert last["repeated"] == 1234 and last["workspace"] == "items"


def test_lines_that_stop_coming_get_their_count_from_the_next_record_or_at_close() -> None:
    clock = Clock()
    logger, buffer, handler = _limited(clock)
    for _ in range(3):
        logger.warning("store unavailable")
    clock.now += 12
    logger.info("tool call")  # any record sweeps windows that are over
    assert [line["msg"] for line in _lines(buffer)] == [
        "store unavailable", "store unavailable (repeated 2 more times in the last 12 s)", "tool call"]

    logger.warning("upstream refused")
    logger.warning("upstream refused")
    handler.close()
    assert _lines(buffer)[-1]["msg"] == "upstream refused (repeated 1 more time in the last 0 s)"


def test_info_lines_are_never_held_back() -> None:
    logger, buffer, _ = _limited(Clock())
    for _ in range(5):
        logger.info("tool call", extra={"fields": {"tool": "listItems"}})
    assert len(_lines(buffer)) == 5


def test_text_format_reads_as_text() -> None:
    record = logging.makeLogRecord({"name": "castproxy.calls", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "tool call", "created": 0.0, "msecs": 5.0,
                                    "fields": {"tool": "getItem", "detail": "two words", "workspaces": ["a", "b"]}})
    assert TextFormatter().format(record) == (
        '1970-01-01T00:00:00.005Z info    castproxy.calls: tool call tool=getItem detail="two words" workspaces=a,b')


def test_held_logs_wait_for_release() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        held = HeldLogs(handler)
        logging.getLogger("castproxy.x").warning("early")
        assert buffer.getvalue() == ""
        held.release()
        assert buffer.getvalue() == "early\n"
        assert root.handlers == [handler]
    finally:
        root.handlers[:] = saved
