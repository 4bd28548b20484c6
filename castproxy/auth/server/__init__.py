"""castproxy's own OAuth 2.1 authorization server, the one MCP clients sign in to.

MCP clients never see an upstream credential: they register here (RFC 7591 or a client ID metadata
document), get a castproxy token bound to one workspace, and the bridge (castproxy.auth.bridge)
swaps it for the upstream grant on each call. One module per endpoint; `AuthServer` holds the state
they share.
"""
