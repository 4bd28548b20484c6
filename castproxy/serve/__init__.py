"""The Starlette app, MCP glue, health endpoints and hot reload of one immutable compiled snapshot."""
