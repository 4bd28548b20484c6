"""upstream/redact.py: which forms of a secret are masked, and what is left alone (issue 11, finding 6)."""

from __future__ import annotations

import json

from castproxy.upstream.model import UpstreamFailure, UpstreamResponse
from castproxy.upstream.redact import redact, secret_forms

TOKEN = "abc/def+ghi=0123456789"


def response(body: bytes, *, truncated: bool = False, **headers: str) -> UpstreamResponse:
    return UpstreamResponse(400, "Bad", headers, body, truncated, "http://up.test/x", 0.0)


def test_forms_cover_the_scheme_and_json_escapes() -> None:
    forms = secret_forms([f"Bearer {TOKEN}", "short", 'with"quote-0123'])
    assert TOKEN.encode() in forms and TOKEN.replace("/", "\\/").encode() in forms
    assert b'with\\"quote-0123' in forms and b'with"quote-0123' in forms
    assert b"short" not in forms and not any(form.startswith(b"Bearer ") for form in forms)


def test_json_stays_json_and_escaped_echoes_are_masked() -> None:
    php = TOKEN.replace("/", "\\/")  # how PHP's json_encode writes it on the wire
    body = b'{"auth": "Bearer ' + TOKEN.encode() + b'", "php": "' + php.encode() + b'"}'
    masked = redact(response(body), secret_forms([f"Bearer {TOKEN}"]))
    assert isinstance(masked, UpstreamResponse)
    assert json.loads(masked.body) == {"auth": "Bearer [redacted]", "php": "[redacted]"}


def test_a_credential_cut_at_the_size_limit_is_not_half_shown() -> None:
    body = b"x" * 100 + TOKEN[:9].encode()
    masked = redact(response(body, truncated=True), secret_forms([TOKEN]))
    assert isinstance(masked, UpstreamResponse)
    assert masked.body == b"x" * 100 + b"[redacted]"


def test_location_reason_and_failures_are_masked_and_clean_answers_untouched() -> None:
    secrets = secret_forms([TOKEN])
    masked = redact(response(b"", location=f"https://x.test/?t={TOKEN}"), secrets)
    assert isinstance(masked, UpstreamResponse) and masked.headers["location"] == "https://x.test/?t=[redacted]"
    clean = response(b"nothing to see")
    assert redact(clean, secrets) is clean
    failure = UpstreamFailure("connect", f"refused for {TOKEN}", 0.0)
    assert redact(failure, secrets) == UpstreamFailure("connect", "refused for [redacted]", 0.0)
