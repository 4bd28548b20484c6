"""The admin session cookie: it opens until SESSION_LIFETIME has passed on the injected clock, and not when altered."""

from __future__ import annotations

from support.clock import FakeClock

from castproxy.admin.session import SESSION_LIFETIME, Sessions


def test_a_session_ends_when_its_lifetime_has_passed_on_the_clock() -> None:
    clock = FakeClock()
    sessions = Sessions("k" * 32, clock)
    opened, cookie = sessions.open("admin-0123abcd")
    assert sessions.read(cookie) == opened and opened.expires_at == clock() + SESSION_LIFETIME
    clock.advance(SESSION_LIFETIME - 1)
    assert sessions.read(cookie) == opened
    clock.advance(1)
    assert sessions.read(cookie) is None


def test_an_altered_or_foreign_cookie_opens_nothing() -> None:
    clock = FakeClock()
    _, cookie = Sessions("k" * 32, clock).open("admin-0123abcd")
    assert Sessions("other" * 8, clock).read(cookie) is None
    assert Sessions("k" * 32, clock).read(cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")) is None
