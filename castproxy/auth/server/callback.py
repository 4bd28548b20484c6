"""GET /oauth/callback: the upstream sends the browser back here; castproxy answers its own client.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from castproxy.auth.events import grant_ref
from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.authorize import CALLBACK_COOKIE, SIGN_IN_COOKIE, redirect_error
from castproxy.auth.server.errors import error_page
from castproxy.auth.server.records import NS_SIGN_IN, AuthorizationRequest, CodeRecord, GrantRecord
from castproxy.auth.server.redirects import with_params
from castproxy.auth.upstream_oauth import SignInError, SignInRefused
from castproxy.config.loader import UPSTREAM_CALLBACK_PATH
from castproxy.store.crypto import hash_token
from castproxy.store.guard import StoreUnavailable

__all__ = ["callback", "issue_code_for"]

log = logging.getLogger("castproxy.auth")

# Upstream error codes passed on to the client as they are; anything else reads as a denial.
_PASSED_ON = frozenset({"access_denied", "invalid_scope", "temporarily_unavailable", "server_error"})


async def callback(server: AuthServer, request: Request) -> Response:
    params = {key: value for key, value in request.query_params.items()}
    key = params.get("state") or request.cookies.get(SIGN_IN_COOKIE)
    wanted = AuthorizationRequest.decode(await server.store.take(NS_SIGN_IN, hash_token(key))) if key else None
    if wanted is None:
        return error_page(
            "Sign-in failed",
            "This sign-in is unknown, expired or was already completed (the state does not match a pending "
            "sign-in). Start the sign-in again from your MCP client.",
        )
    binding = request.cookies.get(CALLBACK_COOKIE) or ""
    if not wanted.browser or not hmac.compare_digest(hash_token(binding), wanted.browser):
        # Taken anyway: a sign-in whose state reached another browser is not trusted any more.
        log.warning("upstream callback refused: the sign-in was started in another browser (%s)", wanted.workspace)
        return error_page(
            "Sign-in refused",
            "This sign-in was started in another browser (or its cookies were blocked). Start the sign-in again "
            "from your MCP client, in this browser.",
            status=400,
        )
    entry = server.sign_in_workspace(wanted.workspace)
    if entry is None:
        return redirect_error(
            server, wanted.redirect_uri, wanted.state, "invalid_target", f"workspace {wanted.workspace} is gone"
        )
    upstream_error = params.get("error", "")
    if entry.upstream is None or not entry.per_user:  # the workspace stopped using an upstream sign-in meanwhile
        return redirect_error(server, wanted.redirect_uri, wanted.state, "invalid_target",
                              f"workspace {wanted.workspace} has no upstream sign-in any more")
    try:
        outcome = await entry.upstream.complete_sign_in(params, state=wanted.upstream_state or None)
    except SignInRefused as exc:
        return _refused(server, wanted, exc)
    except StoreUnavailable as exc:
        return redirect_error(server, wanted.redirect_uri, wanted.state, "temporarily_unavailable", str(exc))
    except SignInError as exc:
        error = upstream_error if upstream_error in _PASSED_ON else "access_denied"
        server.events.sign_in(wanted.workspace, outcome="failed", client_id=wanted.client_id, reason=error)
        return redirect_error(server, wanted.redirect_uri, wanted.state, error, f"upstream sign-in failed: {exc}")
    except Exception as exc:
        log.warning("upstream sign-in failed for workspace %s: %s", wanted.workspace, type(exc).__name__)
        server.events.sign_in(wanted.workspace, outcome="failed", client_id=wanted.client_id, reason="server_error")
        return redirect_error(
            server, wanted.redirect_uri, wanted.state, "server_error", "the upstream sign-in could not be completed"
        )
    location = await issue_code_for(server, wanted, outcome.grant_id)
    response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    if not params.get("state"):
        response.delete_cookie(SIGN_IN_COOKIE, path=server.base_path + UPSTREAM_CALLBACK_PATH)
    return response


def _refused(server: AuthServer, wanted: AuthorizationRequest, exc: SignInRefused) -> Response:
    """The upstream answered with an OAuth error. The user's own "no" goes straight back to the application;
    anything else is a setting between castproxy and the upstream (e.g. `pkce: false` where the upstream
    requires PKCE), which the application cannot fix: the person sees the upstream's words, with a link
    that hands the error to the application, and the operator finds them in the log."""
    log.warning(
        "the upstream refused the sign-in",
        extra={"fields": {"workspace": wanted.workspace, "upstream_error": exc.error,
                          "upstream_error_description": exc.description}},
    )
    error = exc.error if exc.error in _PASSED_ON else "access_denied"
    description = f"upstream sign-in failed: {exc}"
    if exc.error == "access_denied":
        return redirect_error(server, wanted.redirect_uri, wanted.state, error, description)
    back = with_params(wanted.redirect_uri, {"error": error, "error_description": description, "state": wanted.state,
                                             "iss": server.issuer})
    said = f"{exc.error}: {exc.description}" if exc.description else exc.error
    return error_page(
        "The upstream refused the sign-in",
        f"The sign-in server of workspace {wanted.workspace} answered: {said}. This is a setting of the "
        "workspace's upstream sign-in (its auth section in castproxy's config), not a problem with your account: "
        "tell whoever runs castproxy.",
        status=400,
        link=("Return to the application", back),
    )


async def issue_code_for(server: AuthServer, wanted: AuthorizationRequest, grant_id: str) -> str:
    """Start the sign-in's grant and return the client's redirect URI with castproxy's code (and the person)."""
    # A person's sign-in lasts as long as a company session: then the identity provider is asked again.
    now = server.tokens.clock()
    until = now + server.identity.sessions.lifetime if wanted.subject and server.identity else 0.0
    grant = GrantRecord(grant_id=grant_id, workspace=wanted.workspace, resource=wanted.resource,
                        client_id=wanted.client_id, scopes=wanted.scopes, subject=wanted.subject, email=wanted.email,
                        groups=wanted.groups, person_until=until, created_at=now)
    await server.tokens.start_grant(grant)
    server.events.sign_in(wanted.workspace, outcome="ok", client_id=wanted.client_id, grant=grant_ref(grant_id),
                          subject=wanted.subject or None)
    code = await server.tokens.issue_code(
        CodeRecord(
            client_id=wanted.client_id,
            redirect_uri=wanted.redirect_uri,
            code_challenge=wanted.code_challenge,
            workspace=wanted.workspace,
            resource=wanted.resource,
            grant_id=grant_id,
            scopes=wanted.scopes,
            subject=wanted.subject,
            email=wanted.email,
            groups=wanted.groups,
        )
    )
    if wanted.subject:
        log.info("sign-in completed", extra={"fields": {"workspace": wanted.workspace, "subject": wanted.subject,
                                                        "client_id": wanted.client_id}})
    return with_params(wanted.redirect_uri, {"code": code, "state": wanted.state, "iss": server.issuer})
