"""Finding the upstream's endpoints (RFC 8414 metadata) and registering castproxy there (RFC 7591)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx2

from castproxy.auth.credentials import AuthError
from castproxy.auth.upstream_tokens import ClientIdentity, safe_word

__all__ = ["MetadataError", "fetch_metadata", "fetch_origin_metadata", "metadata_urls", "origin", "register_client"]


class MetadataError(AuthError):
    """Metadata or registration failed; the message names the URL and status, never a secret."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 3.1 (well-known inserted before the issuer's path), then OpenID Connect discovery."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}"
    return [
        f"{base}/.well-known/oauth-authorization-server{path}",
        f"{base}{path}/.well-known/openid-configuration",
    ]


async def _get_json(http: httpx2.AsyncClient, url: str) -> dict[str, Any] | None:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


async def fetch_metadata(http: httpx2.AsyncClient, issuer: str) -> dict[str, Any] | None:
    """The issuer's metadata, only if it names that same issuer (RFC 8414 3.3); None if not found."""
    for url in metadata_urls(issuer):
        document = await _get_json(http, url)
        if document is not None and str(document.get("issuer", "")).rstrip("/") == issuer.rstrip("/"):
            return document
    return None


async def fetch_origin_metadata(http: httpx2.AsyncClient, url: str) -> dict[str, Any] | None:
    """Metadata published at the origin of `url` (used to learn the issuer when none is configured)."""
    return await _get_json(http, f"{origin(url)}/.well-known/oauth-authorization-server")


async def register_client(
    http: httpx2.AsyncClient,
    registration_url: str,
    *,
    redirect_uri: str,
    grant: str,
    scopes: Sequence[str],
    auth_method: str,
    client_name: str = "castproxy",
) -> ClientIdentity:
    """Register castproxy as a client (RFC 7591) and return the issued identity."""
    # redirect_uris is sent for client_credentials too: several servers require it on every registration.
    request: dict[str, object] = {"client_name": client_name, "redirect_uris": [redirect_uri]}
    if grant == "client_credentials":
        request["grant_types"] = ["client_credentials"]
    else:
        request["grant_types"] = ["authorization_code", "refresh_token"]
        request["response_types"] = ["code"]
    request["token_endpoint_auth_method"] = auth_method
    if scopes:
        request["scope"] = " ".join(scopes)
    try:
        response = await http.post(registration_url, json=request, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise MetadataError(f"registration at {registration_url} failed: {exc.__class__.__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code not in (200, 201) or not isinstance(answer, dict):
        code = safe_word(answer.get("error")) if isinstance(answer, dict) else "no JSON answer"
        raise MetadataError(f"registration at {registration_url} answered HTTP {response.status_code} ({code})")
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise MetadataError(f"registration at {registration_url} returned no client_id")
    secret = answer.get("client_secret")
    secret = secret if isinstance(secret, str) and secret else None
    method = answer.get("token_endpoint_auth_method")
    if method not in ("client_secret_basic", "client_secret_post", "none"):
        method = auth_method if secret is not None else "none"
    expires = answer.get("client_secret_expires_at")
    expires = float(expires) if isinstance(expires, int | float) and expires > 0 else None  # 0 means never
    return ClientIdentity(client_id=client_id, client_secret=secret, auth_method=method, secret_expires_at=expires)
