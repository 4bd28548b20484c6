"""The HTML pages of the test server's authorization endpoint: the approval page and the error page
(one plain POST form, so a browser and an automated test can both answer it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

__all__ = ["approval_page", "error_page"]

SCOPE_DESCRIPTIONS = {
    "read:items": "Read items",
    "write:items": "Create, change and delete items",
    "read:users": "Read users",
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #ddd;border-radius:8px;padding:1.5rem}
button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:6px;border:1px solid #888}
button[value=approve]{background:#1f6feb;color:#fff;border-color:#1f6feb}
code{background:#f4f4f4;padding:0 .25rem}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style></head>"
        f"<body><div class=card>{body}</div></body></html>"
    )


def approval_page(
    *, request_id: str, client_name: str, redirect_uri: str, scopes: Iterable[str], users: Iterable[Mapping[str, Any]]
) -> str:
    scope_items = "".join(
        f"<li><code>{escape(scope)}</code> {escape(SCOPE_DESCRIPTIONS.get(scope, ''))}</li>" for scope in scopes
    )
    user_options = "".join(
        f"<option value='{user['id']}'>{escape(user['name'])} ({escape(user['email'])})</option>" for user in users
    )
    body = (
        "<h1>Authorize access</h1>"
        f"<p><strong>{escape(client_name)}</strong> wants to access the test server's API.</p>"
        f"<p>It asks for:</p><ul>{scope_items}</ul>"
        f"<p>You will be sent back to <code>{escape(redirect_uri)}</code>.</p>"
        "<form method=post action='/auth/authorize'>"
        f"<input type=hidden name=request_id value='{escape(request_id)}'>"
        f"<p><label>Sign in as <select name=user_id>{user_options}</select></label></p>"
        "<button type=submit name=decision value=approve>Approve</button>"
        "<button type=submit name=decision value=deny>Deny</button>"
        "</form>"
    )
    return _page("Authorize access · castproxy test server", body)


def error_page(message: str) -> str:
    return _page("Authorization error · castproxy test server", f"<h1>Authorization error</h1><p>{escape(message)}</p>")
