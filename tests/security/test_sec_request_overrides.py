"""Arguments cannot re-set what the workspace config pins: a query parameter in base_url
(`?tenant=acme`, sometimes an API key) or a cookie in the workspace's `headers` (`Cookie: session=...`).

An object parameter in form/explode style (the default for query and cookie objects) turns its keys
into parameter names, so without a check a caller adds `tenant=evil` after `tenant=acme`; many
frameworks read the last value.
"""

from __future__ import annotations

import pytest
from support.tool_definitions import cookie, query, tool

from castproxy.upstream.request import ArgumentError, build_request

BASE = "https://api.example.com/v1?tenant=acme&api_key=pinned"
FILTER_TOOL = tool("/items", query("filter", kind="object"), query("tenant", "tenant_arg"))
PREFS_TOOL = tool("/items", cookie("prefs", kind="object"), cookie("session", "session_arg"))


@pytest.mark.parametrize(
    "arguments",
    [
        {"filter": {"tenant": "evil"}},
        {"filter": {"API_KEY": "mine"}},
        {"filter": {"api_key": "mine"}},
        {"tenant_arg": "evil"},  # a declared parameter with a pinned name
    ],
)
def test_arguments_cannot_repeat_a_query_parameter_pinned_in_base_url(arguments: dict) -> None:
    try:
        request = build_request(FILTER_TOOL, arguments, base_url=BASE)
    except ArgumentError as error:
        assert "base_url" in " ".join(error.messages)
        return
    query_text = request.url.split("?", 1)[1].lower()
    assert query_text.count("tenant=") == 1 and query_text.count("api_key=") == 1, request.url


def test_other_query_keys_still_pass() -> None:
    request = build_request(FILTER_TOOL, {"filter": {"color": "red"}}, base_url=BASE)
    assert request.url == "https://api.example.com/v1/items?tenant=acme&api_key=pinned&color=red"


@pytest.mark.parametrize("arguments", [{"prefs": {"session": "evil"}}, {"session_arg": "evil"}])
def test_arguments_cannot_repeat_a_cookie_set_by_workspace_headers(arguments: dict) -> None:
    headers = {"Cookie": "session=configured-secret"}
    try:
        request = build_request(PREFS_TOOL, arguments, base_url="https://api.example.com", extra_headers=headers)
    except ArgumentError as error:
        assert "session" in " ".join(error.messages)
        return
    assert request.headers["Cookie"].count("session=") == 1, request.headers["Cookie"]
