"""Upstream credentials (static and OAuth client) and castproxy's authorization server for MCP clients."""

__all__: list[str] = []
