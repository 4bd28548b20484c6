"""Admin sign-in: the API key check, the session cookie and the CSRF tokens of the admin forms.

The cookie is sealed (AES-256-GCM, a key derived from `server.secret_key`); every form carries a CSRF
token compared in constant time.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "LOGIN_COOKIE", "SESSION_COOKIE", "SESSION_LIFETIME", "Session", "Sessions", "csrf_ok", "key_digest", "key_id",
    "matching_key",
]

SESSION_COOKIE = "castproxy_admin"
LOGIN_COOKIE = "castproxy_admin_login"
SESSION_LIFETIME = 8 * 3600.0
_AAD = b"castproxy admin session v1"
_NONCE = 12


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id(digest: bytes) -> str:
    """How a session (and the audit trail) names an admin key: 8 hex digits of its digest."""
    return "admin-" + digest.hex()[:8]


def matching_key(presented: str, digests: Sequence[bytes]) -> bytes | None:
    """The digest of the configured admin key that `presented` is, compared in constant time (all of them)."""
    candidate = key_digest(presented)
    found: bytes | None = None
    for digest in digests:
        if hmac.compare_digest(candidate, digest):
            found = digest
    return found


@dataclass(frozen=True)
class Session:
    key: str  # key_id of the admin key it was opened with
    expires_at: float
    csrf: str


class Sessions:
    """Seals and opens session cookies with a key derived from the server's secret key."""

    def __init__(self, secret_key: str, clock: Callable[[], float] = time.time) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"castproxy admin", info=b"castproxy/admin-session/v1")
        self._key = hkdf.derive(secret_key.encode())
        self._aead = AESGCM(self._key)
        self._clock = clock  # epoch seconds that session expiry is read against

    def open(self, key: str) -> tuple[Session, str]:
        """A new session for the admin key `key` (its id) and its cookie value."""
        session = Session(key, self._clock() + SESSION_LIFETIME, secrets.token_urlsafe(32))
        plain = json.dumps({"k": session.key, "e": session.expires_at, "c": session.csrf}).encode()
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plain, _AAD)
        return session, base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def read(self, cookie: str | None) -> Session | None:
        """The session in a cookie value, or None when absent, altered, foreign or expired."""
        if not cookie or len(cookie) > 1024:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AAD)
            data = json.loads(plain)
            session = Session(str(data["k"]), float(data["e"]), str(data["c"]))
        except (ValueError, KeyError, TypeError, InvalidTag):
            return None
        return session if session.expires_at > self._clock() else None

    def login_token(self, login_cookie: str) -> str:
        """The login form's CSRF token: an HMAC of the browser's pre-login cookie."""
        return hmac.new(self._key, b"login\x00" + login_cookie.encode(), hashlib.sha256).hexdigest()

    def login_token_ok(self, login_cookie: str | None, token: str) -> bool:
        if not login_cookie or not token:
            return False
        return hmac.compare_digest(self.login_token(login_cookie), token)


def csrf_ok(session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token)
