"""What a running test server hands out: its mode and the generated client secret, API key or password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


def generate_client_secret() -> str:
    return "cs_" + secrets.token_urlsafe(24)


def generate_api_key() -> str:
    return "cast_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class TestServerCredentials:
    """`app.state.credentials`: fields not used by the mode are None / empty."""

    __test__ = False  # not a pytest test class despite the name

    mode: str
    client_id: str | None = None
    client_secret: str | None = None
    api_key: str | None = None
    redirect_uris: tuple[str, ...] = ()
    auto_approve: bool = False
    usernames: tuple[str, ...] = ()  # mode jwt: who can log in, all with `password`
    password: str | None = None
    token_lifetime: int | None = None
