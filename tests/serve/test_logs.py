"""The JSON log line: every field kept, and none of the per-record lookups no line shows (a line per tool call)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from castproxy.serve.logs import CALLS_LOGGER, configure_logging

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
