"""`castproxy serve --no-reload` for observe_bench.py, optionally with nothing observed (the bench's baseline).

`off` replaces the Observer's per-call methods with no-ops and gives ToolCaller the bare forwarder: what
castproxy would cost without metrics or an audit trail. `on` runs castproxy unchanged. Bench code only.

Usage: python bench/observe_runner.py on|off CONFIG
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn

from castproxy.observe.observer import Observer
from castproxy.serve.app import create_app
from castproxy.serve.logs import configure_logging


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def main() -> int:
    mode, config = sys.argv[1], Path(sys.argv[2])
    if mode == "off":
        Observer.tool_call = _nothing  # type: ignore[method-assign]
        Observer.note_arguments = _nothing  # type: ignore[method-assign]
        Observer.grant_used = _nothing  # type: ignore[method-assign]
        Observer.forwarder = lambda self, inner: inner  # type: ignore[method-assign]
    configure_logging()
    app = create_app(config, reload=False)
    settings = app.state.serve.snapshot.loaded.config.server
    uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                                  lifespan="on", access_log=False, log_config=None, server_header=False)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
