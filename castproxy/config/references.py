"""Secret references in string values: `${env:NAME}`, `${env:NAME:-default}` and `${file:PATH}`.

Errors name the reference, never a resolved value; every `${file:}` path is reported so `serve` can
watch it (rules: docs/architecture.md, "Config errors and secret references").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from castproxy.errors import CastproxyError

__all__ = ["ReferenceProblem", "Resolved", "resolve"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,19}$")
MAX_SECRET_FILE_BYTES = 64 * 1024
SYNTAX_HINT = "write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'"


class ReferenceProblem(CastproxyError):
    """A reference that is malformed or cannot be resolved; the message is safe to show."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path  # the secret file that could not be read, if that is the problem


@dataclass(frozen=True)
class Resolved:
    value: str
    has_reference: bool  # at least one ${...} was replaced
    defaults_used: tuple[str, ...]  # env variables that were unset, so their `:-default` applied
    files: tuple[Path, ...] = ()  # the `${file:}` paths read (absolute, symlinks not resolved)


def resolve(text: str, environ: Mapping[str, str], base_dir: Path) -> Resolved:
    """Replace every reference in `text`; raise ReferenceProblem for the first one that fails."""
    if "$" not in text:
        return Resolved(text, False, ())
    parts: list[str] = []
    defaults: list[str] = []
    files: list[Path] = []
    found = False
    index = 0
    while True:
        start = text.find("$", index)
        if start < 0:
            parts.append(text[index:])
            break
        parts.append(text[index:start])
        if text.startswith("$${", start):
            parts.append("${")
            index = start + 3
            continue
        if not text.startswith("${", start):
            parts.append("$")
            index = start + 1
            continue
        end = text.find("}", start + 2)
        if end < 0:
            raise ReferenceProblem(f"unclosed '${{' in this value: {SYNTAX_HINT}")
        value, default_used = _resolve_one(text[start + 2 : end], environ, base_dir, files)
        parts.append(value)
        if default_used:
            defaults.append(default_used)
        found = True
        index = end + 1
    return Resolved("".join(parts), found, tuple(defaults), tuple(files))


def _resolve_one(
    body: str, environ: Mapping[str, str], base_dir: Path, files: list[Path]
) -> tuple[str, str | None]:
    source, colon, argument = body.partition(":")
    if not colon:
        shown = f" '${{{body}}}'" if _SOURCE_NAME.match(body) else ""
        raise ReferenceProblem(f"malformed reference{shown}: {SYNTAX_HINT}")
    if source == "env":
        return _resolve_env(argument, environ)
    if source == "file":
        path = _secret_path(argument, base_dir)
        files.append(path)
        return _read_file(argument, path), None
    shown = f" '{source}'" if _SOURCE_NAME.match(source) else ""
    raise ReferenceProblem(f"unknown secret source{shown} in '${{...}}': use ${{env:NAME}} or ${{file:PATH}}")


def _resolve_env(argument: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    name, separator, default = argument.partition(":-")
    if not name:
        raise ReferenceProblem("empty variable name in '${env:}': write ${env:NAME}")
    if not _ENV_NAME.match(name):
        raise ReferenceProblem(
            f"'{name}' is not a valid environment variable name in '${{env:...}}' "
            "(letters, digits and '_', not starting with a digit)"
        )
    value = environ.get(name)
    if value:
        return value, None
    if separator:
        return default, name
    if value is None:
        raise ReferenceProblem(f"environment variable {name} is not set (referenced as ${{env:{name}}})")
    raise ReferenceProblem(f"environment variable {name} is empty (referenced as ${{env:{name}}})")


def _secret_path(argument: str, base_dir: Path) -> Path:
    if not argument.strip():
        raise ReferenceProblem("empty path in '${file:}': write ${file:PATH} (relative to the config's folder)")
    path = Path(argument).expanduser()
    return path if path.is_absolute() else base_dir / path


def _read_file(argument: str, path: Path) -> str:
    label = f"secret file {path}" + (f" (${{file:{argument}}})" if str(path) != argument else "")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ReferenceProblem(f"{label} does not exist", path) from None
    except IsADirectoryError:
        raise ReferenceProblem(f"{label} is a directory, not a file", path) from None
    except PermissionError:
        raise ReferenceProblem(f"{label} cannot be read: permission denied", path) from None
    except OSError as exc:
        raise ReferenceProblem(f"{label} cannot be read: {exc.strerror or 'I/O error'}", path) from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ReferenceProblem(f"{label} is larger than 64 KiB; a secret file holds only the secret", path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReferenceProblem(f"{label} is not UTF-8 text", path) from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text
