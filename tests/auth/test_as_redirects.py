"""Which redirect URIs may be registered, and how strictly a requested one must match."""

from __future__ import annotations

import pytest

from castproxy.auth.server.redirects import redirect_uri_matches, redirect_uri_problem, with_params


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:3000/callback",
        "http://localhost/cb",
        "http://[::1]:8080/cb?x=1",
        "https://app.example.com/oauth/callback",
        "https://claude.ai/api/mcp/auth_callback",
        "cursor://anysphere.cursor-mcp/oauth/callback",  # what Cursor registers, with https and loopback ones
        "com.example.app:/oauth2redirect",  # RFC 8252 §7.1 reverse-domain private-use scheme
        "vscode://vscode.github-authentication/did-authenticate",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("javascript:alert(1)", "must use https, or http on a loopback address"),
        ("data:text/html,<script>alert(1)</script>", "contains whitespace or characters"),
        ("data:text/html;base64,PHNjcmlwdD4=", "must use https, or http on a loopback address"),
        ("http://evil.example/cb", "uses http on a non-loopback host"),
        ("http://127.0.0.1.evil.example/cb", "uses http on a non-loopback host"),
        ("http://localhost@evil.example/cb", "uses http on a non-loopback host"),
        ("https://app.example.com/cb#frag", "must not contain a fragment"),
        ("https://user@app.example.com/cb", "must not contain user information"),
        ("myapp://callback", "must use https, or http on a loopback address"),
        ("file:///etc/passwd", "must use https, or http on a loopback address"),
        ("blob:https://app.example.com/x", "must use https, or http on a loopback address"),
        ("cursor:callback", "must use https, or http on a loopback address"),  # private-use needs a path
        ("com.example.app:/cb#frag", "must not contain a fragment"),
        ("", "non-empty string"),
    ],
)
def test_refused_redirect_uris(uri: str, problem: str) -> None:
    found = redirect_uri_problem(uri)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "requested",
    [
        "https://app.example.com/callback/",  # trailing slash
        "https://APP.example.com/callback",  # case
        "https://app.example.com/Callback",  # case in path
        "https://app.example.com/callback?x=1",  # query
        "https://evil.example.com/callback",  # host
        "https://app.example.com:8443/callback",  # port of a non-loopback URI
    ],
)
def test_https_redirect_must_match_exactly(requested: str) -> None:
    assert not redirect_uri_matches("https://app.example.com/callback", requested)


def test_loopback_port_may_vary_but_nothing_else() -> None:
    registered = "http://127.0.0.1:3000/callback"
    assert redirect_uri_matches(registered, "http://127.0.0.1:53122/callback")
    assert redirect_uri_matches("http://localhost/callback", "http://localhost:8080/callback")
    assert not redirect_uri_matches(registered, "http://localhost:3000/callback")
    assert not redirect_uri_matches(registered, "http://127.0.0.1:3000/callback/")
    assert not redirect_uri_matches(registered, "http://127.0.0.1:3000/callback?a=1")


def test_with_params_keeps_existing_query() -> None:
    assert with_params("https://a.example/cb?x=1", {"code": "c", "state": None}) == "https://a.example/cb?x=1&code=c"
