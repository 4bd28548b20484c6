"""PKCE (RFC 7636) S256 for both of castproxy's OAuth roles: client of the upstream, server for MCP clients."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["s256_challenge"]


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier: BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")
