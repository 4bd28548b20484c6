"""What the OAuth side tells the rest of castproxy happened: sign-ins, consent, sign-outs, revocations, refreshes.

The auth package reports through this protocol and knows nothing of what listens (castproxy.observe's
Observer writes the audit trail and the metrics). Every argument is a name, a short grant reference
(`grant_ref`), an outcome word or a reason written in our code: never a token, code or secret.
"""

from __future__ import annotations

from typing import Protocol

from castproxy.store.crypto import hash_token

__all__ = ["NO_EVENTS", "AuthEvents", "grant_ref"]


def grant_ref(grant_id: str) -> str:
    """What records and logs say instead of a grant id."""
    return hash_token(grant_id)[:12]


class AuthEvents(Protocol):
    def sign_in(self, workspace: str, *, outcome: str, client_id: str | None, grant: str | None = None,
                subject: str | None = None, reason: str | None = None) -> None:
        """An upstream sign-in finished (outcome ok) or failed (outcome failed, reason says why)."""

    def consent(self, workspace: str, *, client_id: str, decision: str) -> None:
        """The person answered the consent page (decision approve | deny)."""

    def sign_in_ended(self, workspace: str, *, event: str, client_id: str, grant: str, reason: str,
                      subject: str | None = None) -> None:
        """A sign-in ended: event sign_out (the client revoked its refresh token) or revocation (anything else)."""

    def token_revoked(self, workspace: str, *, client_id: str, grant: str) -> None:
        """The client revoked one access token (RFC 7009); its sign-in goes on."""

    def token_refresh(self, workspace: str, *, outcome: str, grant: str | None = None,
                      reason: str | None = None) -> None:
        """An upstream token refresh: outcome ok | failed | sign_in_required (the grant is gone)."""


class NoEvents:
    """Listens to nothing (the default when no observer is wired)."""

    def sign_in(self, workspace: str, *, outcome: str, client_id: str | None, grant: str | None = None,
                subject: str | None = None, reason: str | None = None) -> None:
        return None

    def consent(self, workspace: str, *, client_id: str, decision: str) -> None:
        return None

    def sign_in_ended(self, workspace: str, *, event: str, client_id: str, grant: str, reason: str,
                      subject: str | None = None) -> None:
        return None

    def token_revoked(self, workspace: str, *, client_id: str, grant: str) -> None:
        return None

    def token_refresh(self, workspace: str, *, outcome: str, grant: str | None = None,
                      reason: str | None = None) -> None:
        return None


NO_EVENTS = NoEvents()
