"""Config problems: each one points at FILE:LINE:COL (both counted from 1) and says what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from castproxy.errors import CastproxyError

__all__ = ["ConfigError", "Problem", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"


class ConfigError(CastproxyError):
    """A config that cannot be used; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem], *, files: frozenset[Path] = frozenset()) -> None:
        self.problems = problems
        self.files = files  # `${file:}` secrets this load read or tried to (serve watches them)
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]
