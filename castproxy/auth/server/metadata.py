"""Discovery documents: RFC 8414 authorization server metadata and RFC 9728 protected resource metadata.

There is one authorization server (issuer = public_url) and one protected resource per workspace that
needs a per-user sign-in (`{public_url}/mcp/{workspace}`). OpenID Connect discovery is answered with a
clean 404: castproxy issues no ID tokens.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.errors import no_sign_in

__all__ = ["CORS", "authorization_server", "no_openid_configuration", "protected_resource"]

# Added by the routes to every answer of the endpoints MCP clients call from code (these included).
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Methods": "*",
    # so a browser-based client can read how long a 429 asks it to wait
    "Access-Control-Expose-Headers": "Retry-After",
}
CACHE = {"Cache-Control": "public, max-age=60"}


def authorization_server_metadata(server: AuthServer) -> dict[str, object]:
    scopes = sorted({scope for entry in server.sign_in_workspaces() for scope in entry.scopes})
    return {
        "issuer": server.issuer,
        "authorization_endpoint": server.url("/authorize"),
        "token_endpoint": server.url("/token"),
        "registration_endpoint": server.url("/register"),
        "revocation_endpoint": server.url("/revoke"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
    }


async def authorization_server(server: AuthServer, request: Request) -> Response:
    return JSONResponse(authorization_server_metadata(server), headers=CACHE)


async def protected_resource(server: AuthServer, request: Request) -> Response:
    name = request.path_params["workspace"]
    entry = server.sign_in_workspace(name)
    if entry is None:
        return no_sign_in(name)
    return JSONResponse(
        {
            "resource": entry.resource,
            "authorization_servers": [server.issuer],
            "scopes_supported": list(entry.scopes),
            "bearer_methods_supported": ["header"],
            "resource_name": f"castproxy workspace {name}",
        },
        headers=CACHE,
    )


async def no_openid_configuration(server: AuthServer, request: Request) -> Response:
    return JSONResponse(
        {
            "error": "not_found",
            "error_description": "castproxy is an OAuth 2.1 authorization server, not an OpenID provider; "
            "see /.well-known/oauth-authorization-server",
        },
        status_code=404,
    )
