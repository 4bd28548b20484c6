"""Checking an upstream's 2xx JSON answer against the tool's published output schema.

One `OutputValidator` per tool that publishes one; `mismatch` names the first problem or returns None.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import best_match

from castproxy.openapi.patterns import EcmaValidator
from castproxy.upstream.fastcheck import compile_check

__all__ = ["OutputValidator"]

REASON_CHARS = 200


class OutputValidator:
    """JSON Schema (draft 2020-12, ECMA-262 patterns) check of one tool's structured content."""

    def __init__(self, output_schema: dict[str, Any]) -> None:
        self._validator = EcmaValidator(output_schema)
        self._certainly_valid = compile_check(output_schema)  # None: jsonschema every time

    def mismatch(self, structured: Any) -> str | None:
        """"PATH: REASON" of the most relevant problem (PATH like `$.items[2].count`), None when it conforms."""
        if self._certainly_valid is not None and self._certainly_valid(structured):
            return None
        try:
            error = best_match(self._validator.iter_errors(structured))
        except Exception:  # a schema jsonschema cannot evaluate: the answer cannot be vouched for
            return "$: the tool's output schema is not usable"
        if error is None:
            return None
        reason = error.message
        if len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 1] + "…"
        return f"{error.json_path}: {reason}"
