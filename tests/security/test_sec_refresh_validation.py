"""Issue 11, finding 5: a refresh request castproxy refuses (scope, resource or client wrong) must not spend the
refresh token. Before, the token was used up first, so the client's corrected retry counted as reuse of a
rotated token and revoked the whole sign-in.
"""

from __future__ import annotations

import pytest
from support.auth_server import PUBLIC_URL, Harness


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"scope": "admin"}, "invalid_scope"),
        ({"scope": "read:items admin"}, "invalid_scope"),
        ({"resource": "http://proxy.test/mcp/beta"}, "invalid_target"),
        ({"resource": "https://elsewhere.example/mcp/alpha"}, "invalid_target"),
        ({"client_id": "cpc-someone-else"}, "invalid_grant"),
    ],
)
async def test_a_refused_refresh_leaves_the_refresh_token_usable(as_harness: Harness, over: dict, error: str) -> None:
    signed = await as_harness.sign_in()
    client_id = over.pop("client_id", signed.client_id)
    refused = await as_harness.refresh(client_id, signed.refresh_token, **over)
    assert refused.status_code == 400
    assert refused.json()["error"] == error
    # The client corrects its request: same refresh token, and the sign-in goes on.
    retried = await as_harness.refresh(signed.client_id, signed.refresh_token, resource=f"{PUBLIC_URL}/mcp/alpha")
    assert retried.status_code == 200, retried.text
    assert (await as_harness.call("alpha", retried.json()["access_token"])).status_code == 200
    assert as_harness.upstreams["alpha"].revoked == []
