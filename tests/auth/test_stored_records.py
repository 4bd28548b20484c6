"""Stored records: today's on-disk JSON still decodes, and a malformed one is a MalformedRecord, read as absent."""

from __future__ import annotations

import json

import pytest
from support.auth_server import Harness

from castproxy.auth.server.records import NS_ACCESS, GrantRecord, TokenRecord
from castproxy.auth.upstream_tokens import TokenSet
from castproxy.store.base import MalformedRecord, StoreError
from castproxy.store.crypto import hash_token

# Exactly as the code before pydantic wrote them (json.dumps of the fields; the grant adds "upstream").
OLD_GRANT = (
    b'{"grant_id":"g1","workspace":"alpha","resource":"http://proxy.test/mcp/alpha","client_id":"c1",'
    b'"scopes":["read:items"],"subject":"","email":"","groups":["ops"],"person_until":0.0,"created_at":12.5}'
)
OLD_TOKENS = json.dumps(
    {"access_token": "at", "refresh_token": "rt", "expires_at": 3600.0, "obtained_at": 0.0, "scopes": ["read"],
     "upstream": {"issuer": "http://idp.test"}}
).encode()


def test_records_in_the_old_format_decode() -> None:
    grant = GrantRecord.decode(OLD_GRANT)
    assert grant == GrantRecord("g1", "alpha", "http://proxy.test/mcp/alpha", "c1", ("read:items",),
                                groups=("ops",), created_at=12.5)
    assert grant.encode() == OLD_GRANT
    assert TokenSet.from_bytes(OLD_TOKENS) == TokenSet("at", "rt", 3600.0, 0.0, ("read",))


@pytest.mark.parametrize("blob", [b"not json", b"[]", b'{"grant_id":"g1"}', OLD_GRANT.replace(b'["ops"]', b"7")])
def test_a_malformed_server_record_reads_as_absent(blob: bytes) -> None:
    assert GrantRecord.decode(blob) is None


@pytest.mark.parametrize(
    "blob", [b"{", b'{"access_token":"secret-at","obtained_at":0.0}', OLD_TOKENS.replace(b'"rt"', b"[1]")]
)
def test_a_malformed_token_set_is_a_malformed_record_naming_no_value(blob: bytes) -> None:
    with pytest.raises(MalformedRecord, match=r"^a stored upstream token set record cannot be read$") as caught:
        TokenSet.from_bytes(blob)
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, ValueError)
    assert caught.value.__context__ is None and "secret" not in str(caught.value)


async def test_a_malformed_access_token_record_is_an_unknown_token(harness: Harness) -> None:
    signed = await harness.sign_in()
    key = hash_token(signed.access_token)
    assert TokenRecord.decode(await harness.bridge.server.store.get(NS_ACCESS, key)) is not None
    await harness.bridge.server.store.put(NS_ACCESS, key, b'{"grant_id":"g"}')
    response = await harness.call("alpha", signed.access_token)
    assert response.status_code == 401
    assert "the access token is unknown, expired or revoked" in response.headers["www-authenticate"]
