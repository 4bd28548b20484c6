"""OpenAPI documents in, MCP tool definitions out: loading, $ref handling, compiling operations."""
