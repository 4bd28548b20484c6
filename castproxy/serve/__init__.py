"""The Starlette app, the MCP endpoint, health endpoints and hot reload of one immutable compiled snapshot."""

from castproxy.errors import CastproxyError

__all__ = ["ServeError"]


class ServeError(CastproxyError):
    """What `serve` cannot do: start (StartupError), or send a call's upstream credentials."""
