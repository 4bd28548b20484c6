"""Encryption at rest: round trip, tamper, wrong key, rotation, record binding, token hashes."""

from __future__ import annotations

import hashlib

import pytest

from castproxy.store.crypto import Cipher, InvalidCiphertext, hash_token, record_aad

SECRET = "s" * 32 + "-current"
OLD_SECRET = "o" * 32 + "-previous"
AAD = record_aad("upstream-grant", "grant-1")


def test_round_trip():
    cipher = Cipher.from_secret(SECRET)
    blob = cipher.encrypt(b"upstream refresh token", aad=AAD)
    assert b"upstream refresh token" not in blob
    assert cipher.decrypt(blob, aad=AAD) == b"upstream refresh token"


def test_same_plaintext_encrypts_differently():
    cipher = Cipher.from_secret(SECRET)
    assert cipher.encrypt(b"x", aad=AAD) != cipher.encrypt(b"x", aad=AAD)


def test_blob_layout_version_key_id_nonce():
    cipher = Cipher.from_secret(SECRET)
    blob = cipher.encrypt(b"abc", aad=AAD)
    assert blob[0] == 1
    assert cipher.is_current(blob) and blob[1:5] == cipher.encrypt(b"other", aad=b"")[1:5]
    assert len(blob) == 1 + 4 + 12 + 3 + 16


def test_tampering_any_byte_fails():
    cipher = Cipher.from_secret(SECRET)
    blob = cipher.encrypt(b"a grant record", aad=AAD)
    for index in range(len(blob)):
        altered = bytearray(blob)
        altered[index] ^= 0x01
        with pytest.raises(InvalidCiphertext):
            cipher.decrypt(bytes(altered), aad=AAD)


def test_truncated_or_empty_blob_fails():
    cipher = Cipher.from_secret(SECRET)
    blob = cipher.encrypt(b"a grant record", aad=AAD)
    for cut in (0, 1, 5, 17, len(blob) - 1):
        with pytest.raises(InvalidCiphertext):
            cipher.decrypt(blob[:cut], aad=AAD)


def test_wrong_key_fails():
    blob = Cipher.from_secret(SECRET).encrypt(b"secret", aad=AAD)
    with pytest.raises(InvalidCiphertext):
        Cipher.from_secret(OLD_SECRET).decrypt(blob, aad=AAD)


def test_previous_key_still_decrypts_and_new_blobs_use_the_current_key():
    old = Cipher.from_secret(OLD_SECRET)
    old_blob = old.encrypt(b"written before rotation", aad=AAD)
    rotated = Cipher.from_secret(SECRET, previous=[OLD_SECRET])
    assert rotated.decrypt(old_blob, aad=AAD) == b"written before rotation"
    new_blob = rotated.encrypt(b"after", aad=AAD)
    assert rotated.is_current(new_blob) and not rotated.is_current(old_blob)
    assert new_blob[1:5] == Cipher.from_secret(SECRET).encrypt(b"", aad=AAD)[1:5]
    with pytest.raises(InvalidCiphertext):
        old.decrypt(new_blob, aad=AAD)


def test_aad_mismatch_fails():
    cipher = Cipher.from_secret(SECRET)
    blob = cipher.encrypt(b"grant of workspace a", aad=record_aad("upstream-grant", "a"))
    with pytest.raises(InvalidCiphertext):
        cipher.decrypt(blob, aad=record_aad("upstream-grant", "b"))
    with pytest.raises(InvalidCiphertext):
        cipher.decrypt(blob, aad=record_aad("other-namespace", "a"))


def test_error_message_reveals_nothing():
    blob = Cipher.from_secret(SECRET).encrypt(b"canary-plaintext", aad=AAD)
    with pytest.raises(InvalidCiphertext) as caught:
        Cipher.from_secret(OLD_SECRET).decrypt(blob, aad=AAD)
    assert "canary" not in str(caught.value)
    assert SECRET not in str(caught.value) and OLD_SECRET not in str(caught.value)


def test_empty_secret_refused():
    with pytest.raises(ValueError):
        Cipher.from_secret("")


def test_hash_token():
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_token("abc") != hash_token("abd")
