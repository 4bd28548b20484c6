"""The person behind an upstream sign-in, from the ID token an OpenID Connect upstream returns with its tokens.

Shown on the admin page and in the audit trail only: read without checking the signature (the answer
came straight from the token endpoint), never used to decide anything, and never stored with the tokens.
"""

from __future__ import annotations

import base64
import json

import httpx2

from castproxy.auth.upstream_tokens import ClientIdentity, TokenSet, id_token_subject, request_token


def jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_subject_is_the_sub_claim_when_it_is_plain_text() -> None:
    assert id_token_subject(jwt({"sub": "00u1abc", "email": "ana@example.com"})) == "00u1abc"
    assert id_token_subject(jwt({"sub": "line\nbreak"})) is None
    assert id_token_subject(jwt({"sub": 42})) is None
    assert id_token_subject("not-a-jwt") is None
    assert id_token_subject(None) is None


async def test_a_token_answer_with_an_id_token_names_the_person_but_does_not_keep_it() -> None:
    answer = {"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": jwt({"sub": "ana"})}
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=answer))
    async with httpx2.AsyncClient(transport=transport) as http:
        tokens = await request_token(http, "https://idp.example/token", {"grant_type": "authorization_code"},
                                     ClientIdentity("client", "secret"))
    assert tokens.subject == "ana"
    assert "ana" not in tokens.to_bytes().decode() and TokenSet.from_bytes(tokens.to_bytes()).subject is None
