"""The on-disk spec cache and the per-build fetcher: conditional GETs, one request per URL, the last good copy.

Against a real HTTP server on loopback (support.spec_host) that answers 304 to a matching
If-None-Match / If-Modified-Since, and a real cache folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_support import spec
from support.servers import Running
from support.spec_host import SpecHost, serve_spec

from castproxy.openapi.loader import SpecError
from castproxy.openapi.spec_cache import SpecCache, SpecFetcher

DOCUMENT = spec({"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}})


@pytest.fixture
def host() -> Iterator[tuple[SpecHost, Running]]:
    spec_host = SpecHost(DOCUMENT)
    running = serve_spec(spec_host)
    yield spec_host, running
    running.stop()


def test_a_copy_is_kept_only_once_committed_and_then_revalidated(
    host: tuple[SpecHost, Running], tmp_path: Path
) -> None:
    spec_host, running = host
    url = running.url + "/openapi.json"
    cache = SpecCache(tmp_path / "spec-cache")
    first = SpecFetcher(cache)
    assert json.loads(first(url)) == DOCUMENT
    assert first.outcome(url).source == "network"
    assert cache.get(url) is None  # not known to compile yet
    first.commit(url)
    kept = cache.get(url)
    assert kept is not None and kept.etag and kept.last_modified

    again = SpecFetcher(cache)
    assert json.loads(again(url)) == DOCUMENT
    assert again.outcome(url).source == "not_modified"
    assert spec_host.seen[-1].if_none_match == kept.etag and spec_host.seen[-1].status == 304

    spec_host.change({**DOCUMENT, "info": {"title": "v2", "version": "2"}})
    changed = SpecFetcher(cache)
    assert json.loads(changed(url))["info"]["title"] == "v2"
    assert changed.outcome(url).source == "network" and spec_host.seen[-1].status == 200


def test_last_modified_alone_is_enough_to_revalidate(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    spec_host, running = host
    spec_host.etag = False
    url = running.url + "/openapi.json"
    cache = SpecCache(tmp_path)
    fetcher = SpecFetcher(cache)
    fetcher(url)
    fetcher.commit(url)
    again = SpecFetcher(cache)
    again(url)
    assert spec_host.seen[-1].if_none_match is None and spec_host.seen[-1].if_modified_since
    assert again.outcome(url).source == "not_modified"


def test_one_request_per_url_per_build(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    spec_host, running = host
    url = running.url + "/openapi.json"
    fetcher = SpecFetcher(SpecCache(tmp_path))
    for _ in range(5):
        fetcher(url)
    assert len(spec_host.seen) == 1 and fetcher.requests == 1


def test_down_url_serves_the_last_good_copy_and_says_why(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    spec_host, running = host
    url = running.url + "/openapi.json"
    cache = SpecCache(tmp_path)
    fetcher = SpecFetcher(cache)
    fetcher(url)
    fetcher.commit(url)
    spec_host.status = 502
    fallback = SpecFetcher(cache)
    assert json.loads(fallback(url)) == DOCUMENT
    outcome = fallback.outcome(url)
    assert outcome.source == "cache" and "HTTP 502" in outcome.error and outcome.cached_at
    running.stop()  # nothing listens any more
    down = SpecFetcher(cache)
    assert json.loads(down(url)) == DOCUMENT
    assert "cannot fetch the spec" in down.outcome(url).error
    with pytest.raises(SpecError, match="cannot fetch the spec"):
        SpecFetcher(SpecCache(tmp_path / "empty"))(url)  # no copy: the error as before


def test_layout_is_content_addressed_and_keeps_no_secret(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    _, running = host
    url = running.url + "/openapi.json?key=sk-secret-in-query"
    cache = SpecCache(tmp_path)
    fetcher = SpecFetcher(cache)
    body = fetcher(url)
    fetcher.commit(url)
    digest = hashlib.sha256(body).hexdigest()
    assert (tmp_path / "objects" / digest).read_bytes() == body
    [index] = (tmp_path / "index").iterdir()
    assert index.name == hashlib.sha256(url.encode()).hexdigest() + ".json"
    assert "sk-secret-in-query" not in index.read_text() and json.loads(index.read_text())["digest"] == digest


def test_a_damaged_copy_is_not_served(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    spec_host, running = host
    url = running.url + "/openapi.json"
    cache = SpecCache(tmp_path)
    fetcher = SpecFetcher(cache)
    fetcher(url)
    fetcher.commit(url)
    [obj] = (tmp_path / "objects").iterdir()
    obj.write_bytes(b'{"truncated')
    assert cache.get(url) is None
    spec_host.status = 500
    with pytest.raises(SpecError, match="HTTP 500"):
        SpecFetcher(cache)(url)


def test_an_unwritable_cache_never_fails_a_fetch(host: tuple[SpecHost, Running], tmp_path: Path) -> None:
    _, running = host
    url = running.url + "/openapi.json"
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    fetcher = SpecFetcher(SpecCache(blocked / "spec-cache"))
    assert json.loads(fetcher(url)) == DOCUMENT
    fetcher.commit(url)  # logged once, ignored
