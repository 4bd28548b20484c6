"""`validate`'s online check of each oauth2 `issuer`: its discovery metadata is reachable and has what castproxy
needs (each issuer fetched once, all at once; each problem at the issuer's FILE:LINE:COL).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx2

from castproxy.auth.upstream_metadata import metadata_urls
from castproxy.config.loader import LoadedConfig
from castproxy.config.model import OAuth2Auth
from castproxy.config.problems import Problem
from castproxy.tls import outbound_tls

__all__ = ["check_issuers"]

FETCH_TIMEOUT = 10.0

# RFC 8414 metadata name -> the config field that can set it instead.
_FIELD = {
    "authorization_endpoint": "authorization_url",
    "token_endpoint": "token_url",
    "registration_endpoint": "registration_url",
}


@dataclass
class Discovery:
    """What fetching one issuer's metadata found: the document, or what each URL answered."""

    issuer: str
    document: dict[str, object] | None = None
    found_at: str = ""
    tried: list[str] = field(default_factory=list)  # "URL: what happened", in order


async def _fetch(http: httpx2.AsyncClient, issuer: str) -> Discovery:
    found = Discovery(issuer)
    for url in metadata_urls(issuer):
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx2.TimeoutException:
            found.tried.append(f"{url}: no answer within {FETCH_TIMEOUT:g} s")
            continue
        except httpx2.HTTPError as exc:
            found.tried.append(f"{url}: {_connection_failure(exc)}")
            continue
        if response.status_code != 200:
            found.tried.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            document = response.json()
        except ValueError:
            found.tried.append(f"{url}: not JSON")
            continue
        if not isinstance(document, dict):
            found.tried.append(f"{url}: not a JSON object")
            continue
        named = document.get("issuer")
        if not isinstance(named, str) or named.rstrip("/") != issuer.rstrip("/"):
            shown = repr(named) if isinstance(named, str) else "no issuer"
            found.tried.append(f"{url}: names {shown}, not this issuer (RFC 8414 §3.3: they must be identical)")
            continue
        found.document, found.found_at = document, url
        return found
    return found


def _connection_failure(exc: httpx2.HTTPError) -> str:
    if isinstance(exc, httpx2.ConnectError):
        return "cannot connect (connection refused or host not found)"
    return f"request failed ({type(exc).__name__})"


async def _discover(issuers: list[str]) -> dict[str, Discovery]:
    async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False, trust_env=False,
                                 verify=outbound_tls()) as http:
        found = await asyncio.gather(*(_fetch(http, issuer) for issuer in issuers))
    return {discovery.issuer: discovery for discovery in found}


def _needed(auth: OAuth2Auth) -> list[str]:
    """Metadata entries this workspace takes from discovery (those its config does not set)."""
    wanted = ["token_endpoint"]
    if auth.grant == "authorization_code":
        wanted.append("authorization_endpoint")
    if auth.provider == "dcr":
        wanted.append("registration_endpoint")
    return [name for name in wanted if not getattr(auth, _FIELD[name])]


def check_issuers(loaded: LoadedConfig) -> list[Problem]:
    """Problems with the discovery metadata of every configured issuer (network: not for --offline)."""
    workspaces = {name: w.auth for name, w in loaded.config.workspaces.items()
                  if isinstance(w.auth, OAuth2Auth) and w.auth.issuer}
    if not workspaces:
        return []
    found = asyncio.run(_discover(sorted({auth.issuer for auth in workspaces.values() if auth.issuer})))
    problems = []
    for name, auth in workspaces.items():
        assert auth.issuer is not None
        discovery = found[auth.issuer]
        at = ("workspaces", name, "auth", "issuer")
        needed = _needed(auth)
        if discovery.document is None:
            tried = "; ".join(discovery.tried)
            if needed:
                fields = ", ".join(f"auth.{_FIELD[entry]}" for entry in needed)
                problems.append(loaded.problem(at, f"no discovery metadata for issuer {auth.issuer} ({tried}); "
                                               f"castproxy needs it for {fields}: serve RFC 8414 or OpenID Connect "
                                               "metadata there, or set those fields"))
            else:
                problems.append(loaded.problem(at, f"no discovery metadata for issuer {auth.issuer} ({tried}); "
                                               "every endpoint is set, but sign-in answers are checked against "
                                               "this issuer only when its metadata can be read", "warning"))
            continue
        missing = [entry for entry in needed if not _is_url(discovery.document.get(entry))]
        if missing:
            names = ", ".join(missing)
            fields = ", ".join(f"auth.{_FIELD[entry]}" for entry in missing)
            problems.append(loaded.problem(at, f"the metadata of issuer {auth.issuer} ({discovery.found_at}) has no "
                                           f"{names}: set {fields}"))
        methods = discovery.document.get("code_challenge_methods_supported")
        if auth.pkce and isinstance(methods, list) and "S256" not in methods:
            shown = ", ".join(str(method) for method in methods) or "none"
            problems.append(loaded.problem(at, f"issuer {auth.issuer} announces PKCE methods {shown} but not S256, "
                                           "which castproxy sends (pkce: true); sign-ins may be refused", "warning"))
    return problems


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
