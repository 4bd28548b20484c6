"""Checking tool arguments against the tool's input schema, with messages a model can act on.

One `ArgumentValidator` is made per tool per config snapshot; its costly part (the jsonschema
validator) is built on the tool's first call. Messages name each wrong or missing argument and quote
at most a short excerpt of the value, never the value of an argument that looks secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from castproxy.openapi.patterns import EcmaValidator, unmatched_names
from castproxy.upstream.fastcheck import compile_check

__all__ = ["ArgumentValidator"]

EXCERPT_CHARS = 40
MAX_LISTED_CHOICES = 8

# Names that usually carry credentials: their values are never quoted back, whatever the schema says.
_SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|api[-_]?key|credential|private[-_]?key", re.IGNORECASE)


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short printable rendering of an argument value: strings quoted, others as JSON."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_secret_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and (
        schema.get("writeOnly") is True or schema.get("format") == "password" or schema.get("x-secret") is True
    )


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _choices(values: Sequence[Any]) -> str:
    shown = ", ".join(excerpt(value) for value in values[:MAX_LISTED_CHOICES])
    return shown + (", …" if len(values) > MAX_LISTED_CHOICES else "")


class ArgumentValidator:
    """JSON Schema (draft 2020-12, ECMA-262 patterns) check of one tool's arguments; `$ref`s into the
    schema's own `$defs` resolve locally."""

    def __init__(self, input_schema: dict[str, Any]) -> None:
        # Built on the first call, not here: a snapshot of 20,000 operations must not pay for tools never called.
        self._schema = input_schema
        self._built = False

    def _build(self) -> None:
        input_schema = self._schema
        self._validator = EcmaValidator(input_schema)
        self._certainly_valid = compile_check(input_schema)  # None: the schema needs jsonschema every time
        properties = input_schema.get("properties") if isinstance(input_schema, dict) else None
        self._secret_arguments = frozenset(
            name
            for name, schema in (properties or {}).items()
            if _is_secret_schema(schema) or _SECRET_NAME.search(name)
        )
        self._built = True  # last: a concurrent first call builds again rather than read half a validator

    def errors(self, arguments: dict[str, Any]) -> list[str]:
        """One message per problem, naming the argument; empty when the arguments are valid."""
        if not self._built:
            self._build()
        if self._certainly_valid is not None and self._certainly_valid(arguments):
            return []
        try:
            found = list(self._validator.iter_errors(arguments))
        except Exception:  # a schema jsonschema cannot evaluate: say so rather than crash the call
            return ["the arguments could not be checked: the tool's input schema is not usable"]
        messages: list[str] = []
        for error in found:
            for message in self._messages_for(error):
                if message not in messages:
                    messages.append(message)
        return messages

    def _is_secret(self, error: ValidationError) -> bool:
        path = list(error.absolute_path)
        if path and path[0] in self._secret_arguments:
            return True
        if any(isinstance(part, str) and _SECRET_NAME.search(part) for part in path):
            return True
        return _is_secret_schema(error.schema)

    def _messages_for(self, error: ValidationError) -> list[str]:
        """The messages for one jsonschema error: one per argument for an object's members, else one."""
        members = _member_messages(error)
        if members is not None:
            return members
        path = list(error.absolute_path)
        keyword = error.validator
        if not isinstance(keyword, str) or error.schema is False:  # a `false` subschema: no keyword (None)
            return [f"argument '{_dotted(path)}' is not allowed"]
        if not path and keyword == "type":
            return ["the arguments must be a JSON object"]
        subject = f"argument '{_dotted(path)}'" if path else "the arguments"
        if keyword in ("anyOf", "oneOf") and error.context:
            inner = best_match(error.context)
            details = self._messages_for(inner) if inner is not None else []
            suffix = f" ({details[0]})" if details else ""
            return [f"{subject} does not match any of the allowed forms{suffix}"]
        value = "" if self._is_secret(error) else f": {excerpt(error.instance)}"
        return [_keyword_message(keyword, subject, value, error.validator_value)]


def _member_messages(error: ValidationError) -> list[str] | None:
    """One message per named argument for `required`, unexpected properties and `dependentRequired`;
    None for any other error."""
    instance = error.instance
    if not isinstance(instance, dict):
        return None
    path = list(error.absolute_path)
    # Any | Unset in the stubs: Unset only on hand-built errors, never on those iter_errors yields.
    expected: Any = error.validator_value
    if error.validator == "required":
        return [f"missing required argument '{_dotted([*path, missing])}'" for missing in expected
                if missing not in instance]
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        schema = error.schema if isinstance(error.schema, dict) else {}
        return [f"unexpected argument '{_dotted([*path, extra])}'" for extra in unmatched_names(instance, schema)]
    if error.validator == "dependentRequired":
        return [
            f"argument '{_dotted([*path, key])}' also needs {', '.join(repr(n) for n in needs)}"
            for key, needs in expected.items()
            if key in instance and any(n not in instance for n in needs)
        ]
    return None


# Keywords whose message needs only the subject, the quoted value (": 'abc'", or "" for a secret) and the
# keyword's value in the schema.
_MESSAGES = {
    "minimum": "{subject}: {shown} is less than the minimum of {expected}",
    "exclusiveMinimum": "{subject}: {shown} is less than or equal to the minimum of {expected}",
    "maximum": "{subject}: {shown} is greater than the maximum of {expected}",
    "exclusiveMaximum": "{subject}: {shown} is greater than or equal to the maximum of {expected}",
    "multipleOf": "{subject}{value} is not a multiple of {expected}",
    "minLength": "{subject} is too short (at least {expected} characters)",
    "maxLength": "{subject} is too long (at most {expected} characters)",
    "pattern": "{subject}{value} does not match the pattern {expected!r}",
    "minItems": "{subject} needs at least {expected} items",
    "maxItems": "{subject} takes at most {expected} items",
    "uniqueItems": "{subject} must not contain duplicate items",
    "minProperties": "{subject} needs at least {expected} properties",
    "maxProperties": "{subject} takes at most {expected} properties",
    "oneOf": "{subject} matches more than one of the allowed forms",
    "not": "{subject} has a value that is not allowed",
    "format": "{subject}{value} is not a valid {expected}",
}


def _keyword_message(keyword: str, subject: str, value: str, expected: Any) -> str:
    """The message for a keyword that judges the value as a whole."""
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        return f"{subject}{value} is not of type {', '.join(repr(t) for t in types)}"
    if keyword == "enum":
        return f"{subject}{value} is not one of {_choices(expected)}"
    if keyword == "const":
        return f"{subject} must be {excerpt(expected)}"
    template = _MESSAGES.get(keyword)
    if template is None:
        return f"{subject} is invalid ({keyword})"
    shown = value[2:] if value else "the value"
    return template.format(subject=subject, value=value, shown=shown, expected=expected)
