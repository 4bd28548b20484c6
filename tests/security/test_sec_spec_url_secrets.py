"""A spec URL may carry a secret (`openapi: https://api/spec?key=${env:K}`): errors must not print it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.net import free_port

from castproxy.openapi.loader import SpecError, load_document

CANARY = "canary-spec-secret-8731"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/openapi.json?key=" + CANARY,
        "http://127.0.0.1:{port}/openapi.json?a=1&token=" + CANARY + "&b=2",
        "http://user:" + CANARY + "@127.0.0.1:{port}/openapi.json",
    ],
)
def test_fetch_errors_do_not_show_secrets_in_the_spec_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(SpecError) as raised:
        load_document(url.format(port=free_port()), tmp_path, timeout=2)
    assert CANARY not in raised.value.message
    assert "127.0.0.1" in raised.value.message  # still says which spec failed
