"""The start-up banner: the credentials and endpoints a user copies into cast.yaml (like the tutorial's)."""

from __future__ import annotations

from castproxy.testserver.app import TestServerCredentials
from castproxy.testserver.oauth import GRANT_TYPES, SCOPES

__all__ = ["banner"]


def banner(credentials: TestServerCredentials, base_url: str) -> str:
    lines = [
        "",
        f"  castproxy test server · mode {credentials.mode}",
        f"  📄 OpenAPI spec    : {base_url}/openapi.json",
        f"  🌐 API base URL    : {base_url}",
    ]
    if credentials.mode == "apikey":
        lines += [
            "  🔑 API key (send it as the X-API-Key header):",
            f"       api_key       : {credentials.api_key}",
        ]
    if credentials.mode in ("oauth", "oauth-dcr"):
        lines += [
            "  🔑 Pre-registered OAuth client:",
            f"       client_id     : {credentials.client_id}",
            f"       client_secret : {credentials.client_secret}",
            f"       grant_types   : {', '.join(GRANT_TYPES)}",
            f"       scopes        : {' '.join(SCOPES)}",
            f"       redirect_uris : {', '.join(credentials.redirect_uris)}",
            f"  🌐 Token endpoint  : {base_url}/auth/token",
            f"  🌐 Auth endpoint   : {base_url}/auth/authorize",
            f"  🌐 Metadata        : {base_url}/.well-known/oauth-authorization-server",
        ]
        if credentials.mode == "oauth-dcr":
            lines.append(f"  🌐 Registration    : {base_url}/auth/clients")
        if credentials.auto_approve:
            lines.append("  ⚠  --auto-approve: sign-ins are approved without the approval page")
    if credentials.mode == "jwt":
        first, *others = credentials.usernames
        also = f"   (also {', '.join(others)}, same password)" if others else ""
        lines += [
            "  🔑 Log in with (JSON or form body, POST):",
            f"       username      : {first}{also}",
            f"       password      : {credentials.password}",
            f"       token         : HS256 JWT, lives {credentials.token_lifetime} s (its exp claim), Bearer",
            f"  🌐 Login endpoint  : {base_url}/auth/login",
            f"  🌐 Refresh         : {base_url}/auth/refresh   (body: refresh_token)",
            f"  🌐 Logout          : {base_url}/auth/logout    (Bearer token: ends its session)",
        ]
    lines.append("")
    return "\n".join(lines)
