"""Can this server's secret key read the store? A canary record, written once, answers at start-up.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

from castproxy.store.base import Store
from castproxy.store.crypto import Cipher, InvalidCiphertext, UnknownKey, record_aad

__all__ = ["key_problem"]

NS_KEY_CHECK = "store-key"
_KEY = "canary"
_PLAIN = b"castproxy store key check"

KEY_PROBLEM = (
    "the store's records were encrypted with a key this server does not hold: server.secret_key is not the "
    "key they were written with (during a rotation, list the old key in server.previous_secret_keys). "
    "Nothing was deleted; restart with the right key"
)


async def key_problem(store: Store, cipher: Cipher) -> str | None:
    """None when `cipher` reads the store (or the store is new); otherwise what is wrong, safe to show."""
    aad = record_aad(NS_KEY_CHECK, _KEY)
    blob = await store.get(NS_KEY_CHECK, _KEY)
    if blob is None:
        await store.put_if_absent(NS_KEY_CHECK, _KEY, cipher.encrypt(_PLAIN, aad=aad))
        return None
    try:
        cipher.decrypt(blob, aad=aad)
    except UnknownKey:
        return KEY_PROBLEM
    except InvalidCiphertext:  # damaged, not a key problem: start a new canary
        await store.put(NS_KEY_CHECK, _KEY, cipher.encrypt(_PLAIN, aad=aad))
        return None
    if not cipher.is_current(blob):  # read with a previous key: the rotation has begun, follow it
        await store.put(NS_KEY_CHECK, _KEY, cipher.encrypt(_PLAIN, aad=aad))
    return None
