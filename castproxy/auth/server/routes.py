"""The authorization server's URL layout, as Starlette routes bound to one AuthServer.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from castproxy.auth.server import authorize, callback, metadata, registration, revoke, token_endpoint
from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.errors import OAuthError
from castproxy.auth.server.metadata import CORS
from castproxy.config.loader import IDENTITY_CALLBACK_PATH, UPSTREAM_CALLBACK_PATH

__all__ = ["build_routes"]

Handler = Callable[[AuthServer, Request], Awaitable[Response]]


def _bind(server: AuthServer, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(server, request)

    return endpoint


def _api(server: AuthServer, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":  # browser-based MCP clients preflight these endpoints
            return Response(status_code=204, headers={**CORS, "Access-Control-Max-Age": "600"})
        try:
            response = await handler(server, request)
        except OAuthError as exc:
            response = exc.response()
        response.headers.update(CORS)
        return response

    return endpoint


def build_routes(server: AuthServer) -> list[BaseRoute]:
    as_metadata = _api(server, metadata.authorization_server)
    no_oidc = _api(server, metadata.no_openid_configuration)
    routes: list[BaseRoute] = [
        Route("/.well-known/oauth-authorization-server", as_metadata, methods=["GET", "OPTIONS"]),
        # Clients that treat the MCP URL as the issuer probe the path-suffixed form (RFC 8414 §3.1).
        Route("/.well-known/oauth-authorization-server/mcp/{workspace}", as_metadata, methods=["GET", "OPTIONS"]),
        Route(
            "/.well-known/oauth-protected-resource/mcp/{workspace}",
            _api(server, metadata.protected_resource),
            methods=["GET", "OPTIONS"],
        ),
        # For a client configured with /mcp/NAME/ (served in place, as the proxy never redirects on a slash).
        Route(
            "/.well-known/oauth-protected-resource/mcp/{workspace}/",
            _api(server, metadata.protected_resource),
            methods=["GET", "OPTIONS"],
        ),
        Route("/.well-known/openid-configuration", no_oidc, methods=["GET", "OPTIONS"]),
        Route("/.well-known/openid-configuration/{path:path}", no_oidc, methods=["GET", "OPTIONS"]),
        Route("/register", _api(server, registration.register), methods=["POST", "OPTIONS"]),
        Route("/authorize", _bind(server, authorize.authorize), methods=["GET"]),
        Route("/authorize/consent", _bind(server, authorize.consent), methods=["POST"]),
        Route(UPSTREAM_CALLBACK_PATH, _bind(server, callback.callback), methods=["GET"]),
        Route("/token", _api(server, token_endpoint.token), methods=["POST", "OPTIONS"]),
        Route("/revoke", _api(server, revoke.revoke), methods=["POST", "OPTIONS"]),
    ]
    if server.identity is not None:  # the company identity provider returns the browser here (castproxy.access)
        routes.append(Route(IDENTITY_CALLBACK_PATH, server.identity.callback, methods=["GET"]))
    if server.base_path:  # an issuer with a path publishes its metadata under that path too (RFC 8414 §3.1)
        routes.append(
            Route(f"/.well-known/oauth-authorization-server{server.base_path}", as_metadata, methods=["GET", "OPTIONS"])
        )
    return routes
