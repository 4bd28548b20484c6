"""Step-up: a tools/call for a tool whose OAuth scopes the caller's token lacks is answered 403 before MCP.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from starlette.types import Message, Receive

__all__ = ["called_tool"]

CALL = "tools/call"
CALL_OPERATION = "call_operation"  # the meta-tool of a `discovery: search` workspace (castproxy/catalog/meta.py)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay


async def called_tool(receive: Receive, max_body: int, *, search: bool) -> tuple[str | None, Receive]:
    """The tool a single tools/call request names (in search mode, call_operation's operation too), and the
    `receive` to read the request from afterwards."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, _replay(messages, receive)
        size += len(message.get("body", b""))
        if size > max_body or not message.get("more_body", False):
            break
    if size > max_body:
        return None, _replay(messages, receive)
    try:
        decoded: Any = json.loads(b"".join(m.get("body", b"") for m in messages))
    except (ValueError, RecursionError):
        return None, _replay(messages, receive)
    name = None
    if isinstance(decoded, dict) and decoded.get("method") == CALL and isinstance(decoded.get("params"), dict):
        params = decoded["params"]
        name = params.get("name") if isinstance(params.get("name"), str) else None
        arguments = params.get("arguments")
        if search and name == CALL_OPERATION and isinstance(arguments, dict) and isinstance(arguments.get("name"), str):
            name = arguments["name"]
    return name, _replay([{"type": "http.request", "body": b"".join(m.get("body", b"") for m in messages),
                           "more_body": False}], receive)
