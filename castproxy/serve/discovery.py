"""At build time: can an oauth2 workspace find the upstream endpoints it did not configure?

A workspace that names `issuer` instead of some endpoint URLs needs the issuer's RFC 8414 (or OpenID
Connect) metadata. Finding out only at the first sign-in gives users a bare `temporarily_unavailable`;
checked while building, the workspace is degraded with the reason and retried in the background like
an unreachable spec. Each issuer is fetched once per build. Runs off the event loop (plain httpx2).
"""

from __future__ import annotations

from typing import Any

import httpx2

from castproxy.auth.upstream_metadata import metadata_urls
from castproxy.config.model import OAuth2Auth
from castproxy.tls import outbound_tls

__all__ = ["IssuerCheck"]

Loc = tuple[str | int, ...]
TIMEOUT = 10.0


def _needed(auth: OAuth2Auth) -> list[tuple[str, str]]:
    """(metadata field, config field) pairs the workspace leaves to discovery."""
    needed = []
    if not auth.token_url:
        needed.append(("token_endpoint", "token_url"))
    if auth.grant == "authorization_code" and not auth.authorization_url:
        needed.append(("authorization_endpoint", "authorization_url"))
    if auth.provider == "dcr" and not auth.registration_url:
        needed.append(("registration_endpoint", "registration_url"))
    return needed


class IssuerCheck:
    """One build's metadata lookups: `problems(auth)` is empty when every endpoint the workspace needs is known."""

    def __init__(self, *, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._found: dict[str, tuple[dict[str, Any] | None, str]] = {}

    def problems(self, auth: OAuth2Auth, at: Loc) -> list[tuple[Loc, str]]:
        needed = _needed(auth)
        if not needed or not auth.issuer:
            return []  # everything configured (or the config rules already refused the workspace)
        metadata, tried = self._metadata(auth.issuer)
        where: Loc = (*at, "auth", "issuer")
        if metadata is None:
            return [(where, f"cannot discover the upstream OAuth endpoints: no metadata for issuer {auth.issuer} "
                            f"({tried}); set {', '.join(config for _, config in needed)} or fix the issuer")]
        missing = [(name, config) for name, config in needed if not _is_http_url(metadata.get(name))]
        if missing:
            names = ", ".join(name for name, _ in missing)
            configs = ", ".join(config for _, config in missing)
            return [(where, f"the metadata of issuer {auth.issuer} has no {names}; set {configs} in auth")]
        return []

    def _metadata(self, issuer: str) -> tuple[dict[str, Any] | None, str]:
        if issuer not in self._found:
            self._found[issuer] = self._fetch(issuer)
        return self._found[issuer]

    def _fetch(self, issuer: str) -> tuple[dict[str, Any] | None, str]:
        outcomes = []
        with httpx2.Client(timeout=self.timeout, follow_redirects=False, trust_env=False,
                           verify=outbound_tls()) as client:
            for url in metadata_urls(issuer):
                try:
                    response = client.get(url, headers={"Accept": "application/json"})
                except httpx2.HTTPError as exc:
                    outcomes.append(f"{url}: {type(exc).__name__}")
                    continue
                if response.status_code != 200:
                    outcomes.append(f"{url}: HTTP {response.status_code}")
                    continue
                try:
                    document = response.json()
                except ValueError:
                    outcomes.append(f"{url}: not JSON")
                    continue
                if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
                    outcomes.append(f"{url}: names another issuer")  # RFC 8414 3.3
                    continue
                return document, ""
        return None, "; ".join(outcomes)


def _is_http_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
