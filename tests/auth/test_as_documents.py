"""Client ID metadata documents: fetched with SSRF protection, validated, cached, used at /authorize.

The document host is played by httpx2.MockTransport (a real HTTPS host on the internet cannot run in
tests); the resolver is replaced so the address checks see the addresses an attacker would choose.
"""

from __future__ import annotations

import json

import httpx2
import pytest
from support.auth_server import CLIENT_REDIRECT, Harness, harness_for, pkce

from castproxy.auth.server.documents import DocumentError, DocumentFetcher, client_id_url_problem

CLIENT_URL = "https://client.example/oauth/metadata.json"
PUBLIC_ADDRESS = "93.184.215.14"


def document(**over: object) -> dict:
    return {"client_id": CLIENT_URL, "client_name": "Example Agent", "redirect_uris": [CLIENT_REDIRECT], **over}


class Host:
    """Answers like the client's web server and records what castproxy sent."""

    def __init__(self, body: object = None, status: int = 200, headers: dict | None = None) -> None:
        self.body = document() if body is None else body
        self.status = status
        self.headers = {"content-type": "application/json", **(headers or {})}
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return httpx2.Response(self.status, content=content, headers=self.headers)


def fetcher(host: Host, addresses: list[str] | None = None, **kwargs) -> DocumentFetcher:
    async def resolve(name: str, port: int) -> list[str]:
        return addresses if addresses is not None else [PUBLIC_ADDRESS]

    return DocumentFetcher(resolve=resolve, transport=httpx2.MockTransport(host), **kwargs)


async def test_fetch_pins_the_resolved_address_and_keeps_the_host_name() -> None:
    host = Host()
    assert (await fetcher(host).fetch_document(CLIENT_URL)).document == document()
    sent = host.requests[0]
    assert str(sent.url) == f"https://{PUBLIC_ADDRESS}/oauth/metadata.json"
    assert sent.headers["host"] == "client.example"
    assert sent.extensions["sni_hostname"] == "client.example"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
async def test_non_public_addresses_are_refused(address: str) -> None:
    host = Host()
    with pytest.raises(
        DocumentError,
        match=r"^refusing to fetch the client metadata document: client\.example "
        r"resolves to a non-public address",
    ):
        await fetcher(host, [PUBLIC_ADDRESS, address]).fetch_document(CLIENT_URL)
    assert host.requests == []


async def test_redirects_are_not_followed() -> None:
    host = Host(status=302, headers={"location": "http://169.254.169.254/latest/meta-data"})
    with pytest.raises(DocumentError, match=r"^client metadata document answered HTTP 302$"):
        await fetcher(host).fetch_document(CLIENT_URL)
    assert len(host.requests) == 1


async def test_size_cap() -> None:
    host = Host(body=b"{" + b" " * 20000 + b"}")
    with pytest.raises(DocumentError, match=r"^client metadata document is larger than 16384 bytes$"):
        await fetcher(host).fetch_document(CLIENT_URL)


@pytest.mark.parametrize("media_type", ["text/html", "text/plain; charset=utf-8", ""])
async def test_other_content_types_are_refused(media_type: str) -> None:
    with pytest.raises(DocumentError, match=r"^client metadata document has content type .* not application/json$"):
        await fetcher(Host(headers={"content-type": media_type})).fetch_document(CLIENT_URL)


async def test_specific_json_content_type_is_accepted() -> None:
    host = Host(headers={"content-type": "application/oauth-client+json; charset=utf-8"})
    assert (await fetcher(host).fetch_document(CLIENT_URL)).document == document()


async def test_not_json() -> None:
    with pytest.raises(DocumentError, match=r"^client metadata document is not JSON$"):
        await fetcher(Host(body=b"<html>")).fetch_document(CLIENT_URL)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://client.example/meta.json", "a URL client_id must be an https URL"),
        ("https://client.example", "a URL client_id must have a path"),
        ("https://client.example/", "a URL client_id must have a path"),
        ("https://client.example/a#b", "a URL client_id must not contain a fragment"),
        ("https://user@client.example/a", "a URL client_id must not contain user information"),
        ("https://client.example/a/../b", "a URL client_id must not contain . or .. path segments"),
    ],
)
def test_client_id_url_rules(url: str, problem: str) -> None:
    assert client_id_url_problem(url) == problem


def make_harness(store, host: Host) -> Harness:
    return harness_for(store, document_fetcher=fetcher(host))


async def test_metadata_document_client_signs_in(store) -> None:
    host = Host()
    harness = make_harness(store, host)
    verifier, challenge = pkce()
    code = await harness.code_for(CLIENT_URL, (verifier, challenge))
    token = await harness.exchange(CLIENT_URL, code, verifier)
    assert token.status_code == 200
    assert (await harness.call("alpha", token.json()["access_token"])).status_code == 200
    assert len(host.requests) == 1  # cached: the second lookup (consent, callback) did not fetch again
    await harness.aclose()


async def test_consent_page_names_the_document_client(store) -> None:
    harness = make_harness(store, Host())
    page = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
    assert "Example Agent" in page.text and "metadata document" in page.text and CLIENT_URL in page.text
    assert "Any program running on it could claim to be this application" in page.text  # loopback redirect
    await harness.aclose()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            document(client_id="https://other.example/meta.json"),
            "the client metadata document&#x27;s client_id is not the URL it was fetched from",
        ),
        (document(redirect_uris=["http://attacker.example/cb"]), "uses http on a non-loopback host"),
        (
            document(token_endpoint_auth_method="client_secret_basic"),
            "asks for token_endpoint_auth_method &quot;client_secret_basic&quot;; only none is supported",
        ),
        (document(redirect_uris=["https://elsewhere.example/cb"]), "is not registered for this application"),
    ],
)
async def test_unusable_documents_are_an_error_page(store, body: dict, message: str) -> None:
    harness = make_harness(store, Host(body=body))
    page = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert message in page.text
    await harness.aclose()
