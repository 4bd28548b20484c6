"""castproxy as an OAuth client of the upstream API: sign-in, token storage, refresh, service tokens.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2
from pydantic import TypeAdapter

from castproxy.auth.credentials import AuthError, SignInRequired
from castproxy.auth.events import NO_EVENTS, AuthEvents
from castproxy.auth.pkce import s256_challenge
from castproxy.auth.upstream_metadata import (
    MetadataError,
    fetch_metadata,
    fetch_origin_metadata,
    origin,
    register_client,
)
from castproxy.auth.upstream_tokens import (
    ClientIdentity,
    TokenEndpointError,
    TokenSet,
    authenticate_client,
    request_token,
    safe_word,
)
from castproxy.config.model import OAuth2Auth
from castproxy.store.base import LockTimeout, MalformedRecord, Store, decode_record
from castproxy.store.crypto import Cipher, InvalidCiphertext, UnknownKey, hash_token, record_aad
from castproxy.store.locks import KeyedLocks
from castproxy.tls import outbound_tls

__all__ = [
    "NS_CLIENT", "NS_GRANT", "PendingSignIn", "SignInError", "SignInRefused", "SignInResult", "UpstreamAuthError",
    "UpstreamOAuth", "safe_description",
]

log = logging.getLogger(__name__)

NS_PENDING = "upstream-signin"
NS_GRANT = "upstream-grant"
NS_CLIENT = "upstream-client"

SIGN_IN_TTL = 600.0
LOCK_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
GRANT_IDLE_TTL = 90 * 24 * 3600.0  # a grant unused (never refreshed) this long is dropped
OFFLINE_ACCESS = "offline_access"  # asks the upstream for a refresh token: castproxy's need, not the client's

# RFC 8414 metadata name -> the config field that can set it instead.
_CONFIG_FIELD = {
    "authorization_endpoint": "authorization_url",
    "token_endpoint": "token_url",
    "registration_endpoint": "registration_url",
    "revocation_endpoint": "revocation_url",
}


class UpstreamAuthError(AuthError):
    """The upstream OAuth server failed or refused castproxy itself; the message is safe to show."""


class SignInError(UpstreamAuthError):
    """A sign-in cannot complete; the message is safe to show to the user."""


class SignInRefused(SignInError):
    """The upstream answered the sign-in with an OAuth error; `error` and `description` are its own, made safe."""

    def __init__(self, error: str, description: str) -> None:
        shown = f"{error}: {description}" if description else error
        super().__init__(f"The upstream refused the sign-in ({shown}).")
        self.error = error
        self.description = description


def safe_description(value: object, limit: int = 300) -> str:
    """An upstream error_description as RFC 6749 allows it (printable ASCII but " and \\), cut to `limit`."""
    if not isinstance(value, str):
        return ""
    text = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in value).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class SignInResult:
    grant_id: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingSignIn:
    url: str = field(repr=False)
    state: str = field(repr=False)


# The records kept in the store, encrypted; one that does not decode as its kind reads as absent.
@dataclass(frozen=True)
class _Pending:  # a sign-in sent to the upstream, under its state's hash
    workspace: str
    verifier: str | None  # PKCE
    context: dict[str, Any]  # the caller's, handed back by complete_sign_in
    client_id: str  # castproxy's at the upstream when the sign-in started
    scopes: tuple[str, ...]  # asked of the upstream
    expires_at: float


@dataclass(frozen=True, kw_only=True)
class _Registration(ClientIdentity):  # castproxy's client at a dcr upstream, and what it was registered for
    registration_url: str
    token_endpoint: str  # _token_endpoint_identity()
    redirect_uri: str
    grant: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class _Grant(TokenSet):  # a signed-in user's tokens, under the grant id
    upstream: str = ""  # upstream_binding() of the upstream that issued the tokens


_PENDING, _REGISTRATION, _GRANT = TypeAdapter(_Pending), TypeAdapter(_Registration), TypeAdapter(_Grant)


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# What _open_grant answers for a grant bound to another upstream (see upstream_binding).
_FOREIGN = TokenSet(access_token="", refresh_token=None, expires_at=None, obtained_at=0.0)


def _must_refresh(tokens: TokenSet, rejected: str | None, now: float) -> bool:
    return tokens.needs_refresh(now) or (rejected is not None and tokens.access_token == rejected)


def _canonical_url(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def upstream_binding(auth: OAuth2Auth, base_url: str | None) -> str:
    """Who a grant belongs to: the upstream's issuer and token endpoint, castproxy's client there, and the origin
    of the API the tokens are sent to. A grant stored under another binding is never used (nor sent anywhere)."""
    client = auth.client_id or "" if auth.provider == "custom" else f"dcr {_canonical_url(auth.registration_url)}"
    parts = (_canonical_url(auth.issuer), _canonical_url(auth.token_url), client, origin(base_url) if base_url else "")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _grant_ref(grant_id: str) -> str:
    """What logs say instead of the grant id."""
    return hash_token(grant_id)[:12]


class UpstreamOAuth:
    def __init__(
        self,
        workspace: str,
        auth: OAuth2Auth,
        *,
        store: Store,
        cipher: Cipher,
        callback_url: str,
        http: httpx2.AsyncClient | None = None,
        sign_in_ttl: float = SIGN_IN_TTL,
        events: AuthEvents = NO_EVENTS,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = workspace
        self._clock = clock  # what token and sign-in expiry is read against (tests advance their own)
        self._events = events  # refresh outcomes, for the audit trail and metrics
        self.auth = auth
        # What every grant of this workspace is bound to; `base_url` is the API the tokens go to.
        self.binding = upstream_binding(auth, base_url)
        self.store = store
        self.cipher = cipher
        self.callback_url = callback_url
        self.sign_in_ttl = sign_in_ttl
        self._own_http = http is None
        self._http = http or httpx2.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False, verify=outbound_tls())
        self._local = KeyedLocks()
        self._metadata: dict[str, Any] | None = None
        self._metadata_loaded = False
        self._origin_metadata: dict[str, Any] | None = None
        self._origin_metadata_loaded = False
        self._service: TokenSet | None = None

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ---- endpoints and client identity -------------------------------------------------------------

    async def _issuer_metadata(self) -> dict[str, Any] | None:
        if not self._metadata_loaded and self.auth.issuer:
            self._metadata = await fetch_metadata(self._http, self.auth.issuer)
            self._metadata_loaded = self._metadata is not None  # retry later when it failed
        return self._metadata

    async def _endpoint(self, name: str, configured: str | None, *, required: bool = True) -> str | None:
        if configured:
            return configured
        metadata = await self._issuer_metadata()
        value = metadata.get(name) if metadata else None
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
        if not required:
            return None
        field_name = _CONFIG_FIELD[name]
        if not self.auth.issuer:
            reason = f"auth.{field_name} is not set (nor auth.issuer to discover it)"
        elif metadata is None:
            reason = f"auth.{field_name} is not set and the metadata of {self.auth.issuer} could not be fetched"
        else:
            reason = f"auth.{field_name} is not set and the metadata of {self.auth.issuer} has no {name}"
        raise UpstreamAuthError(f"workspace {self.workspace}: {reason}")

    async def _token_url(self) -> str:
        url = await self._endpoint("token_endpoint", self.auth.token_url)
        assert url is not None
        return url

    def _client_aad(self) -> bytes:
        return record_aad(NS_CLIENT, self.workspace)

    def _registration_fits(self, record: _Registration, registration_url: str) -> bool:
        # A change of endpoint, callback, grant or scopes in the config needs a new registration,
        # and so does a client secret about to expire (RFC 7591 client_secret_expires_at).
        return (
            record.registration_url == registration_url
            and record.token_endpoint == self._token_endpoint_identity()
            and record.redirect_uri == self.callback_url
            and record.grant == self.auth.grant
            and record.scopes == tuple(self.auth.scopes)
            and not (record.secret_expires_at and self._clock() >= record.secret_expires_at - 60)
        )

    def _token_endpoint_identity(self) -> str:
        # The registered client's secret goes to the token endpoint: a registration is not reused for another one.
        return f"{_canonical_url(self.auth.issuer)} {_canonical_url(self.auth.token_url)}"

    async def _stored_client(self, registration_url: str) -> ClientIdentity | None:
        blob = await self.store.get(NS_CLIENT, self.workspace)
        if blob is None:
            return None
        try:
            record = decode_record(_REGISTRATION, self.cipher.decrypt(blob, aad=self._client_aad()), "registration")
        except UnknownKey:  # never registered again over it: the right key will read it
            raise UpstreamAuthError(
                f"workspace {self.workspace}: castproxy's upstream registration is encrypted with a key this "
                "server does not hold (check server.secret_key)"
            ) from None
        except (InvalidCiphertext, MalformedRecord):
            return None
        return record if self._registration_fits(record, registration_url) else None

    async def _client(self) -> ClientIdentity:
        if self.auth.provider == "custom":
            if not self.auth.client_id:
                raise UpstreamAuthError(f"workspace {self.workspace}: auth.client_id is not set")
            secret = self.auth.client_secret.get_secret_value() if self.auth.client_secret else None
            return ClientIdentity(self.auth.client_id, secret, self.auth.token_endpoint_auth_method)
        # Read from the store every time (sign-ins, refreshes and service tokens are rare): a
        # registration renewed by another replica is picked up at once.
        registration_url = await self._endpoint("registration_endpoint", self.auth.registration_url)
        assert registration_url is not None
        client = await self._stored_client(registration_url)
        if client is None:
            async with (
                self._local.hold("register", LOCK_TIMEOUT),
                self.store.lock(f"upstream-register:{self.workspace}", LOCK_TIMEOUT),
            ):
                # Another coroutine or replica may have registered while we waited.
                client = await self._stored_client(registration_url)
                if client is None:
                    client = await self._register(registration_url)
        return client

    async def _register(self, registration_url: str) -> ClientIdentity:
        try:
            client = await register_client(
                self._http,
                registration_url,
                redirect_uri=self.callback_url,
                grant=self.auth.grant,
                scopes=self.auth.scopes,
                auth_method=self.auth.token_endpoint_auth_method,
            )
        except MetadataError as exc:
            raise UpstreamAuthError(f"workspace {self.workspace}: {exc}") from None
        record = _Registration(**asdict(client), registration_url=registration_url,
                               token_endpoint=self._token_endpoint_identity(), redirect_uri=self.callback_url,
                               grant=self.auth.grant, scopes=tuple(self.auth.scopes))
        blob = self.cipher.encrypt(_REGISTRATION.dump_json(record), aad=self._client_aad())
        await self.store.put(NS_CLIENT, self.workspace, blob)
        log.info("workspace %s: registered castproxy at the upstream (dcr)", self.workspace)
        return client

    async def _forget_client(self, rejected: ClientIdentity) -> None:
        """The upstream rejected this registered client: drop it so the next use registers again."""
        if self.auth.provider != "dcr":
            return
        async with self.store.lock(f"upstream-register:{self.workspace}", LOCK_TIMEOUT):
            registration_url = await self._endpoint("registration_endpoint", self.auth.registration_url)
            assert registration_url is not None
            stored = await self._stored_client(registration_url)
            # Only when it is still the rejected one: another replica may have re-registered already.
            if stored is None or stored.client_id == rejected.client_id:
                await self.store.delete(NS_CLIENT, self.workspace)
        log.warning("workspace %s: the upstream rejected castproxy's registration; registering again", self.workspace)

    def _resource_params(self) -> dict[str, str]:
        audience = self.auth.audience
        if not audience:
            return {}
        # RFC 8707 `resource` needs an absolute URI; `audience` is what several providers expect instead.
        if "://" in audience:
            return {"resource": audience, "audience": audience}
        return {"audience": audience}

    # ---- sign-in (authorization_code) --------------------------------------------------------------

    def _upstream_scopes(self, granted: Sequence[str] | None) -> list[str]:
        """The scopes to ask the upstream for: those castproxy granted its client (all configured ones when
        None), plus `offline_access` when configured: that one gets castproxy its refresh token, whatever
        the client asked for."""
        if granted is None:
            return list(self.auth.scopes)
        wanted = [scope for scope in granted if scope in self.auth.scopes]
        if OFFLINE_ACCESS in self.auth.scopes and OFFLINE_ACCESS not in wanted:
            wanted.append(OFFLINE_ACCESS)
        return wanted

    def _warn_if_wider(self, tokens: TokenSet, asked: Sequence[str]) -> None:
        # Only configured scopes count: upstreams add or rename others (openid, resource-prefixed names).
        extra = sorted((set(tokens.scopes) & set(self.auth.scopes)) - set(asked))
        if extra:
            log.warning(
                "workspace %s: the upstream granted more than castproxy asked for (%s)", self.workspace, " ".join(extra)
            )

    async def start_sign_in(self, context: dict[str, Any], *, scopes: Sequence[str] | None = None) -> PendingSignIn:
        """Save a pending sign-in; the upstream authorization URL to send the browser to, and the state.

        `scopes`: what castproxy granted the MCP client (a subset of `auth.scopes`); the upstream is asked
        for those only, so the upstream token can do no more than the client was allowed.
        """
        if self.auth.grant != "authorization_code":
            raise SignInError(f"workspace {self.workspace} uses client_credentials: there is no user sign-in")
        try:
            authorization_url = await self._endpoint("authorization_endpoint", self.auth.authorization_url)
            client = await self._client()
        except UpstreamAuthError as exc:
            raise SignInError(str(exc)) from None
        assert authorization_url is not None
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48) if self.auth.pkce else None
        asked = self._upstream_scopes(scopes)
        record = _Pending(workspace=self.workspace, verifier=verifier, context=context, client_id=client.client_id,
                          scopes=tuple(asked), expires_at=self._clock() + self.sign_in_ttl)
        key = hash_token(state)
        blob = self.cipher.encrypt(_PENDING.dump_json(record), aad=record_aad(NS_PENDING, key))
        await self.store.put(NS_PENDING, key, blob, ttl=self.sign_in_ttl)
        params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": self.callback_url}
        if asked:
            params["scope"] = " ".join(asked)
        if self.auth.state:
            params["state"] = state
        if verifier is not None:
            params["code_challenge"] = s256_challenge(verifier)
            params["code_challenge_method"] = "S256"
        params.update(self._resource_params())
        return PendingSignIn(url=_with_query(authorization_url, params), state=state)

    async def _take_pending(self, state: str | None) -> _Pending:
        if not state:
            raise SignInError("The sign-in answer carries no state. Start the sign-in again.")
        key = hash_token(state)
        record = self.cipher.open_record(_PENDING, await self.store.take(NS_PENDING, key), NS_PENDING, key)
        if record is None or record.expires_at <= self._clock():
            raise SignInError("The sign-in state is unknown, already used or expired. Start the sign-in again.")
        if record.workspace != self.workspace:
            raise SignInError("The sign-in state belongs to another workspace. Start the sign-in again.")
        return record

    async def _check_issuer(self, params: Mapping[str, str]) -> None:
        """RFC 9207: the answer must come from the authorization server we sent the user to."""
        iss = params.get("iss")
        metadata = await self._issuer_metadata() if self.auth.issuer else None
        if iss is None:
            if metadata and metadata.get("authorization_response_iss_parameter_supported") is True:
                raise SignInError("The sign-in answer lacks the iss parameter its server announces. Sign in again.")
            return
        expected = self.auth.issuer
        if expected is None:
            if not self._origin_metadata_loaded:
                self._origin_metadata = await fetch_origin_metadata(self._http, await self._token_url())
                self._origin_metadata_loaded = True
            found = (self._origin_metadata or {}).get("issuer")
            expected = found if isinstance(found, str) else None
        if expected is not None:
            matches = iss.rstrip("/") == expected.rstrip("/")
        else:
            matches = origin(iss) == origin(await self._token_url())
        if not matches:
            raise SignInError("The sign-in answer came from a different authorization server (iss mismatch).")

    async def complete_sign_in(self, params: Mapping[str, str], *, state: str | None = None) -> SignInResult:
        """Finish a sign-in from the callback's query parameters; `state` only when `state: false`."""
        record = await self._take_pending(params.get("state") if self.auth.state else state)
        error = params.get("error")
        if error is not None:
            refusal = safe_word(error)
            if refusal in ("invalid_client", "unauthorized_client") and self.auth.provider == "dcr":
                await self._forget_client(ClientIdentity(record.client_id))
            raise SignInRefused(refusal, safe_description(params.get("error_description")))
        try:
            await self._check_issuer(params)
        except UpstreamAuthError as exc:
            raise SignInError(str(exc)) from None
        code = params.get("code")
        if not code:
            raise SignInError("The sign-in answer carries no authorization code. Start the sign-in again.")
        try:
            client = await self._client()
            token_url = await self._token_url()
        except UpstreamAuthError as exc:
            raise SignInError(str(exc)) from None
        if client.client_id != record.client_id:
            raise SignInError("castproxy's registration at the upstream changed during the sign-in. Sign in again.")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.callback_url}
        if record.verifier:
            form["code_verifier"] = record.verifier
        form.update(self._resource_params())
        asked = list(record.scopes)
        try:
            tokens = await request_token(self._http, token_url, form, client, requested_scopes=asked, clock=self._clock)
        except TokenEndpointError as exc:
            if exc.error in ("invalid_client", "unauthorized_client"):
                await self._forget_client(client)
            log.warning("workspace %s: code exchange failed: %s", self.workspace, exc)
            raise SignInError(f"The upstream did not accept the sign-in: {exc}. Start the sign-in again.") from None
        self._warn_if_wider(tokens, asked)
        grant_id = secrets.token_urlsafe(32)
        await self._write_grant(grant_id, tokens)
        log.info("workspace %s: upstream sign-in complete (grant %s)", self.workspace, _grant_ref(grant_id))
        return SignInResult(grant_id=grant_id, context=record.context)

    # ---- grants ------------------------------------------------------------------------------------

    def _grant_aad(self, grant_id: str) -> bytes:
        # Bound to the workspace too: a grant id presented on another workspace does not decrypt.
        return record_aad(f"{NS_GRANT}/{self.workspace}", grant_id)

    def _open_grant(self, grant_id: str, blob: bytes) -> TokenSet | None:
        """The tokens in a stored grant; None when it does not decrypt or belongs to another upstream."""
        try:
            grant = decode_record(_GRANT, self.cipher.decrypt(blob, aad=self._grant_aad(grant_id)), "upstream grant")
        except UnknownKey:
            # The key problem itself is caught at the door (AuthBridge.key_problem: 503, records kept). A grant
            # only this record's key cannot read was written under a key since retired from previous_secret_keys.
            # Kept all the same (the key may come back); this sign-in cannot be used meanwhile.
            raise SignInRequired(
                "this sign-in's stored upstream tokens were encrypted with a secret key this server no longer holds"
            ) from None
        except (InvalidCiphertext, MalformedRecord):
            # A tampered record: "no grant". Kept, so nothing is lost if it is a key problem after all.
            log.warning(
                "workspace %s: grant %s does not decrypt; sign-in required", self.workspace, _grant_ref(grant_id)
            )
            return None
        if grant.upstream != self.binding:
            log.warning(
                "workspace %s: grant %s was issued by another upstream (issuer, token endpoint, client or base URL "
                "changed in the config); dropped unused, sign-in required",
                self.workspace,
                _grant_ref(grant_id),
            )
            return _FOREIGN
        return grant

    async def _read_grant(self, grant_id: str) -> TokenSet | None:
        blob = await self.store.get(NS_GRANT, grant_id)
        if blob is None:
            return None
        tokens = self._open_grant(grant_id, blob)
        if tokens is _FOREIGN:
            # Its tokens belong to an upstream this workspace no longer uses: never sent anywhere, forgotten.
            await self.store.delete(NS_GRANT, grant_id)
            return None
        return tokens

    async def _write_grant(self, grant_id: str, tokens: TokenSet) -> None:
        remaining = None if tokens.expires_at is None else max(1.0, tokens.expires_at - self._clock())
        if tokens.refresh_token is None:
            ttl = remaining  # useless once the access token expired
        else:
            # An abandoned grant does not stay forever; every refresh renews this.
            ttl = GRANT_IDLE_TTL if remaining is None else max(GRANT_IDLE_TTL, remaining)
        grant = _Grant(**{**asdict(tokens), "upstream": self.binding})
        blob = self.cipher.encrypt(_GRANT.dump_json(grant), aad=self._grant_aad(grant_id))
        # One write replaces access and (rotated) refresh token together.
        await self.store.put(NS_GRANT, grant_id, blob, ttl=ttl)

    async def access_token(self, grant_id: str, *, rejected: str | None = None) -> str:
        """A valid upstream access token for this grant, refreshed ahead of expiry; SignInRequired if none.

        `rejected` is a token of this grant that the upstream refused with 401 before its expiry
        (revoked, signing keys rotated). If it is still the stored token, the grant is refreshed now;
        calls refused with the same token share that one refresh (same locks, re-read under them),
        and a call whose token was already replaced gets the replacement. A grant that cannot be
        refreshed (invalid_grant, no refresh token) is deleted and SignInRequired is raised.
        """
        tokens = await self._read_grant(grant_id)
        if tokens is None:
            raise SignInRequired(f"no upstream grant for workspace {self.workspace}")
        if not _must_refresh(tokens, rejected, self._clock()):
            return tokens.access_token
        try:
            async with (
                self._local.hold(f"grant:{grant_id}", LOCK_TIMEOUT),
                self.store.lock(f"upstream-refresh:{self.workspace}:{grant_id}", LOCK_TIMEOUT),
            ):
                # Whoever held the lock before us may have refreshed already.
                tokens = await self._read_grant(grant_id)
                if tokens is None:
                    raise SignInRequired(f"no upstream grant for workspace {self.workspace}")
                if not _must_refresh(tokens, rejected, self._clock()):
                    return tokens.access_token
                refused = rejected is not None and tokens.access_token == rejected
                return (await self._refresh(grant_id, tokens, refused=refused)).access_token
        except LockTimeout:
            if tokens is not None and tokens.access_token != rejected and not tokens.expired(self._clock()):
                return tokens.access_token
            raise UpstreamAuthError(f"workspace {self.workspace}: timed out waiting for a token refresh") from None

    async def narrow(self, grant_id: str, scopes: Sequence[str]) -> None:
        """Make the upstream grant hold no configured scope beyond `scopes` (castproxy's client narrowed its
        sign-in with a refresh): a refresh asking the upstream for those scopes only. Raises
        UpstreamAuthError when the upstream cannot or will not narrow it, SignInRequired when it is gone."""
        allowed = self._upstream_scopes(scopes)
        try:
            async with (
                self._local.hold(f"grant:{grant_id}", LOCK_TIMEOUT),
                self.store.lock(f"upstream-refresh:{self.workspace}:{grant_id}", LOCK_TIMEOUT),
            ):
                tokens = await self._read_grant(grant_id)
                if tokens is None:
                    raise SignInRequired(f"no upstream grant for workspace {self.workspace}")
                if not self._beyond(tokens, allowed):
                    return
                if tokens.refresh_token is None:
                    reason = "the upstream gave no refresh token, so its grant cannot be narrowed"
                    raise UpstreamAuthError(f"workspace {self.workspace}: {reason}")
                fresh = await self._refresh(grant_id, tokens, scopes=allowed)
        except LockTimeout:
            raise UpstreamAuthError(f"workspace {self.workspace}: timed out waiting for a token refresh") from None
        extra = self._beyond(fresh, allowed)
        if extra:
            raise UpstreamAuthError(
                f"workspace {self.workspace}: the upstream did not narrow the grant (it still grants {' '.join(extra)})"
            )

    def _beyond(self, tokens: TokenSet, allowed: Sequence[str]) -> list[str]:
        """The configured scopes `tokens` hold beyond `allowed` (scopes not in the config are the upstream's own)."""
        return sorted((set(tokens.scopes) & set(self.auth.scopes)) - set(allowed))

    async def _refresh(
        self, grant_id: str, tokens: TokenSet, *, refused: bool = False, scopes: Sequence[str] | None = None
    ) -> TokenSet:
        """Refresh the grant; `refused`: the upstream already refused its access token, so it is never kept;
        `scopes`: ask for these (narrower) scopes, and fail rather than keep the old tokens."""
        if refused:
            log.info(
                "workspace %s: the upstream refused the access token of grant %s before its expiry; refreshing",
                self.workspace,
                _grant_ref(grant_id),
            )
        if tokens.refresh_token is None:
            if refused or tokens.expired(self._clock()):
                await self.store.delete(NS_GRANT, grant_id)
                what = "refused" if refused else "expired"
                raise SignInRequired(
                    f"the upstream {what} the access token of workspace {self.workspace} and gave no refresh token"
                )
            return tokens
        client = await self._client()
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, **self._resource_params()}
        if scopes is not None:
            form["scope"] = " ".join(scopes)
        try:
            fresh = await request_token(
                self._http,
                await self._token_url(),
                form,
                client,
                requested_scopes=tokens.scopes if scopes is None else tuple(scopes),
                previous_refresh_token=tokens.refresh_token,
                clock=self._clock,
            )
        except TokenEndpointError as exc:
            rejected_client = exc.error in ("invalid_client", "unauthorized_client") and self.auth.provider == "dcr"
            if exc.error == "invalid_grant" or rejected_client:
                await self.store.delete(NS_GRANT, grant_id)
                if rejected_client:
                    await self._forget_client(client)
                log.info(
                    "workspace %s: grant %s refused on refresh (%s); sign-in required",
                    self.workspace,
                    _grant_ref(grant_id),
                    exc.error,
                )
                self._events.token_refresh(self.workspace, outcome="sign_in_required", grant=_grant_ref(grant_id),
                                           reason=exc.error)
                raise SignInRequired(f"the upstream grant of workspace {self.workspace} is no longer valid") from None
            log.warning("workspace %s: token refresh failed: %s", self.workspace, exc)
            self._events.token_refresh(self.workspace, outcome="failed", grant=_grant_ref(grant_id), reason=exc.error)
            if scopes is None and not refused and not tokens.expired(self._clock()):
                return tokens  # still usable; the next call tries again
            raise UpstreamAuthError(f"workspace {self.workspace}: {exc}") from None
        await self._write_grant(grant_id, fresh)
        log.info("workspace %s: upstream token refreshed (grant %s)", self.workspace, _grant_ref(grant_id))
        self._events.token_refresh(self.workspace, outcome="ok", grant=_grant_ref(grant_id))
        return fresh

    async def revoke(self, grant_id: str) -> None:
        """Forget the grant and, when the upstream has a revocation endpoint, revoke its tokens there."""
        blob = await self.store.take(NS_GRANT, grant_id)
        if blob is None:
            return
        try:
            tokens = self._open_grant(grant_id, blob)
        except SignInRequired:
            return
        if tokens is None or tokens is _FOREIGN:  # another upstream's tokens are not sent to this one's endpoint
            return
        try:
            revocation_url = await self._endpoint("revocation_endpoint", self.auth.revocation_url, required=False)
            client = await self._client()
        except UpstreamAuthError:
            return
        if revocation_url is None:
            return
        token, hint = (
            (tokens.refresh_token, "refresh_token") if tokens.refresh_token else (tokens.access_token, "access_token")
        )
        form = {"token": token, "token_type_hint": hint}
        headers: dict[str, str] = {}
        authenticate_client(form, headers, client)
        try:
            response = await self._http.post(revocation_url, data=form, headers=headers)
            if response.status_code >= 400:
                log.warning("workspace %s: upstream revocation answered HTTP %s", self.workspace, response.status_code)
        except httpx2.HTTPError as exc:
            log.warning("workspace %s: upstream revocation failed: %s", self.workspace, exc.__class__.__name__)

    # ---- client_credentials --------------------------------------------------------------------------

    async def service_token(self, *, rejected: str | None = None) -> str:
        """The workspace's shared token (`grant: client_credentials`), fetched once however many wait.

        `rejected`: a service token the upstream refused with 401; if it is still the current one it
        is dropped and a new one fetched (once, however many calls it was refused on).
        """
        service = self._service
        if service is not None and not service.needs_refresh(self._clock()) and service.access_token != rejected:
            return service.access_token
        try:
            async with self._local.hold("service", LOCK_TIMEOUT):
                service = self._service
                if service is not None and rejected is not None and service.access_token == rejected:
                    log.info("workspace %s: the upstream refused the service token; fetching a new one", self.workspace)
                    self._service = service = None  # never fall back to the refused token
                if service is None or service.needs_refresh(self._clock()):
                    self._service = service = await self._fetch_service_token()
                return service.access_token
        except LockTimeout:
            raise UpstreamAuthError(f"workspace {self.workspace}: timed out waiting for a service token") from None

    async def _fetch_service_token(self) -> TokenSet:
        form = {"grant_type": "client_credentials", **self._resource_params()}
        if self.auth.scopes:
            form["scope"] = " ".join(self.auth.scopes)
        for attempt in (1, 2):
            client = await self._client()
            try:
                fresh = await request_token(
                    self._http, await self._token_url(), form, client, requested_scopes=self.auth.scopes,
                    clock=self._clock,
                )
                self._events.token_refresh(self.workspace, outcome="ok")
                return fresh
            except TokenEndpointError as exc:
                rejected = exc.error in ("invalid_client", "unauthorized_client")
                if rejected and self.auth.provider == "dcr" and attempt == 1:
                    await self._forget_client(client)
                    continue
                log.warning("workspace %s: client_credentials token request failed: %s", self.workspace, exc)
                self._events.token_refresh(self.workspace, outcome="failed", reason=exc.error)
                if self._service is not None and not self._service.expired(self._clock()):
                    return self._service
                raise UpstreamAuthError(f"workspace {self.workspace}: {exc}") from None
        raise AssertionError("unreachable")
