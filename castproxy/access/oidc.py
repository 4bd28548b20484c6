"""Company sign-in at an OpenID Connect provider: discovery, the authorization request, the ID token's checks.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from castproxy.config.model import IdentitySettings
from castproxy.errors import CastproxyError
from castproxy.tls import outbound_tls

__all__ = ["Identity", "IdentityError", "IdentityProvider"]

log = logging.getLogger("castproxy.access")

METADATA_TTL = 3600.0
JWKS_MIN_REFETCH = 60.0
LEEWAY = 60  # seconds of clock skew accepted on exp / iat
HTTP_TIMEOUT = 10.0
_MAX_GROUPS = 500


class AccessError(CastproxyError):
    """The root of access/'s errors."""


class IdentityError(AccessError):
    """The company sign-in failed; the message is safe to show the person and to log."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A person as the provider's ID token describes them."""

    subject: str
    email: str | None = None
    groups: tuple[str, ...] = ()
    name: str | None = None

    @property
    def shown(self) -> str:
        """How pages name the person."""
        if self.name and self.email:
            return f"{self.name} ({self.email})"
        return self.email or self.name or self.subject


def identity_of(claims: dict[str, Any], groups_claim: str | None) -> Identity:
    """The person in validated ID token claims. An email the provider says is unverified is not used (policies
    match on emails); groups come from `groups_claim` (a list of strings, or one string)."""
    email = claims.get("email")
    if not isinstance(email, str) or not email or claims.get("email_verified") is False:
        email = None
    groups: tuple[str, ...] = ()
    if groups_claim:
        raw = claims.get(groups_claim)
        if isinstance(raw, str):
            raw = [raw]
        if isinstance(raw, list):
            groups = tuple(dict.fromkeys(str(group) for group in raw if isinstance(group, str | int)))[:_MAX_GROUPS]
    name = claims.get("name") or claims.get("preferred_username")
    return Identity(
        subject=str(claims["sub"]),
        email=email.strip().lower() if email else None,
        groups=groups,
        name=name if isinstance(name, str) else None,
    )


class IdentityProvider:
    """The OIDC provider of `server.identity`, as castproxy's sign-in uses it."""

    def __init__(
        self, settings: IdentitySettings, *, http: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.issuer = settings.issuer
        self._http = http or httpx2.AsyncClient(
            timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False, verify=outbound_tls())
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = -JWKS_MIN_REFETCH
        self._lock = asyncio.Lock()

    @property
    def scopes(self) -> list[str]:
        return ["openid", *(scope for scope in self.settings.scopes if scope != "openid")]

    # --- discovery and keys ----------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The provider's OpenID configuration (cached an hour; a failed fetch keeps using a cached copy)."""
        if self._metadata is not None and self._clock() - self._metadata_at < METADATA_TTL:
            return self._metadata
        async with self._lock:
            if self._metadata is not None and self._clock() - self._metadata_at < METADATA_TTL:
                return self._metadata
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                document = await self._get_json(url)
            except IdentityError:
                if self._metadata is not None:
                    return self._metadata
                raise
            issuer = document.get("issuer")
            if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer.rstrip("/"):
                raise IdentityError(f"the identity provider's metadata names issuer {str(issuer)[:200]!r}, "
                                    f"not {self.issuer!r} (server.identity.issuer)")
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(document.get(field), str):
                    raise IdentityError(f"the identity provider's metadata has no {field}")
            self._metadata, self._metadata_at = document, self._clock()
            return document

    async def _keyset(self, *, refresh: bool = False) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        if self._keys is not None and self._clock() - self._keys_at < JWKS_MIN_REFETCH:
            return self._keys  # an unknown kid does not make us hammer the provider
        metadata = await self.metadata()
        document = await self._get_json(metadata["jwks_uri"])
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise IdentityError(f"the identity provider's JWKS could not be read ({type(exc).__name__})") from None
        self._keys, self._keys_at = keys, self._clock()
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise IdentityError(f"the identity provider could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise IdentityError(f"the identity provider answered HTTP {response.status_code} for {url}")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise IdentityError(f"the identity provider's answer at {url} is not a JSON object")
        return document

    # --- the sign-in ---------------------------------------------------------------------------

    async def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        query = urlencode({
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        })
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def finish(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        """Trade the code for tokens and return the person in the validated ID token."""
        metadata = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier, "client_id": self.settings.client_id}
        auth: httpx2.BasicAuth | None = None
        secret = self.settings.client_secret.get_secret_value() if self.settings.client_secret else None
        if secret is not None:
            methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" in methods:
                auth = httpx2.BasicAuth(self.settings.client_id, secret)
            else:
                form["client_secret"] = secret
        try:
            response = await self._http.post(metadata["token_endpoint"], data=form,
                                             auth=auth or httpx2.USE_CLIENT_DEFAULT,
                                             headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise IdentityError(f"the identity provider's token endpoint could not be reached "
                                f"({type(exc).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise IdentityError(f"the identity provider refused the code (HTTP {response.status_code}"
                                f"{', ' + str(error)[:80] if error else ''})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityError("the identity provider's answer has no ID token (is `openid` among the scopes?)")
        return await self.validate(id_token, nonce=nonce)

    async def validate(self, id_token: str, *, nonce: str) -> Identity:
        """The ID token's person, after every check (OIDC Core §3.1.3.7); IdentityError says which failed."""
        allowed = list(self.settings.algorithms)
        keys = await self._keyset()
        try:
            token = jwt.decode(id_token, keys, algorithms=allowed)
        except JoseError as exc:
            if _unknown_key(exc):
                keys = await self._keyset(refresh=True)
                try:
                    token = jwt.decode(id_token, keys, algorithms=allowed)
                except JoseError as again:
                    raise _signature_error(again, allowed) from None
            else:
                raise _signature_error(exc, allowed) from None
        except ValueError:
            raise IdentityError("the ID token is not a well-formed JWT") from None
        issuer = (await self.metadata())["issuer"]
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        claims = token.claims
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise IdentityError("the ID token has expired (check the clocks of castproxy and the provider)") from None
        except MissingClaimError as exc:
            raise IdentityError(f"the ID token lacks the claim {exc.claim}") from None
        except InvalidClaimError as exc:
            raise IdentityError(_claim_message(exc.claim, claims, self.settings.client_id, issuer)) from None
        audiences = claims.get("aud")
        if isinstance(audiences, list) and len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise IdentityError("the ID token names several audiences but its azp is not castproxy's client_id")
        return identity_of(claims, self.settings.groups_claim)

    async def close(self) -> None:
        await self._http.aclose()


def _unknown_key(exc: JoseError) -> bool:
    return "key" in type(exc).__name__.lower() or "kid" in str(exc).lower()


def _signature_error(exc: JoseError, allowed: list[str]) -> IdentityError:
    name = type(exc).__name__
    if "algorithm" in name.lower() or "algorithm" in str(exc).lower():
        return IdentityError(f"the ID token is signed with an algorithm castproxy does not accept "
                             f"(allowed: {', '.join(allowed)})")
    return IdentityError(f"the ID token's signature does not verify with the provider's keys ({name})")


def _claim_message(claim: str, claims: dict[str, Any], client_id: str, issuer: str) -> str:
    if claim == "nonce":
        return "the ID token's nonce does not match this sign-in (a replayed or forged ID token)"
    if claim == "aud":
        return f"the ID token was issued for another client (audience is not {client_id!r})"
    if claim == "iss":
        return f"the ID token was issued by {str(claims.get('iss'))[:200]!r}, not {issuer!r}"
    if claim == "iat":
        return "the ID token was issued in the future (check the clocks of castproxy and the provider)"
    return f"the ID token's claim {claim} is invalid"
