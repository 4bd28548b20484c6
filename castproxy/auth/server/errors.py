"""OAuth error responses: the JSON form for API endpoints and the HTML page for browsers.

An error that happens before the client's redirect URI is known to be genuine is never redirected
(RFC 6749 §4.1.2.1): the browser gets `error_page` instead.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template

from starlette.responses import HTMLResponse, JSONResponse

from castproxy.auth.credentials import AuthError

__all__ = ["NO_STORE", "PAGE_HEADERS", "OAuthError", "error_page", "no_sign_in", "template"]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# Pages from this server are never framed (clickjacking on the consent button) and load nothing external.
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it browsers send `Origin: null` with the consent form's POST, which the
    # origin check would then refuse. same-origin keeps URLs (with codes) from leaking cross-site.
    "Referrer-Policy": "same-origin",
}


class OAuthError(AuthError):
    """An RFC 6749 error: `error` is the registered code, `description` says what to fix."""

    def __init__(self, error: str, description: str, status: int = 400, *, retry_after: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 429)

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, status_code=self.status, headers=headers
        )


def no_sign_in(workspace: str) -> JSONResponse:
    """404 for a workspace that does not exist or does not use per-user sign-in."""
    return JSONResponse(
        {"error": "not_found", "error_description": f"workspace {workspace[:64]!r} does not use OAuth sign-in"},
        status_code=404,
    )


def template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text("utf-8"))


def error_page(
    title: str, message: str, status: int = 400, *, retry_after: str | None = None, link: tuple[str, str] | None = None
) -> HTMLResponse:
    """The HTML error page; `link` (text, URL) adds one link under the message, e.g. back to the application."""
    more = "" if link is None else f'<p><a href="{html.escape(link[1])}">{html.escape(link[0])}</a></p>'
    body = template("error.html").substitute(title=html.escape(title), message=html.escape(message), link=more)
    headers = PAGE_HEADERS if retry_after is None else {**PAGE_HEADERS, "Retry-After": retry_after}
    return HTMLResponse(body, status_code=status, headers=headers)
