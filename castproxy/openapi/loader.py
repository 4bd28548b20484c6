"""Loading an OpenAPI document: from a file or an http(s) URL, JSON or YAML, with bounded fetching.

Local file refs are bundled under `x-castproxy-files`; a remote `$ref` is an error, never fetched.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from castproxy.errors import CastproxyError

__all__ = [
    "FILES_KEY", "MAX_SPEC_BYTES", "Fetched", "SpecDocument", "SpecError", "cached_document", "fetch_spec",
    "gc_paused", "is_url", "load_document", "safe_url"
]

FILES_KEY = "x-castproxy-files"
# Far above any real spec (GitHub's 13 MB document is about 2 million values), far below an alias bomb.
MAX_EXPANDED_YAML_NODES = 10_000_000

_URL = re.compile(r"^https?://", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A `$ref` key whose value is a string not starting with '#': the only case that needs a walk of the
# document. Not a `$ref` inside a longer key (Graph's paths end in `/$ref`), nor an object value.
_NON_LOCAL_REF = re.compile(rb"""\$ref["']?\s*:\s*["']?(?!#)[^\s"'{\[]""")


_PARSED_CACHE_SIZE = 8
MAX_SPEC_BYTES = 64 * 2**20


class SpecError(CastproxyError):
    """An OpenAPI document that cannot be loaded or compiled; the message says what and where."""

    def __init__(self, message: str, *, offline_skipped: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.offline_skipped = offline_skipped


class SpecDocument(dict[str, Any]):
    """A loaded document: a dict, plus the digest of everything it was loaded from."""

    digest: str = ""


_parsed: OrderedDict[str, SpecDocument] = OrderedDict()
_parsed_lock = threading.Lock()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a big document is parsed or compiled: both only build acyclic
    data, and the collector's passes over millions of new objects cost a third of the time (Graph beta)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def is_url(source: str) -> bool:
    return bool(_URL.match(source))


def safe_url(url: str) -> str:
    """`url` for messages: a password and query values may be secrets (`?key=${env:K}`), so they are masked."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}" if parts.password is not None else host
        if parts.username and parts.password is None:
            netloc = f"{parts.username}@{host}"
        query = "&".join(
            f"{item.partition('=')[0]}=***" if "=" in item else item for item in parts.query.split("&") if item
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "(the spec URL)"


def cached_document(digest: str) -> SpecDocument | None:
    """A document this process parsed from bytes with this digest, while it is still cached (else None)."""
    with _parsed_lock:
        return _parsed.get(digest)


def load_document(
    source: str,
    base_dir: Path,
    *,
    offline: bool = False,
    timeout: float = 10.0,
    max_bytes: int = MAX_SPEC_BYTES,
    fetcher: Callable[[str], bytes] | None = None,
) -> dict[str, Any]:
    """Load and parse the spec at `source` (a path relative to `base_dir`, or an http(s) URL).

    `fetcher`, when given, supplies the bytes of a URL instead of a plain GET (the serving layer's
    spec cache: conditional requests, one fetch per URL per build, the last good copy when down)."""
    if is_url(source):
        if offline:
            raise SpecError(f"{source}: not fetched (offline)", offline_skipped=True)
        label = safe_url(source)
        if fetcher is not None:
            return _document(fetcher(source), label, None, max_bytes)
        raw = fetch_spec(source, timeout=timeout, max_bytes=max_bytes).body
        assert raw is not None  # no validators sent, so never 304
        return _document(raw, label, None, max_bytes)
    if _SCHEME.match(source) and not re.match(r"^[A-Za-z]:[\\/]", source):
        raise SpecError(f"{source}: only http(s) URLs and local file paths are supported")
    path = (base_dir / source).resolve()
    return _document(_read_file(path, source, max_bytes), source, path, max_bytes)


def _document(raw: bytes, label: str, path: Path | None, max_bytes: int) -> SpecDocument:
    """Parse `raw`, reusing the last parses of identical bytes: a reload that does not change a spec
    skips parsing (a large YAML spec takes a second) as well as compiling. A cached document is
    shared, so callers must not modify it (the compiler never does). Documents with refs into other
    files are bundled afresh each time (those files may have changed) and not cached."""
    digest = hashlib.sha256(raw).hexdigest()
    with _parsed_lock:
        cached = _parsed.get(digest)
        if cached is not None:
            _parsed.move_to_end(digest)
            return cached
    with gc_paused():
        document = _parse(raw, label)
    _check_version(document, label)
    result = SpecDocument(document)
    if _has_non_local_ref(raw):
        if path is None:
            _reject_external_refs(document, label)
        else:
            hasher = hashlib.sha256(raw)
            for chunk in _bundle(result, path, max_bytes):
                hasher.update(hashlib.sha256(chunk).digest())
            result.digest = hasher.hexdigest()
            return result
    result.digest = digest
    with _parsed_lock:
        _parsed[digest] = result
        while len(_parsed) > _PARSED_CACHE_SIZE:
            _parsed.popitem(last=False)
    return result


def _has_non_local_ref(raw: bytes) -> bool:
    for match in _NON_LOCAL_REF.finditer(raw):
        start = match.start()
        if start == 0 or raw[start - 1 : start] in (b'"', b"'", b" ", b"\t", b"\n", b"\r", b"{", b","):
            return True
    return False


def _read_file(path: Path, label: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SpecError(f"{label}: file is {size} bytes, over the {max_bytes}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{label}: no such file ({path})") from None
    except IsADirectoryError:
        raise SpecError(f"{label}: is a directory, not a spec file ({path})") from None
    except OSError as exc:
        raise SpecError(f"{label}: cannot read ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class Fetched:
    """One GET of a spec URL: the body (None when the server answered 304 Not Modified) and its validators."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None


def fetch_spec(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = MAX_SPEC_BYTES,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """GET `url`, conditionally when validators of a copy we hold are given (304: `body` is None).

    Errors name the URL with secrets masked and never echo httpx's text."""
    import httpx2  # imported here: most commands never fetch

    from castproxy.tls import outbound_tls

    label = safe_url(url)
    headers = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx2.Client(timeout=timeout, follow_redirects=True, max_redirects=5, verify=outbound_tls()) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if not _URL.match(str(response.url)):
                raise SpecError(f"{label}: redirected to a non-http(s) URL")
            validators = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
            if response.status_code == 304 and (etag or last_modified):
                return Fetched(None, **validators)
            if response.status_code != 200:
                raise SpecError(f"{label}: HTTP {response.status_code} when fetching the spec")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise SpecError(f"{label}: spec is {declared} bytes, over the {max_bytes}-byte limit")
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise SpecError(f"{label}: spec is over the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise SpecError(f"{label}: timed out after {timeout:g} s fetching the spec")
                chunks.append(chunk)
            return Fetched(b"".join(chunks), **validators)
    except httpx2.TimeoutException:
        raise SpecError(f"{label}: timed out after {timeout:g} s fetching the spec") from None
    except httpx2.TooManyRedirects:
        raise SpecError(f"{label}: too many redirects") from None
    except httpx2.HTTPError as exc:
        raise SpecError(f"{label}: cannot fetch the spec ({type(exc).__name__}: {exc})") from None


def _parse(raw: bytes, label: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"{label}: not UTF-8 text, so neither JSON nor YAML") from None
    try:
        if text.lstrip()[:1] in ("{", "["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return _parse_yaml(text, label)
    except RecursionError:
        raise SpecError(f"{label}: nests too deeply to load (thousands of levels)") from None


def _parse_yaml(text: str, label: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(f"{label}: not valid JSON or YAML ({where}{exc.problem})") from None
    except YAMLError as exc:
        raise SpecError(f"{label}: not valid JSON or YAML ({exc})") from None
    expanded = _expanded_size(data, {})
    if expanded > MAX_EXPANDED_YAML_NODES:
        # Aliases stay shared in memory but every consumer that serialises (tools/list) expands them.
        raise SpecError(
            f"{label}: YAML aliases expand to over {MAX_EXPANDED_YAML_NODES:,} values (an alias bomb?); "
            "refusing to load it"
        )
    return _jsonable(data, {})


def _expanded_size(value: Any, sizes: dict[int, int]) -> int:
    """How many values `value` becomes once every alias is written out; each shared node is counted once."""
    if not isinstance(value, dict | list):
        return 1
    known = sizes.get(id(value))
    if known is not None:
        return known
    sizes[id(value)] = 1  # a self-referencing alias counts once instead of recursing forever
    children = value.values() if isinstance(value, dict) else value
    total = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(value)] = total
    return total


def _jsonable(value: Any, seen: dict[int, Any]) -> Any:
    """YAML gives int keys (`200:`), dates and shared aliases; make it what JSON would have given."""
    if isinstance(value, dict):
        done = seen.get(id(value))
        if done is not None:
            return done
        out: dict[str, Any] = {}
        seen[id(value)] = out
        for key, item in value.items():
            out[key if isinstance(key, str) else _scalar_text(key)] = _jsonable(item, seen)
        return out
    if isinstance(value, list):
        done = seen.get(id(value))
        if done is not None:
            return done
        items: list[Any] = []
        seen[id(value)] = items
        items.extend(_jsonable(item, seen) for item in value)
        return items
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return None
    return value


def _scalar_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, datetime.date | datetime.datetime):
        return key.isoformat()
    return str(key)


def _check_version(document: Any, label: str) -> None:
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"a {type(document).__name__}"
        raise SpecError(f"{label}: not an OpenAPI document (the top level is {kind}, not a mapping)")
    version = document.get("openapi")
    if version is None:
        swagger = document.get("swagger")
        if swagger is None:
            raise SpecError(f"{label}: not an OpenAPI document (no 'openapi' or 'swagger' version field)")
        if str(swagger) != "2.0":
            raise SpecError(f"{label}: Swagger version {swagger!r} is not supported (2.0 and OpenAPI 3.x are)")
        return
    if not str(version).startswith("3."):
        raise SpecError(f"{label}: OpenAPI version {version!r} is not supported (3.0 and 3.1 are, and Swagger 2.0)")
    if not isinstance(document.get("paths", {}), dict):
        raise SpecError(f"{label}: 'paths' must be a mapping")


def _iter_refs(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Every dict holding a string `$ref`, iteratively (documents can nest deeply)."""
    stack = [node]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if id(item) in seen:
                continue
            seen.add(id(item))
            ref = item.get("$ref")
            if isinstance(ref, str):
                yield item, ref
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))


def _reject_external_refs(document: Any, label: str) -> None:
    for _, ref in _iter_refs(document):
        if not ref.startswith("#"):
            raise SpecError(f"{label}: $ref {ref!r} points outside the document; castproxy does not fetch remote refs")


def _escape(token: str) -> str:
    return quote(token.replace("~", "~0").replace("/", "~1"), safe="~!$&'()*+,;=:@-._")


def _bundle(document: dict[str, Any], root_path: Path, max_bytes: int) -> list[bytes]:
    """Load every local file the document refers to (transitively) and point refs into the bundle."""
    root_dir = root_path.parent
    files: dict[str, Any] = {}
    raws: list[bytes] = []
    queue: list[tuple[Any, Path]] = [(document, root_path)]
    while queue:
        node, current = queue.pop()
        for holder, ref in list(_iter_refs(node)):
            target, _, pointer = ref.partition("#")
            if not target:
                if current != root_path:
                    holder["$ref"] = f"#/{FILES_KEY}/{_escape(_file_key(current, root_dir))}{pointer}"
                continue
            if _SCHEME.match(target) or target.startswith("//"):
                raise SpecError(
                    f"{root_path.name}: remote $ref {ref!r} is not fetched; bundle it into the spec's folder"
                )
            path = (current.parent / target).resolve()
            if not path.is_relative_to(root_dir):
                raise SpecError(f"{root_path.name}: $ref {ref!r} points outside the spec's folder ({root_dir})")
            if path == root_path:
                holder["$ref"] = f"#{pointer}"
                continue
            key = _file_key(path, root_dir)
            if key not in files:
                raw = _read_file(path, f"$ref {ref!r}", max_bytes)
                loaded = _parse(raw, f"{key} (referenced as {ref!r})")
                files[key] = loaded
                raws.append(raw)
                queue.append((loaded, path))
            holder["$ref"] = f"#/{FILES_KEY}/{_escape(key)}{pointer}"
    if files:
        document[FILES_KEY] = files
    return raws


def _file_key(path: Path, root_dir: Path) -> str:
    return path.relative_to(root_dir).as_posix()
