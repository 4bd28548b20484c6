"""Masking credentials in what the upstream answered, before any of it reaches the MCP client.

Every credential sent and every configured secret becomes `[redacted]` in the body, reason phrase and
Location header (JSON-escaped forms too); values under 8 characters are left alone.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, SecretStr

from castproxy.upstream.model import UpstreamFailure, UpstreamResponse

__all__ = ["configured_secrets", "redact", "secret_forms"]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8
_REDACTED = REDACTED.encode()
_MIN_DANGLING = 4  # a cut credential's leading part this long or longer is removed


def secret_forms(values: Iterable[str]) -> tuple[bytes, ...]:
    """The byte strings to mask for these secret values, longest first."""
    forms: set[str] = set()
    for value in values:
        candidates = [value]
        scheme, _, rest = value.partition(" ")
        rest = rest.strip()
        if scheme.isalpha() and len(rest) >= MIN_SECRET_LENGTH:
            candidates = [rest]  # "Bearer TOKEN": the credential, so the answer still shows "Bearer [redacted]"
        for candidate in candidates:
            forms.add(candidate)
            escaped = json.dumps(candidate)[1:-1]
            forms.update({escaped, escaped.replace("/", "\\/")})
    encoded = {form.encode("utf-8", "surrogateescape") for form in forms if len(form) >= MIN_SECRET_LENGTH}
    return tuple(sorted(encoded, key=len, reverse=True))


def configured_secrets(model: object) -> list[str]:
    """Every SecretStr value in a config model (secret_key, client secrets, tokens, keys, secret headers...)."""
    found: list[str] = []
    if isinstance(model, SecretStr):
        found.append(model.get_secret_value())
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            found += configured_secrets(getattr(model, name))
    elif isinstance(model, dict):
        for value in model.values():
            found += configured_secrets(value)
    elif isinstance(model, list | tuple):
        for value in model:
            found += configured_secrets(value)
    return found


def _mask(data: bytes, secrets: Sequence[bytes]) -> bytes:
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, _REDACTED)
    return data


def _cut_dangling(body: bytes, secrets: Sequence[bytes]) -> bytes:
    for secret in secrets:
        for length in range(len(secret) - 1, _MIN_DANGLING - 1, -1):
            if body.endswith(secret[:length]):
                return body[:-length] + _REDACTED
    return body


def redact(
    outcome: UpstreamResponse | UpstreamFailure, secrets: Sequence[bytes]
) -> UpstreamResponse | UpstreamFailure:
    """`outcome` with every form in `secrets` masked; the same object when there was nothing to mask."""
    if not secrets:
        return outcome
    if isinstance(outcome, UpstreamFailure):
        message = _mask(outcome.message.encode(), secrets).decode()
        return outcome if message == outcome.message else dataclasses.replace(outcome, message=message)
    body = _mask(outcome.body, secrets)
    if outcome.truncated:
        body = _cut_dangling(body, secrets)
    reason = _mask(outcome.reason.encode("utf-8", "replace"), secrets).decode("utf-8", "replace")
    headers = outcome.headers
    location = headers.get("location")
    if location is not None:
        masked = _mask(location.encode("utf-8", "replace"), secrets).decode("utf-8", "replace")
        if masked != location:
            headers = {**headers, "location": masked}
    if body is outcome.body and reason == outcome.reason and headers is outcome.headers:
        return outcome
    return dataclasses.replace(outcome, body=body, reason=reason, headers=headers)
