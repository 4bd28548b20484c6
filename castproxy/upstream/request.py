"""Building the upstream HTTP request for one tool call (pure: no I/O).

A workspace's fixed parts are a `RequestTarget`, derived once per snapshot; `target.build` serialises
one call's arguments and raises `ArgumentError` for anything that would leave the configured upstream.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from castproxy.openapi.model import ParameterSpec, ToolDefinition
from castproxy.upstream.body import encode_body
from castproxy.upstream.model import ArgumentError, UpstreamRequest
from castproxy.upstream.params import cookie_items, header_text, path_text, pieces, query_pairs

__all__ = ["ArgumentError", "RequestTarget", "UpstreamRequest", "build_request"]

MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_COOKIE_BYTES = 4 * 1024

# Header names only castproxy (the transport or the credentials) decides.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "authorization",
        "cookie",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
DEFAULT_ACCEPT = "application/json, */*;q=0.8"
# TRACE echoes the request, credentials included, back into the tool result; CONNECT opens a tunnel.
REFUSED_METHODS = frozenset({"TRACE", "CONNECT"})

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_SEPARATORS = re.compile(r"[/\\]")


@lru_cache(maxsize=4096)
def _template(template: str) -> tuple[tuple[str, str | None], ...]:
    """A path template as (literal text, placeholder name or None) pieces, parsed once."""
    if not template.startswith("/"):
        template = "/" + template
    pieces_: list[tuple[str, str | None]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        pieces_.append((template[position : match.start()], match.group(1)))
        position = match.end()
    pieces_.append((template[position:], None))
    return tuple(pieces_)


def _hides_dot_segment(text: str) -> bool:
    """True when `text`, decoded up to three times and NFKC-normalised, has a `.` or `..` segment."""
    if "." not in text and "%" not in text and text.isascii():
        return False  # the common case: nothing that is or can become a dot
    for _ in range(4):
        normal = unicodedata.normalize("NFKC", text)
        if any(piece in (".", "..") for piece in _SEPARATORS.split(normal)):
            return True
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return False


def _forbidden_header(lower: str, protected: frozenset[str]) -> bool:
    return lower in RESERVED_HEADERS or lower.startswith("proxy-") or lower in protected


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """Where a workspace's calls go and what its config fixes there, derived once per config snapshot."""

    origin: str  # scheme://host:port of the base URL
    base_path: str  # without a trailing slash
    base_query: str  # sent first on every call
    pinned_query: frozenset[str]  # the base query's parameter names (lower case): arguments cannot repeat them
    pinned_cookies: frozenset[str]  # cookie names the workspace's Cookie header sends (lower case)
    protected: frozenset[str]  # header names (lower case) the credentials or the workspace's `headers` set
    headers: tuple[tuple[str, str], ...]  # the workspace's headers as sent: none the transport or credentials own

    @classmethod
    def of(
        cls, base_url: str, extra_headers: Mapping[str, str] = {}, protected_headers: Iterable[str] = ()
    ) -> RequestTarget:
        base = urlsplit(base_url)
        auth_names = frozenset(name.lower() for name in protected_headers)
        sent: list[tuple[str, str]] = []
        for name, value in extra_headers.items():
            lower = name.lower()
            # The config's headers never replace what the transport or the credentials set (a Cookie they may add).
            if lower in auth_names or (lower in RESERVED_HEADERS and lower != "cookie") or lower.startswith("proxy-"):
                continue
            sent.append((name, value))
        query_names = (item.partition("=")[0] for item in base.query.split("&") if item)
        cookie = next((value for name, value in extra_headers.items() if name.lower() == "cookie"), "")
        cookie_names = (part.split("=", 1)[0] for part in cookie.split(";") if "=" in part)
        return cls(
            origin=f"{base.scheme}://{base.netloc}",
            base_path=base.path.rstrip("/"),
            base_query=base.query,
            pinned_query=frozenset(unquote_plus(name).lower() for name in query_names),
            pinned_cookies=frozenset(name.strip().lower() for name in cookie_names),
            protected=auth_names | {name.lower() for name in extra_headers},
            headers=tuple(sent),
        )

    def build(self, tool: ToolDefinition, arguments: dict[str, Any]) -> UpstreamRequest:
        """The request for `tool` called with (already schema-checked) `arguments`; raises ArgumentError."""
        operation = tool.operation
        if operation.method.upper() in REFUSED_METHODS:
            raise ArgumentError([f"{operation.method.upper()} requests are not forwarded (they can echo credentials)"])
        problems: list[str] = []
        path_values: dict[str, str] = {}
        query: list[str] = [self.base_query] if self.base_query else []
        headers: dict[str, str] = {}
        cookies: list[str] = []

        for spec in operation.parameters:
            if spec.argument not in arguments or arguments[spec.argument] is None:
                if spec.required or spec.location == "path":
                    problems.append(f"missing required argument '{spec.argument}'")
                continue
            value = arguments[spec.argument]
            if spec.location == "path":
                text = _path_value(spec, value, problems)
                if text is not None:
                    path_values[spec.name] = text
            elif spec.location == "query":
                query.extend(query_pairs(spec, value))
            elif spec.location == "header":
                _header(spec, value, headers, self.protected, problems)
            elif spec.location == "cookie":
                _cookies(spec, value, cookies, problems)

        path = _expand(operation.path, path_values, operation.parameters, problems)
        if self.pinned_query and len(query) > 1:
            _refuse_pinned_query(query[1:], self.pinned_query, problems)
        if cookies and self.pinned_cookies:
            _refuse_pinned_cookies(cookies, self.pinned_cookies, problems)

        body = None
        if operation.body is not None:
            try:
                encoded = encode_body(operation.body, arguments)
            except ArgumentError as error:
                problems.extend(error.messages)
            else:
                if encoded is not None:
                    body, headers["Content-Type"] = encoded
        if problems:
            raise ArgumentError(problems)

        url = f"{self.origin}{self.base_path}{path}"
        _check_stays_under_base(url, f"{self.origin}{self.base_path}/")
        if query:
            url += "?" + "&".join(query)
        if len(url) > MAX_URL_BYTES:
            raise ArgumentError([f"the request URL would be {len(url)} characters, over the {MAX_URL_BYTES} limit"])

        headers.update(self.headers)
        if cookies:
            existing = next((k for k in headers if k.lower() == "cookie"), None)
            joined = "; ".join(cookies)
            headers[existing or "Cookie"] = f"{headers[existing]}; {joined}" if existing else joined
        if not any(name.lower() == "accept" for name in headers):
            headers["Accept"] = DEFAULT_ACCEPT
        return UpstreamRequest(method=operation.method.upper(), url=url, headers=headers, body=body)


def build_request(
    tool: ToolDefinition,
    arguments: dict[str, Any],
    *,
    base_url: str,
    extra_headers: Mapping[str, str] = {},
    protected_headers: Iterable[str] = frozenset(),
) -> UpstreamRequest:
    """`RequestTarget.of(...).build(tool, arguments)`: for one-off requests (the serving layer keeps the target)."""
    return RequestTarget.of(base_url, extra_headers, protected_headers).build(tool, arguments)


def _path_value(spec: ParameterSpec, value: Any, problems: list[str]) -> str | None:
    texts = pieces(value)
    if not texts or all(text == "" for text in texts):
        problems.append(f"argument '{spec.argument}' must not be empty: it is part of the URL path")
        return None
    if any(_hides_dot_segment(text) for text in texts):
        problems.append(f"argument '{spec.argument}' cannot be '.' or '..' or contain such a path segment")
        return None
    return path_text(spec, value)


def _expand(template: str, values: dict[str, str], specs: tuple[ParameterSpec, ...], problems: list[str]) -> str:
    out: list[str] = []
    for literal, name in _template(template):
        out.append(literal)
        if name is None:
            continue
        if name in values:
            out.append(values[name])
        elif not any(spec.name == name and spec.location == "path" for spec in specs):
            problems.append(f"the operation path needs '{name}', which no argument provides")
    path = "".join(out)
    if not problems and _hides_dot_segment(path):
        # Adjacent placeholders (`{a}{b}`) could build a dot segment from harmless parts.
        problems.append("the path arguments would form a '.' or '..' path segment")
    return path


def _header(
    spec: ParameterSpec, value: Any, headers: dict[str, str], protected: frozenset[str], problems: list[str]
) -> None:
    lower = spec.name.lower()
    if not _TOKEN.match(spec.name):
        problems.append(f"argument '{spec.argument}': '{spec.name}' is not a valid header name")
        return
    if _forbidden_header(lower, protected):
        problems.append(f"argument '{spec.argument}' would set the '{spec.name}' header, which castproxy controls")
        return
    text = header_text(spec, value)
    if _CONTROL.search(text):
        problems.append(
            f"argument '{spec.argument}' contains a control character (CR, LF or NUL), not allowed in a header"
        )
    elif len(text.encode()) > MAX_HEADER_BYTES:
        problems.append(f"argument '{spec.argument}' is too long for a header (at most {MAX_HEADER_BYTES} bytes)")
    else:
        headers[spec.name] = text


def _cookies(spec: ParameterSpec, value: Any, cookies: list[str], problems: list[str]) -> None:
    texts = pieces(value)
    if any(_CONTROL.search(text) for text in texts):
        problems.append(
            f"argument '{spec.argument}' contains a control character (CR, LF or NUL), not allowed in a cookie"
        )
        return
    items = cookie_items(spec, value)
    for item in items:
        name = item.split("=", 1)[0]
        if not _TOKEN.match(name):
            problems.append(f"argument '{spec.argument}': {name[:40]!r} is not a valid cookie name")
            return
    if sum(len(item) for item in items) > MAX_COOKIE_BYTES:
        problems.append(f"argument '{spec.argument}' is too long for a cookie (at most {MAX_COOKIE_BYTES} bytes)")
        return
    cookies.extend(items)


def _refuse_pinned_query(items: list[str], pinned: frozenset[str], problems: list[str]) -> None:
    """A query parameter the base URL sets (a tenant, sometimes a key) is the config's, not the caller's."""
    for item in items:
        name = unquote_plus(item.partition("=")[0])
        if name.lower() in pinned:
            problems.append(
                f"the query parameter '{name[:40]}' is set by the workspace's base_url; arguments cannot set it"
            )
            return


def _refuse_pinned_cookies(cookies: list[str], pinned: frozenset[str], problems: list[str]) -> None:
    """A cookie the workspace's `headers` send (often a session) cannot be repeated by an argument."""
    for item in cookies:
        name = item.split("=", 1)[0]
        if name.lower() in pinned:
            problems.append(f"the cookie '{name[:40]}' is set by the workspace's headers; arguments cannot set it")
            return


def _check_stays_under_base(url: str, prefix: str) -> None:
    """Defence in depth: by construction this holds; a failure here is a bug, refused rather than sent.

    `url` is everything before the query: it must start with the base URL's origin and path, and
    hold no query, fragment, backslash, whitespace or raw dot segment of its own.
    """
    rest = url[len(prefix) :]
    if (
        not url.startswith(prefix)
        or any(ch in rest for ch in "?#\\ \t\r\n")
        or any(segment in (".", "..") for segment in rest.split("/"))
    ):
        raise ArgumentError(["the arguments would move the request off the configured upstream"])
