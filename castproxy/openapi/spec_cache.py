"""Remote specs kept on disk: the last good copy of each URL with its HTTP validators, content-addressed.

One conditional fetch per URL per build; a copy is written only once a workspace compiled from it
(layout: docs/architecture.md, "Loading, names and the spec cache").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from castproxy.openapi.loader import MAX_SPEC_BYTES, Fetched, SpecError, fetch_spec, safe_url

__all__ = ["CachedSpec", "FetchOutcome", "SpecCache", "SpecFetcher"]

log = logging.getLogger(__name__)

Fetch = Callable[..., Fetched]  # fetch_spec's signature; tests may pass a stand-in


@dataclass(frozen=True)
class CachedSpec:
    digest: str
    body: bytes
    etag: str | None
    last_modified: str | None
    stored_at: float  # epoch seconds


@dataclass(frozen=True)
class FetchOutcome:
    """Where one URL's bytes came from in this build."""

    digest: str
    source: str  # "network" (200), "not_modified" (304: the cached copy), "cache" (fetch failed: the cached copy)
    error: str | None = None  # why the network copy was not used (source "cache")
    cached_at: float | None = None  # when the copy served from the cache was stored


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class SpecCache:
    """The folder of last good copies. Every failure to read or write it is logged and ignored: the
    cache makes castproxy more available, it must never be a reason to fail."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._warned = False

    def _index(self, url: str) -> Path:
        return self.folder / "index" / f"{_digest(url.encode())}.json"

    def _object(self, digest: str) -> Path:
        return self.folder / "objects" / digest

    def get(self, url: str) -> CachedSpec | None:
        try:
            entry = json.loads(self._index(url).read_text(encoding="utf-8"))
            digest = str(entry["digest"])
            body = self._object(digest).read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._warn("cannot read the spec cache", exc)
            return None
        if _digest(body) != digest:  # a torn or tampered object: not a good copy
            return None
        return CachedSpec(digest, body, entry.get("etag"), entry.get("last_modified"), float(entry.get("stored_at", 0)))

    def put(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        digest = _digest(body)
        previous = self.get(url)
        entry = {"url": safe_url(url), "digest": digest, "etag": etag, "last_modified": last_modified,
                 "stored_at": time.time()}
        try:
            if not self._object(digest).exists():
                self._write(self._object(digest), body)
            self._write(self._index(url), json.dumps(entry).encode())
        except OSError as exc:
            self._warn("cannot write the spec cache", exc)
            return
        if previous is not None and previous.digest != digest and not self._referenced(previous.digest):
            with contextlib.suppress(OSError):
                self._object(previous.digest).unlink()

    def _referenced(self, digest: str) -> bool:
        """Whether another URL's entry still points at this object (two URLs may serve the same bytes)."""
        try:
            for path in (self.folder / "index").glob("*.json"):
                with contextlib.suppress(OSError, ValueError):
                    if json.loads(path.read_text(encoding="utf-8")).get("digest") == digest:
                        return True
        except OSError:
            return True
        return False

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _warn(self, message: str, exc: Exception) -> None:
        if not self._warned:  # once per process: a read-only volume would otherwise log on every build
            self._warned = True
            error = f"{type(exc).__name__}: {exc}"
            log.warning(message, extra={"fields": {"folder": str(self.folder), "error": error}})


class SpecFetcher:
    """The remote specs of one build: `fetcher(url)` gives bytes (for `load_document(fetcher=...)`)."""

    def __init__(
        self,
        cache: SpecCache | None,
        *,
        timeout: float = 10.0,
        max_bytes: int = MAX_SPEC_BYTES,
        fetch: Fetch = fetch_spec,
    ) -> None:
        self.cache = cache
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._fetch = fetch
        self._lock = threading.Lock()
        self._results: dict[str, tuple[bytes, FetchOutcome] | SpecError] = {}
        self._pending: dict[str, Fetched] = {}  # fetched with 200, not yet known to compile
        self.requests = 0  # network requests made (tests: one per URL per build)

    def __call__(self, url: str) -> bytes:
        with self._lock:  # builds are sequential today; the lock keeps "once per URL" true if they are not
            result = self._results.get(url)
            if result is None:
                result = self._results[url] = self._get(url)
        if isinstance(result, SpecError):
            raise result
        return result[0]

    def _get(self, url: str) -> tuple[bytes, FetchOutcome] | SpecError:
        cached = self.cache.get(url) if self.cache is not None else None
        self.requests += 1
        try:
            fetched = self._fetch(
                url,
                timeout=self.timeout,
                max_bytes=self.max_bytes,
                etag=cached.etag if cached else None,
                last_modified=cached.last_modified if cached else None,
            )
        except SpecError as exc:
            if cached is None:
                return exc
            return cached.body, FetchOutcome(cached.digest, "cache", exc.message, cached.stored_at)
        if fetched.body is None:
            assert cached is not None  # 304 only answers a conditional request
            return cached.body, FetchOutcome(cached.digest, "not_modified", None, cached.stored_at)
        self._pending[url] = fetched
        return fetched.body, FetchOutcome(_digest(fetched.body), "network")

    def outcome(self, url: str) -> FetchOutcome | None:
        result = self._results.get(url)
        return None if result is None or isinstance(result, SpecError) else result[1]

    def cached_copy(self, url: str) -> bytes | None:
        """The cache's copy of `url` when it differs from what this build fetched (a fallback to compile)."""
        if self.cache is None:
            return None
        cached = self.cache.get(url)
        outcome = self.outcome(url)
        if cached is None or (outcome is not None and outcome.digest == cached.digest):
            return None
        return cached.body

    def commit(self, url: str) -> None:
        """A workspace compiled from this URL's new bytes: keep them as the last good copy."""
        fetched = self._pending.pop(url, None)
        if fetched is not None and fetched.body is not None and self.cache is not None:
            self.cache.put(url, fetched.body, fetched.etag, fetched.last_modified)
