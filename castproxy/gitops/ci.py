"""`castproxy validate` output for CI systems: GitHub Actions workflow commands, or one JSON object
(shapes and escaping: docs/gitops.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from castproxy.config.problems import Problem

__all__ = ["escape_data", "escape_property", "github_command", "validate_json"]

TITLE = "castproxy validate"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def repository_path(file: str, environ: Mapping[str, str] | None = None) -> str:
    """`file` as GitHub names it: relative to $GITHUB_WORKSPACE (else the working folder) when inside it."""
    environ = os.environ if environ is None else environ
    absolute = Path(os.path.abspath(file))
    for root in (environ.get("GITHUB_WORKSPACE"), os.getcwd()):
        if root:
            try:
                return absolute.relative_to(os.path.abspath(root)).as_posix()
            except ValueError:
                continue
    return file


def github_command(problem: Problem, environ: Mapping[str, str] | None = None) -> str:
    command = "warning" if problem.severity == "warning" else "error"
    properties = {
        "file": repository_path(problem.file, environ),
        "line": str(problem.line),
        "col": str(problem.column),
        "title": TITLE,
    }
    shown = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{command} {shown}::{escape_data(problem.message)}"


def validate_json(
    config: str, problems: Sequence[Problem], *, offline: bool, workspaces: Sequence[Mapping[str, Any]] = (),
    redirect_uri: str | None = None,
) -> str:
    errors = sum(1 for problem in problems if problem.severity == "error")
    payload = {
        "config": config,
        "valid": errors == 0,
        "offline": offline,
        "errors": errors,
        "warnings": len(problems) - errors,
        "problems": [
            {"file": p.file, "line": p.line, "column": p.column, "severity": p.severity, "message": p.message}
            for p in problems
        ],
        "workspaces": list(workspaces) if errors == 0 else [],
        "redirect_uri": redirect_uri if errors == 0 else None,
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
