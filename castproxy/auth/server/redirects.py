"""Redirect URI rules: what a client may register, and how a requested URI is matched afterwards.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

__all__ = ["LOOPBACK_REDIRECT", "is_registered", "redirect_uri_problem", "with_params"]

MAX_REDIRECT_URI_LENGTH = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

LOOPBACK_REDIRECT = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(?::(\d{1,5}))?([/?][^#]*)?$")
# Desktop MCP clients whose private-use scheme has no dot; all other private-use schemes must be
# reverse domain names, which keeps out javascript:, data:, file:, blob: and the like.
NATIVE_CLIENT_SCHEMES = frozenset({"cursor", "vscode", "vscode-insiders", "windsurf"})
_PRIVATE_USE = re.compile(r"^([a-z][a-z0-9+.-]*):(/[^#]*)$")
_REVERSE_DOMAIN = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$")
_FORBIDDEN_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"\\^`{|}]")


def redirect_uri_problem(uri: object) -> str | None:
    """Why `uri` may not be registered as a redirect URI, or None when it may."""
    if not isinstance(uri, str) or not uri:
        return "a redirect URI must be a non-empty string"
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"redirect URI longer than {MAX_REDIRECT_URI_LENGTH} characters"
    if _FORBIDDEN_CHARS.search(uri):
        return f"redirect URI {uri!r} contains whitespace or characters that must be percent-encoded"
    if "#" in uri:
        return f"redirect URI {uri!r} must not contain a fragment"
    if uri.startswith("https://"):
        parts = urlsplit(uri)
        if not parts.hostname or "@" in parts.netloc:
            return f"redirect URI {uri!r} needs a host and must not contain user information"
        try:
            port = parts.port  # raises ValueError for a malformed port or one beyond 65535
        except ValueError:
            return f"redirect URI {uri!r} has an invalid port"
        return None if port != 0 else f"redirect URI {uri!r} has an invalid port (0)"
    if uri.startswith("http://"):
        loopback = LOOPBACK_REDIRECT.match(uri)
        if loopback:
            written = loopback.group(2)
            if written is not None and not 1 <= int(written) <= 65535:
                return f"redirect URI {uri!r} has an invalid port (a port is 1 to 65535)"
            return None
        return (
            f"redirect URI {uri!r} uses http on a non-loopback host; use https, or http on {', '.join(LOOPBACK_HOSTS)}"
        )
    private = _PRIVATE_USE.match(uri)
    if private and (private.group(1) in NATIVE_CLIENT_SCHEMES or _REVERSE_DOMAIN.match(private.group(1))):
        return None
    return (
        f"redirect URI {uri!r} must use https, or http on a loopback address ({', '.join(LOOPBACK_HOSTS)}), "
        "or a native app's private-use scheme (a reverse domain name such as com.example.app:/callback)"
    )


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact match, except that a loopback http URI's port may differ (RFC 8252 §7.3)."""
    if registered == requested:
        return True
    left, right = LOOPBACK_REDIRECT.match(registered), LOOPBACK_REDIRECT.match(requested)
    if not left or not right:
        return False
    return left.group(1) == right.group(1) and (left.group(3) or "") == (right.group(3) or "")


def is_registered(registered: tuple[str, ...], requested: str) -> bool:
    return any(redirect_uri_matches(uri, requested) for uri in registered)


def with_params(redirect_uri: str, params: dict[str, str | None]) -> str:
    """`redirect_uri` with `params` added to its query (keeping any query it already has)."""
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"
