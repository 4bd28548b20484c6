"""Loading cast.yaml: YAML with positions -> secret references -> env overrides -> model -> cross-field rules.

Either a whole valid `LoadedConfig` comes back, or `ConfigError` with every problem at FILE:LINE:COL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from castproxy.config.messages import Located, explain_validation_error
from castproxy.config.model import Config
from castproxy.config.overrides import ServerOverrides, variable_for
from castproxy.config.problems import ConfigError, Problem, Severity
from castproxy.config.references import ReferenceProblem, resolve
from castproxy.config.rules import SecretOrigins, check, secret_paths
from castproxy.config.source import Loc, SourceMap, parse_yaml

__all__ = [
    "CONFIG_ENV", "IDENTITY_CALLBACK_PATH", "UNRESOLVED_SECRET", "UPSTREAM_CALLBACK_PATH", "LoadedConfig",
    "load_config", "resolve_config_path"
]

CONFIG_ENV = "CASTPROXY_CONFIG"
DEFAULT_CONFIG = "cast.yaml"
UPSTREAM_CALLBACK_PATH = "/oauth/callback"
IDENTITY_CALLBACK_PATH = "/oauth/identity/callback"  # server.identity: the redirect URI at the company provider
MAX_CONFIG_BYTES = 4 * 2**20
# Stands in for a reference that could not be resolved: long and non-empty, so no rule reports the
# value as missing or short on top of the error that names the reference (or, with need_secrets=False,
# so commands that never use secrets run). Never used for anything else: such a config is refused,
# and connect/tools/lock/diff send no secret anywhere.
UNRESOLVED_SECRET = "castproxy-unresolved-reference-0000000000000000000000000000000000"

def resolve_config_path(option: str | None) -> Path:
    """The `-c` value, else $CASTPROXY_CONFIG, else ./cast.yaml."""
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


@dataclass(frozen=True)
class LoadedConfig:
    """A valid config, where it came from, and how to point at any part of its file."""

    config: Config
    path: Path
    base_dir: Path
    warnings: list[Problem]
    public_url: str
    positions: SourceMap = field(default_factory=SourceMap, repr=False, compare=False)
    secret_files: frozenset[Path] = frozenset()  # every `${file:}` read (serve watches them for changes)

    @property
    def callback_url(self) -> str:
        """The redirect URI to register at upstream OAuth servers."""
        return self.public_url + UPSTREAM_CALLBACK_PATH

    @property
    def identity_callback_url(self) -> str:
        """The redirect URI to register for castproxy's client at the company identity provider."""
        return self.public_url + IDENTITY_CALLBACK_PATH

    def locate(self, loc: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, column) of the key or value at `loc`, else of its nearest parent in the file."""
        return self.positions.locate(tuple(loc))

    def problem(self, loc: tuple[str | int, ...], message: str, severity: Severity = "error") -> Problem:
        line, column = self.locate(loc)
        return Problem(str(self.path), line, column, message, severity)


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, need_secrets: bool = True
) -> LoadedConfig:
    """Load and check a config file; raises ConfigError listing every error found.

    `need_secrets=False` is for commands that never use a credential (`connect`, `tools WORKSPACE`,
    `lock`, `diff`, `validate --offline`): a secret (a value in a secret position) whose reference cannot
    be resolved gets a placeholder and a warning instead of an error, so they run without the production
    secrets. Other references must resolve."""
    environ = os.environ if environ is None else environ
    path = Path(path).absolute()
    return _Loading(path, environ, need_secrets=need_secrets).run()


class _Loading:
    """One load: the steps share the file's positions and the problems found so far."""

    def __init__(self, path: Path, environ: Mapping[str, str], *, need_secrets: bool = True) -> None:
        self.path = path
        self.base_dir = path.parent
        self.environ = environ
        self.need_secrets = need_secrets
        self.secret_paths: set[Loc] = set()
        self.unresolved: set[Loc] = set()  # references that failed: their error is the only one reported there
        self.positions = SourceMap()
        self.origins = SecretOrigins()
        self.problems: list[Problem] = []
        self.files: set[Path] = set()  # every `${file:}` read or tried (serve watches them)

    def run(self) -> LoadedConfig:
        try:
            return self._run()
        except ConfigError as exc:
            raise ConfigError(exc.problems, files=frozenset(self.files)) from None

    def _run(self) -> LoadedConfig:
        text = self._read()
        parsed = parse_yaml(text)
        self.positions = parsed.positions
        self.problems += [self._at(p.line, p.column, p.message) for p in parsed.problems]
        if parsed.data is None and self.problems:
            raise ConfigError(self.problems)
        if parsed.data is None:
            raise ConfigError([self._at(1, 1, "the config file is empty: it needs `version: 1` and `workspaces:`")])
        if not self.need_secrets and isinstance(parsed.data, dict):
            self.secret_paths = secret_paths(parsed.data)
        data = self._resolve_references(parsed.data, ())
        self._apply_overrides(data)
        config = self._validate(data)
        for finding in check(data, self.origins, lambda loc: self.positions.locate(loc, key=True)[0]):
            self._add(finding.located, finding.severity)
        errors = [p for p in self.problems if p.severity == "error"]
        if errors or config is None:
            raise ConfigError(_ordered(self.problems))
        warnings = _ordered([p for p in self.problems if p.severity == "warning"])
        return LoadedConfig(
            config, self.path, self.base_dir, warnings, public_url(config), self.positions, frozenset(self.files)
        )

    def _read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            raise ConfigError([self._at(1, 1, "config file not found")]) from None
        except IsADirectoryError:
            raise ConfigError([self._at(1, 1, "this is a directory, not a config file")]) from None
        except OSError as exc:
            raise ConfigError([self._at(1, 1, f"cannot read the config file: {exc.strerror}")]) from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError([self._at(1, 1, "config file is larger than 4 MiB")])
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError([self._at(line, 1, "config file is not UTF-8 text")]) from None

    def _resolve_references(self, node: Any, path: Loc) -> Any:
        if isinstance(node, dict):
            return {key: self._resolve_references(value, (*path, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [self._resolve_references(value, (*path, index)) for index, value in enumerate(node)]
        if not isinstance(node, str):
            return node
        try:
            resolved = resolve(node, self.environ, self.base_dir)
        except ReferenceProblem as exc:
            if exc.path is not None:
                self.files.add(exc.path)
            self.origins.referenced.add(path)  # never quote this value in later messages
            if path in self.secret_paths:  # named, but not an error: this command runs without secrets
                self._add(Located(path, f"{exc}; serving needs it"), "warning")
            else:
                self._add(Located(path, str(exc)))
                self.unresolved.add(path)
            return UNRESOLVED_SECRET
        self.files.update(resolved.files)
        if resolved.has_reference:
            self.origins.referenced.add(path)
        if resolved.defaults_used:
            self.origins.defaults[path] = resolved.defaults_used
        return resolved.value

    def _apply_overrides(self, data: Any) -> None:
        try:
            overrides = ServerOverrides.from_environ(self.environ)
        except ValidationError as exc:
            for error in exc.errors():
                field_name = str(error["loc"][0])
                as_data = {"server": {field_name: error.get("input")}}
                at_server: ErrorDetails = {**error, "loc": ("server", field_name)}
                located = explain_validation_error(at_server, as_data, may_show=lambda _: True)
                self._add(Located(("server", field_name), f"environment variable {variable_for(field_name)}: "
                                  f"{located.message}"))
            return
        values = overrides.values()
        if not values or not isinstance(data, dict):
            return
        server = data.get("server")
        if server is None:
            server = data["server"] = {}
        if not isinstance(server, dict):
            return  # the model reports the bad `server`
        for name, value in values.items():
            server[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            self.origins.environment[("server", name)] = variable_for(name)
            self.origins.referenced.add(("server", name))

    def _validate(self, data: Any) -> Config | None:
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._add(explain_validation_error(error, data, may_show=self._may_show))
            return None

    def _may_show(self, path: Loc) -> bool:
        return path not in self.origins.referenced

    def _add(self, located: Located, severity: Severity = "error") -> None:
        if located.path in self.unresolved:
            return  # the reference's own error is there already; its stand-in value adds none
        line, column = self.positions.locate(located.path, key=located.key)
        message = located.message
        variable = self.origins.environment.get(located.path)
        if variable and variable not in message:
            message = f"{message} (from {variable})"
        self.problems.append(self._at(line, column, message, severity))

    def _at(self, line: int, column: int, message: str, severity: Severity = "error") -> Problem:
        return Problem(str(self.path), line, column, message, severity)


def public_url(config: Config) -> str:
    """server.public_url, else http://HOST:PORT (a wildcard listen address becomes localhost)."""
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.server.port}"


def _ordered(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line, p.column))
