"""castproxy's own OAuth 2.1 authorization server, the one MCP clients sign in to.

Why it works this way: docs/architecture.md, "Module notes".
"""

__all__: list[str] = []
