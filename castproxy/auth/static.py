"""Static upstream credentials (`none`, `bearer`, `api_key`, `headers`) resolved once per config load.

The secret values are taken out of their `SecretStr` when the snapshot is built and kept in a
private attribute; `repr` never shows them. `apply` replaces any header of the same name (in any
letter case) so nothing built from arguments or config can sit next to, or instead of, the credential.
"""

from __future__ import annotations

from castproxy.auth.credentials import UpstreamCredentials
from castproxy.config.model import ApiKeyAuth, BearerAuth, HeadersAuth, NoAuth

__all__ = ["static_credentials"]


class StaticCredentials:
    """Fixed headers added to every upstream request."""

    def __init__(self, headers: dict[str, str], kind: str) -> None:
        for name, value in headers.items():
            if any(ch in value for ch in "\r\n\x00") or any(ch in name for ch in "\r\n\x00:"):
                raise ValueError(f"the {kind} credential for header {name!r} contains a control character")
        self._headers = dict(headers)
        self._kind = kind
        self.protected_headers = frozenset(name.lower() for name in headers)

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        if not self._headers:
            return
        for existing in [name for name in headers if name.lower() in self.protected_headers]:
            del headers[existing]
        headers.update(self._headers)

    def __repr__(self) -> str:
        return f"StaticCredentials(kind={self._kind!r}, headers={sorted(self._headers)!r})"


def static_credentials(auth: NoAuth | BearerAuth | ApiKeyAuth | HeadersAuth) -> UpstreamCredentials:
    if isinstance(auth, NoAuth):
        return StaticCredentials({}, "none")
    if isinstance(auth, BearerAuth):
        return StaticCredentials({"Authorization": f"Bearer {auth.token.get_secret_value()}"}, "bearer")
    if isinstance(auth, ApiKeyAuth):
        return StaticCredentials({auth.header: auth.value.get_secret_value()}, "api_key")
    if isinstance(auth, HeadersAuth):
        return StaticCredentials({name: value.get_secret_value() for name, value in auth.headers.items()}, "headers")
    raise TypeError(f"not a static auth kind: {getattr(auth, 'type', type(auth).__name__)}")
