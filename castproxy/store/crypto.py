"""Encryption at rest for store records: AES-256-GCM with keys derived from `server.secret_key`.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import TypeAdapter

from castproxy.store.base import MalformedRecord, StoreError, T, decode_record

__all__ = ["Cipher", "InvalidCiphertext", "UnknownKey", "hash_token", "record_aad"]

VERSION = 1
KEY_ID_BYTES = 4
NONCE_BYTES = 12
_HEADER = 1 + KEY_ID_BYTES
_SALT = b"castproxy store encryption"
_INFO = b"castproxy/aes-256-gcm/v1"


class InvalidCiphertext(StoreError):
    """The blob was altered, truncated, bound to another record, or made with a key we do not hold."""


class UnknownKey(InvalidCiphertext):
    """The blob is intact as far as we can tell, but was made with a key this server does not hold."""


def hash_token(token: str) -> str:
    """SHA-256 hex of a castproxy-issued token: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def record_aad(namespace: str, key: str) -> bytes:
    """The associated data that binds an encrypted value to its store record."""
    return f"{namespace}\x00{key}".encode()


def _derive(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
    return hkdf.derive(secret_key.encode())


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"castproxy key id\x00" + key).digest()[:KEY_ID_BYTES]


class Cipher:
    """Encrypts with the current key; decrypts with the current or any previous one."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("Cipher needs at least one key")
        self._current_id = _key_id(keys[0])
        self._current = AESGCM(keys[0])
        self._by_id: dict[bytes, AESGCM] = {}
        for key in keys:
            self._by_id.setdefault(_key_id(key), AESGCM(key))

    @classmethod
    def from_secret(cls, secret_key: str, *, previous: Sequence[str] = ()) -> Cipher:
        if not secret_key:
            raise ValueError("server.secret_key is empty")
        return cls([_derive(secret) for secret in (secret_key, *previous)])

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        header = bytes([VERSION]) + self._current_id
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self._current.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        if len(blob) < _HEADER + NONCE_BYTES + 16 or blob[0] != VERSION:
            raise InvalidCiphertext("not a castproxy ciphertext")
        aead = self._by_id.get(bytes(blob[1:_HEADER]))
        if aead is None:
            raise UnknownKey("encrypted with a key this server does not hold")
        header, nonce, body = blob[:_HEADER], blob[_HEADER : _HEADER + NONCE_BYTES], blob[_HEADER + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, body, bytes(header) + aad)
        except InvalidTag:
            raise InvalidCiphertext("ciphertext failed authentication") from None

    def open_record(self, adapter: TypeAdapter[T], blob: bytes | None, namespace: str, key: str) -> T | None:
        """The record stored as `blob` under namespace/key: None when absent, or when it does not decrypt or
        decode as its kind (altered, written by another version, or under a key this server does not hold)."""
        if blob is None:
            return None
        try:
            return decode_record(adapter, self.decrypt(blob, aad=record_aad(namespace, key)), namespace)
        except (InvalidCiphertext, MalformedRecord):
            return None

    def is_current(self, blob: bytes) -> bool:
        """True when `blob` was encrypted with the current key (not a previous one)."""
        return len(blob) >= _HEADER and bytes(blob[1:_HEADER]) == self._current_id
