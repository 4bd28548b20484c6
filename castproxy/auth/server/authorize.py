"""GET /authorize, the consent page and its POST, and the hand-off to the upstream sign-in.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import logging
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from castproxy.access.oidc import Identity
from castproxy.access.policy import Caller
from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.bodies import capped_form
from castproxy.auth.server.clients import Client, ClientLookupError
from castproxy.auth.server.errors import PAGE_HEADERS, OAuthError, error_page, template
from castproxy.auth.server.limits import caller_key
from castproxy.auth.server.records import NS_CONSENT, NS_PENDING, NS_SIGN_IN, AuthorizationRequest, Consent
from castproxy.auth.server.redirects import LOOPBACK_REDIRECT, is_registered, with_params
from castproxy.auth.upstream_oauth import UpstreamAuthError
from castproxy.config.loader import UPSTREAM_CALLBACK_PATH
from castproxy.origins import normalize_origin
from castproxy.store.crypto import hash_token
from castproxy.store.guard import StoreUnavailable

__all__ = ["CALLBACK_COOKIE", "SIGN_IN_COOKIE", "authorize", "consent", "redirect_error"]

log = logging.getLogger("castproxy.auth")

CSRF_COOKIE = "castproxy_csrf"
BROWSER_COOKIE = "castproxy_browser"
SIGN_IN_COOKIE = "castproxy_sign_in"
# Binds each pending upstream sign-in to the browser that started it, so that a callback carrying
# someone else's state (login CSRF, the MCP proxy "confused deputy") completes nothing.
CALLBACK_COOKIE = "castproxy_callback"
PENDING_TTL = 600.0  # time to read the consent page
SIGN_IN_TTL = 900.0  # time to sign in at the upstream
CONSENT_TTL = 30 * 86400.0
MAX_STATE_LENGTH = 512  # clients send ~43 random characters; the state is stored and sent back
# Requested by some clients to get refresh tokens; castproxy always issues them, so it is not a resource scope.
IGNORED_SCOPES = frozenset({"offline_access"})

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class _PageError(Exception):
    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # set for a rate limit: the page is a 429


def redirect_error(server: AuthServer, redirect_uri: str, state: str | None, error: str, description: str) -> Response:
    params = {"error": error, "error_description": description, "state": state, "iss": server.issuer}
    return RedirectResponse(with_params(redirect_uri, params), status_code=303, headers={"Cache-Control": "no-store"})


def _single(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name} given more than once")
    return values[0] if values else None


async def _client_and_redirect_uri(server: AuthServer, params: QueryParams, caller: str) -> tuple[Client, str]:
    try:
        client_id, redirect_uri = _single(params, "client_id"), _single(params, "redirect_uri")
    except OAuthError as exc:
        raise _PageError(exc.description) from None
    if not client_id:
        raise _PageError("The request has no client_id.")
    try:
        client = await server.clients.get(client_id, caller=caller)
    except ClientLookupError as exc:
        raise _PageError(f"The application could not be identified: {exc}", exc.retry_after) from None
    if not redirect_uri:
        raise _PageError("The request has no redirect_uri.")
    if not is_registered(client.redirect_uris, redirect_uri):
        raise _PageError(f"The redirect_uri {redirect_uri!r} is not registered for this application.")
    return client, redirect_uri


def _validate(server: AuthServer, client: Client, redirect_uri: str, params: QueryParams) -> AuthorizationRequest:
    for name in ("response_type", "state", "code_challenge", "code_challenge_method", "resource", "scope"):
        _single(params, name)
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise OAuthError("invalid_request", f"state longer than {MAX_STATE_LENGTH} characters")
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if not challenge:
        raise OAuthError("invalid_request", "PKCE is required: code_challenge is missing")
    if method != "S256":
        raise OAuthError(
            "invalid_request",
            f"code_challenge_method must be S256 (got {method or 'none'}; plain is not accepted)",
        )
    if not _CHALLENGE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge must be 43 base64url characters (S256)")
    resource = params.get("resource")
    if resource:
        entry = server.workspace_for_resource(resource)
        if entry is None:
            raise OAuthError(
                "invalid_target", f"resource {resource!r} is not a workspace of this proxy that uses sign-in"
            )
    else:
        # MCP clients must send `resource`; a client that does not still gets a token when only one
        # workspace could be meant. The token is bound to that workspace either way.
        candidates = server.sign_in_workspaces()
        if len(candidates) != 1:
            raise OAuthError("invalid_target", "resource is required: name the workspace URL ({public_url}/mcp/NAME)")
        entry = candidates[0]
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        workspace=entry.name,
        resource=entry.resource,
        scopes=granted_scopes(entry.name, entry.scopes, params.get("scope")),
    )


def granted_scopes(workspace: str, offered: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """What a client asking for `requested` is granted: those of its scopes the workspace offers (RFC 6749 §3.3
    lets the server grant less than asked), in the client's order. No scope, or only `offline_access`, means
    every scope the workspace offers. A request of which nothing is offered is refused."""
    wanted = [scope for scope in dict.fromkeys((requested or "").split()) if scope not in IGNORED_SCOPES]
    if not wanted:
        return offered
    granted = tuple(scope for scope in wanted if scope in offered)
    if not granted and offered:
        raise OAuthError(
            "invalid_scope",
            f"none of the requested scopes is offered by workspace {workspace} (it offers: {' '.join(offered)})",
        )
    return granted


async def authorize(server: AuthServer, request: Request) -> Response:
    params = request.query_params
    problem = await server.key_problem() if server.key_problem is not None else None
    if problem is not None:  # a sign-in now would write records the right key cannot read
        return error_page("Sign-in unavailable", f"This proxy is misconfigured: {problem}.", status=503)
    caller = caller_key(request.client.host if request.client else None)
    try:
        client, redirect_uri = await _client_and_redirect_uri(server, params, caller)
    except _PageError as exc:
        if exc.retry_after is not None:
            return error_page("Sign-in request refused", exc.message, status=429, retry_after=exc.retry_after)
        return error_page("Sign-in request refused", exc.message)
    state = params.get("state")
    try:
        wanted = _validate(server, client, redirect_uri, params)
    except OAuthError as exc:
        echoed = state if state is None or len(state) <= MAX_STATE_LENGTH else None  # not a long one back
        return redirect_error(server, redirect_uri, echoed, exc.error, exc.description)
    # Everything past here keeps records in the store: only so many sign-ins per caller, and in total.
    refused = server.sign_ins.admit(caller)
    if refused is not None:
        status, seconds, message = refused
        return error_page("Sign-in request refused", message, status=status, retry_after=seconds)
    if server.identity is not None:  # company sign-in first (castproxy.access): who is this person?
        person = await server.identity.person(request)
        if person is None:
            return await server.identity.start(request)
        entry = server.sign_in_workspace(wanted.workspace)
        if entry is not None and entry.access is not None and not entry.access.allows(_caller(person)):
            log.warning("sign-in refused by the workspace's access policy",
                        extra={"fields": {"workspace": wanted.workspace, "subject": person.subject,
                                          "email": person.email}})
            return error_page("Access refused", f"{person.shown} may not use workspace {wanted.workspace}: its "
                              "access policy allows other people or groups. Ask whoever runs castproxy for access.",
                              status=403)
        wanted = dataclasses.replace(wanted, subject=person.subject, email=person.email or "", groups=person.groups)
    await server.clients.touch(client)
    browser = request.cookies.get(BROWSER_COOKIE)
    forced = "consent" in (params.get("prompt") or "").split()
    # A URL client answered on loopback cannot be told from a local impostor: its warning is always shown.
    unverifiable = bool(_impersonation_warning(client, wanted.redirect_uri))
    if browser and _COOKIE_VALUE.match(browser) and not forced and not unverifiable:
        consent = Consent.decode(await server.store.get(NS_CONSENT, _consent_key(browser, wanted)))
        if consent is not None and set(wanted.scopes) <= set(consent.scopes):
            return await start_upstream(server, wanted, request)
    return await _consent_page(server, request, client, wanted)


def _consent_key(browser: str, wanted: AuthorizationRequest) -> str:
    """One approval per browser, person (company sign-in), client, workspace and redirect URI (a loopback URI's
    port aside)."""
    loopback = LOOPBACK_REDIRECT.match(wanted.redirect_uri)
    target = f"http://{loopback.group(1)}{loopback.group(3) or ''}" if loopback else wanted.redirect_uri
    person = f"\x00{wanted.subject}" if wanted.subject else ""
    return hash_token(f"{browser}\x00{wanted.client_id}\x00{wanted.workspace}\x00{target}{person}")


def _caller(person: Identity) -> Caller:
    return Caller(subject=person.subject, email=person.email, groups=frozenset(person.groups))


def _csrf_token(cookie: str, request_id: str) -> str:
    return hmac.new(cookie.encode(), request_id.encode(), hashlib.sha256).hexdigest()


def _set_cookie(server: AuthServer, response: Response, name: str, value: str, *, path: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=server.base_path + path,
        httponly=True,
        samesite="lax",
        secure=server.secure_cookies,
    )


async def _consent_page(server: AuthServer, request: Request, client: Client, wanted: AuthorizationRequest) -> Response:
    request_id = secrets.token_urlsafe(24)
    await server.store.put(NS_PENDING, request_id, wanted.encode(), ttl=PENDING_TTL)
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh_cookie = not (cookie and _COOKIE_VALUE.match(cookie))
    if fresh_cookie:
        cookie = secrets.token_urlsafe(32)
    assert cookie is not None
    scopes = ", ".join(f"<code>{html.escape(scope)}</code>" for scope in wanted.scopes) or "(no specific scopes)"
    body = template("consent.html").substitute(
        client_name=html.escape(client.client_name),
        client_kind=html.escape(client.kind),
        client_id=html.escape(client.client_id),
        redirect_uri=html.escape(wanted.redirect_uri),
        workspace=html.escape(wanted.workspace),
        resource=html.escape(wanted.resource),
        scopes=scopes,
        action=html.escape(server.url("/authorize/consent")),
        request_id=html.escape(request_id),
        csrf_token=_csrf_token(cookie, request_id),
        warning=_impersonation_warning(client, wanted.redirect_uri),
        person=_person_row(wanted),
        next_step="you sign in to the upstream service next" if _has_upstream(server, wanted) else
        "the application can use this workspace as you",
    )
    response = HTMLResponse(body, headers=PAGE_HEADERS)
    if fresh_cookie:
        _set_cookie(server, response, CSRF_COOKIE, cookie, path="/authorize", max_age=int(CONSENT_TTL))
    return response


def _person_row(wanted: AuthorizationRequest) -> str:
    if not wanted.subject:
        return ""
    shown = wanted.email or wanted.subject
    return f"<dt>Signed in as</dt><dd>{html.escape(shown)}</dd>\n"


def _has_upstream(server: AuthServer, wanted: AuthorizationRequest) -> bool:
    entry = server.sign_in_workspace(wanted.workspace)
    return entry is None or entry.per_user


def _impersonation_warning(client: Client, redirect_uri: str) -> str:
    """A URL client_id proves nothing when the answer goes to this computer: any local program could claim it."""
    if client.kind != "metadata document" or not LOOPBACK_REDIRECT.match(redirect_uri):
        return ""
    return (
        '<p class="warning">This application receives the sign-in on your own computer. Any program running on '
        "it could claim to be this application: approve only if you just started the sign-in yourself.</p>\n"
    )


def _same_origin(server: AuthServer, request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or normalize_origin(origin) == server.origin


async def consent(server: AuthServer, request: Request) -> Response:
    """POST /authorize/consent: the user's answer, accepted only with the CSRF token bound to this browser."""
    if not _same_origin(server, request):
        return error_page("Request refused", "The consent form was submitted from another site.", status=403)
    try:
        form = await capped_form(request)
    except OAuthError as exc:
        return error_page("Request refused", exc.description, status=exc.status)
    request_id, token = str(form.get("request_id") or ""), str(form.get("csrf_token") or "")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not token:
        return error_page("Request refused", "The consent form was submitted without its CSRF token.", status=403)
    if not cookie or not request_id or not hmac.compare_digest(token, _csrf_token(cookie, request_id)):
        return error_page("Request refused", "The consent form's CSRF token does not match this browser.", status=403)
    wanted = AuthorizationRequest.decode(await server.store.take(NS_PENDING, request_id))
    if wanted is None:
        return error_page(
            "Sign-in expired",
            "This sign-in request expired or was already answered. Start the sign-in again from your MCP client.",
        )
    server.events.consent(wanted.workspace, client_id=wanted.client_id,
                          decision="approve" if form.get("decision") == "approve" else "deny")
    if form.get("decision") != "approve":
        return redirect_error(server, wanted.redirect_uri, wanted.state, "access_denied", "the user denied access")
    try:
        response = await _upstream_redirect(server, wanted, request)
    except OAuthError as exc:
        return redirect_error(server, wanted.redirect_uri, wanted.state, exc.error, exc.description)
    browser = request.cookies.get(BROWSER_COOKIE)
    if not (browser and _COOKIE_VALUE.match(browser)):
        browser = secrets.token_urlsafe(32)
        _set_cookie(server, response, BROWSER_COOKIE, browser, path="/authorize", max_age=int(CONSENT_TTL))
    await server.store.put(NS_CONSENT, _consent_key(browser, wanted), Consent(wanted.scopes).encode(), ttl=CONSENT_TTL)
    return response


async def start_upstream(server: AuthServer, wanted: AuthorizationRequest, request: Request) -> Response:
    try:
        return await _upstream_redirect(server, wanted, request)
    except OAuthError as exc:
        return redirect_error(server, wanted.redirect_uri, wanted.state, exc.error, exc.description)


async def _upstream_redirect(server: AuthServer, wanted: AuthorizationRequest, request: Request) -> Response:
    """Send the browser to the upstream's sign-in; the callback finds this request again by the upstream state.

    The request is also bound to this browser by CALLBACK_COOKIE (kept across parallel sign-ins):
    the upstream state travels through the upstream and can be handed to another browser.
    """
    entry = server.sign_in_workspace(wanted.workspace)
    if entry is None:
        raise OAuthError("invalid_target", f"workspace {wanted.workspace} no longer uses sign-in")
    if entry.upstream is None or not entry.per_user:  # castproxy's own sign-in (server.identity): a code at once
        from castproxy.auth.server.callback import issue_code_for

        location = await issue_code_for(server, wanted, "cpg_" + secrets.token_urlsafe(24))
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    try:
        pending = await entry.upstream.start_sign_in(
            {"workspace": wanted.workspace, "client_id": wanted.client_id}, scopes=wanted.scopes
        )
    except Exception as exc:  # the upstream's metadata or registration endpoint failed, or the store
        # Our own errors carry safe sentences (e.g. "auth.token_url is not set and the metadata of X could not
        # be fetched"): log and pass those on; anything else only by its kind.
        known = isinstance(exc, UpstreamAuthError | StoreUnavailable)
        log.warning("upstream sign-in could not start for workspace %s: %s", wanted.workspace,
                    str(exc) if known else type(exc).__name__)
        reason = f"the upstream sign-in could not start: {exc}" if known else (
            "the upstream authorization server could not be reached; try again later")
        raise OAuthError("temporarily_unavailable", reason) from None
    response = RedirectResponse(pending.url, status_code=303, headers={"Cache-Control": "no-store"})
    binding = request.cookies.get(CALLBACK_COOKIE)
    if not (binding and _COOKIE_VALUE.match(binding)):
        binding = secrets.token_urlsafe(32)
    # Path "/": /authorize and the consent POST must see it too, to reuse it for parallel sign-ins.
    # Refreshed on every sign-in, so a pending one never outlives its cookie.
    _set_cookie(server, response, CALLBACK_COOKIE, binding, path="/", max_age=int(SIGN_IN_TTL))
    wanted = dataclasses.replace(wanted, browser=hash_token(binding))
    if "state" in parse_qs(urlsplit(pending.url).query):
        key = pending.state
    else:  # an upstream configured without state: find the request again by a cookie instead
        key = secrets.token_urlsafe(32)
        _set_cookie(server, response, SIGN_IN_COOKIE, key, path=UPSTREAM_CALLBACK_PATH, max_age=int(SIGN_IN_TTL))
        wanted = dataclasses.replace(wanted, upstream_state=pending.state)
    await server.store.put(NS_SIGN_IN, hash_token(key), wanted.encode(), ttl=SIGN_IN_TTL)
    return response
