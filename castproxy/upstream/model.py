"""The values that travel between the request builder, the forwarder and the response mapper.

Plain data only: the builder produces an `UpstreamRequest`, the forwarder turns it into an
`UpstreamResponse` or an `UpstreamFailure` (never an exception), the mapper turns that into a tool result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from castproxy.errors import CastproxyError

__all__ = ["ArgumentError", "FailureKind", "UpstreamError", "UpstreamFailure", "UpstreamRequest", "UpstreamResponse"]


class UpstreamError(CastproxyError):
    """A tool call that cannot become an upstream request (what the upstream answers is data, never this)."""


class ArgumentError(UpstreamError):
    """Tool arguments that cannot become a safe upstream request; each message names the argument."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str  # already percent-encoded; sent as is, never re-normalised
    headers: dict[str, str] = field(default_factory=dict)  # mutable: credentials are applied in place
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; hop-by-hop and Set-Cookie already removed
    body: bytes  # at most max_bytes
    truncated: bool  # the upstream sent more than max_bytes
    url: str  # the request URL, for naming embedded resources
    elapsed: float  # seconds from send to the end of the body read

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower case ('' when the upstream sent none)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


FailureKind = Literal["timeout", "connect", "dns", "tls", "reset", "protocol"]


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    kind: FailureKind
    message: str  # short, safe to show to the caller: no credentials, no stack trace
    elapsed: float
