"""The OpenAPI 3.1 document the test server serves at /openapi.json: the bundled paths and schemas,
plus `servers` (the URL the caller used) and the security schemes of the running mode."""

from __future__ import annotations

import copy
from typing import Any

from castproxy.testserver.api import OPERATION_SCOPES, bundled_document
from castproxy.testserver.oauth import SCOPES

__all__ = ["openapi_document"]

_SCOPE_TEXT = {"read:items": "Read items", "write:items": "Change items", "read:users": "Read users"}


def openapi_document(mode: str, base_url: str) -> dict[str, Any]:
    document = copy.deepcopy(bundled_document())
    document["servers"] = [{"url": base_url, "description": f"castproxy test server (mode {mode})"}]
    schemes: dict[str, Any] = {}
    if mode == "apikey":
        schemes["apiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        document["security"] = [{"apiKey": []}]
    elif mode in ("oauth", "oauth-dcr"):
        scopes = {scope: _SCOPE_TEXT[scope] for scope in SCOPES}
        schemes["oauth2"] = {
            "type": "oauth2",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{base_url}/auth/authorize",
                    "tokenUrl": f"{base_url}/auth/token",
                    "refreshUrl": f"{base_url}/auth/token",
                    "scopes": scopes,
                },
                "clientCredentials": {"tokenUrl": f"{base_url}/auth/token", "scopes": scopes},
            },
        }
        for path_item in document["paths"].values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["security"] = [{"oauth2": [OPERATION_SCOPES[operation["operationId"]]]}]
    elif mode == "jwt":
        schemes["bearerJwt"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": f"An HS256 JWT from POST {base_url}/auth/login (username and password, JSON or form); "
            f"renew it at POST {base_url}/auth/refresh with the refresh_token of the login answer.",
        }
        document["security"] = [{"bearerJwt": []}]
    if schemes:
        document["components"]["securitySchemes"] = schemes
    return document
