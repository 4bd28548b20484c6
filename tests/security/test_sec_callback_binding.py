"""The upstream callback only completes a sign-in in the browser that started it (login CSRF / confused deputy).

Attack: the attacker starts a sign-in at castproxy with their own client and redirect URI, approves it,
and takes the upstream authorization URL (carrying castproxy's upstream `state`) to the victim. The
victim, already signed in at the upstream, is sent straight back to castproxy's callback with a code
for the victim's account. Without a browser binding castproxy would exchange it and deliver a code for
the victim's upstream grant to the attacker's redirect URI.
"""

from __future__ import annotations

import httpx2
from support.auth_server import PUBLIC_URL, Harness, pkce, query_of


async def test_callback_from_another_browser_is_refused(as_harness: Harness) -> None:
    attacker_client = await as_harness.register(["https://attacker.example/cb"])
    params = as_harness.authorize_params(attacker_client, pkce()[1], redirect_uri="https://attacker.example/cb")
    page = await as_harness.http.get("/authorize", params=params)
    to_upstream = await as_harness.approve(page)
    assert to_upstream.status_code == 303
    state = query_of(to_upstream.headers["location"])["state"]

    # The victim's browser: same app, no cookies of the attacker's browser.
    victim = httpx2.AsyncClient(transport=as_harness.http._transport, base_url=PUBLIC_URL)
    try:
        response = await victim.get("/oauth/callback", params={"code": "victims-upstream-code", "state": state})
    finally:
        await victim.aclose()
    assert response.status_code == 400, response.headers.get("location")
    assert "attacker.example" not in response.headers.get("location", "")
    assert "another browser" in response.text


async def test_callback_in_the_starting_browser_still_works_for_two_parallel_sign_ins(as_harness: Harness) -> None:
    client_id = await as_harness.register()
    redirects = []
    for workspace in ("alpha", "beta"):
        page = await as_harness.http.get(
            "/authorize", params=as_harness.authorize_params(client_id, pkce()[1], workspace)
        )
        redirects.append(await as_harness.approve(page))
    for to_upstream in redirects:
        back = await as_harness.upstream_callback(to_upstream)
        assert back.status_code == 303, back.text
        assert "code" in query_of(back.headers["location"])
