"""Helpers shared by the test folders (import as `support.<module>`; tests/conftest.py puts tests/ on sys.path).

- `skips`: skip on a laptop, fail when CI=true.
- `net`: free loopback ports and sockets.
- `servers`: an ASGI app under uvicorn in a background thread.
- `redis`: is Redis up, and dropping a test's keys.
- `node`: the Node tools fetched into .cache/node-tools.
- `serve_process`: `python -m castproxy serve` as a subprocess.
- `recording`: the bundled test server behind an ASGI recorder (what it received; revoking a token).
- `oauth_client`: what the `mcp` SDK's OAuthClientProvider needs (token storage, a browser stand-in).
- `auth_server`: castproxy's authorization server driven in-process with stand-in upstreams.
- `django_upstream`: a third-party OAuth upstream (Django + django-oauth-toolkit + DRF, read/write scopes).
- `tool_definitions`: hand-built ToolDefinitions for the request-building tests.
"""
