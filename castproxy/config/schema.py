"""The JSON Schema of cast.yaml, generated from the model (what `castproxy schema` prints).

A number, boolean or pattern-checked value may also be written as a `${env:}`/`${file:}` reference.
"""

from __future__ import annotations

import json
from typing import Any

from castproxy.config.model import Config

__all__ = ["SCHEMA_DIALECT", "config_schema", "schema_text"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:castproxy:schema:cast.yaml:v1"
TITLE = "castproxy config (cast.yaml)"
REFERENCE_DEF = "SecretReference"
REFERENCE_PATTERN = r"^.*\$\{(env|file):[^}]+\}.*$"
_REFERENCE = {"$ref": f"#/$defs/{REFERENCE_DEF}"}


def config_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(mode="validation")
    defs = schema.pop("$defs", {})
    for definition in defs.values():
        _allow_references_in_properties(definition)
    _allow_references_in_properties(schema)
    defs[REFERENCE_DEF] = {
        "type": "string",
        "pattern": REFERENCE_PATTERN,
        "title": "Secret reference",
        "description": "${env:NAME}, ${env:NAME:-default} or ${file:PATH} (relative to the config file), "
        "resolved when the config loads.",
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": TITLE,
        **{key: value for key, value in schema.items() if key != "title"},
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The schema as committed in schemas/cast.schema.json (stable key order, trailing newline)."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


def _allow_references_in_properties(definition: dict[str, Any]) -> None:
    for name, prop in list(definition.get("properties", {}).items()):
        definition["properties"][name] = _widen(prop)
    if "patternProperties" in definition:
        # a name -> value mapping: values may be references, keys must match the pattern
        for pattern, value in list(definition["patternProperties"].items()):
            definition["patternProperties"][pattern] = _widen(value)
        definition.setdefault("additionalProperties", False)


def _widen(prop: dict[str, Any]) -> dict[str, Any]:
    """Let a value that is not free text (a number, a boolean, a URL) also be written as a secret reference."""
    if "anyOf" in prop:
        if any(_widenable(option) for option in prop["anyOf"]):
            prop["anyOf"] = [*prop["anyOf"], _REFERENCE]
        return prop
    if prop.get("type") == "object":
        _allow_references_in_properties(prop)
        if isinstance(prop.get("additionalProperties"), dict):
            prop["additionalProperties"] = _widen(prop["additionalProperties"])
        return prop
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        prop["items"] = _widen(prop["items"])
        return prop
    if not _widenable(prop):
        return prop
    annotations: dict[str, Any] = {key: prop.pop(key) for key in ("title", "description", "default") if key in prop}
    return {"anyOf": [prop, _REFERENCE], **annotations}


def _widenable(option: dict[str, Any]) -> bool:
    kind = option.get("type")
    if "const" in option or "enum" in option:
        return False
    return kind in ("integer", "number", "boolean") or (kind == "string" and "pattern" in option)
