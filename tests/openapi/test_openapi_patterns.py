"""Patterns as ECMA-262 `u`-mode regular expressions: translated where exact, else left out with a warning;
checked with a real ECMA-262 engine (regress, and Node's RegExp when present) on the APIs.guru specs
whose patterns JavaScript clients rejected, and used to check arguments the way clients check them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import regress
from openapi_support import directory_spec, spec
from support.node import node22

from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import load_document
from castproxy.openapi.patterns import ecma_pattern
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.fastcheck import compile_check

AWS = ["amp", "elasticfilesystem", "iotevents", "mediastore", "opsworkscm"]


def ecma_ok(pattern: str) -> bool:
    try:
        regress.Regex(pattern, "u")
    except Exception:
        return False
    return True


# (written, translated, a string both match, a string neither matches)
TRANSLATIONS = [
    (r"^[A-Za-z0-9\.\-\_\#/]+$", r"^[A-Za-z0-9\.\-_#/]+$", "log-group_#1/a.b", "no spaces"),
    (r"arn\:aws\:\*", r"arn:aws:\*", "arn:aws:*", "arn:aws:x"),
    (r"^[\w- ]+$", r"^[\w\- ]+$", "a b-c_d", "a+b"),
    (r"^[\-\p{Alnum}_:.]+$", r"^[\-A-Za-z0-9_:.]+$", "Abc-1:2.3", "a b"),
    (r"^\p{Alpha}+$", r"^\p{Alpha}+$", "Zoë", "a1"),  # a valid Unicode property in ECMA-262: kept
    (r"^[\~\*]+$", r"^[~\*]+$", "~*", "~a"),
    (r"^(\/(?!\.)+[^/]+)$", r"^(\/(?!\.)[^/]+)$", "/abc", "/.abc"),
    (r"^[[:alpha:]_]+$", r"^[A-Za-z_]+$", "ab_c", "ab1"),
    (r"(?P<y>\d{4})-(?P=y)", r"(?<y>\d{4})-\k<y>", "2024-2024", "2024-2025"),
    (r"\Aabc\Z", r"^abc$", "abc", "abcd"),
    (r"^a{2}x{$", r"^a{2}x\{$", "aax{", "ax{"),
    (r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$", r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$", "Tag é:1", "a\nb"),
]


@pytest.mark.parametrize(("written", "translated", "match", "miss"), TRANSLATIONS,
                         ids=[case[0] for case in TRANSLATIONS])
def test_patterns_are_translated_exactly(written: str, translated: str, match: str, miss: str) -> None:
    assert ecma_pattern(written) == translated
    regex = regress.Regex(translated, "u")
    assert regex.find(match) is not None
    assert regex.find(miss) is None


@pytest.mark.parametrize("written", [r"(?i)abc", r"a*+", r"\e", r"[a-z&&[^b]]", r"(?>a)", r"x{,3}", r"(?i:a)"])
def test_patterns_without_an_exact_translation_are_refused(written: str) -> None:
    assert ecma_pattern(written) is None


def test_compiled_schemas_carry_translated_patterns_or_none_with_a_warning() -> None:
    document = spec({"/t/{name}": {"put": {
        "operationId": "putTag",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": r"^[\w\_]+$"}}],
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Tag"}}}},
        "responses": {"200": {"description": "ok"}},
    }}}, components={"schemas": {"Tag": {"type": "object", "properties": {
        "key": {"type": "string", "pattern": r"(?i)^key"},
        "labels": {"type": "object", "patternProperties": {r"^x\-\p{Alnum}+$": {"type": "string"},
                                                           r"(?i)^y": {"type": "integer"}},
                   "additionalProperties": False},
    }}}})
    tool = compile_spec(document).tools[0]
    props = tool.input_schema["properties"]
    assert props["name"]["pattern"] == r"^[\w_]+$"
    assert "pattern" not in props["key"]
    assert set(props["labels"]["patternProperties"]) == {r"^x-[A-Za-z0-9]+$"}
    # With a pattern left out, other names are no longer excluded: the schema stays permissive.
    assert "additionalProperties" not in props["labels"]
    assert "putTag (PUT /t/{name}): schema Tag at /properties/key: pattern '(?i)^key' is not an ECMA-262 " \
           "regular expression (u mode); left out" in tool.warnings
    assert any("patternProperties key '(?i)^y'" in warning and "schema Tag at /properties/labels" in warning
               for warning in tool.warnings)
    validator = ArgumentValidator(tool.input_schema)
    assert validator.errors({"name": "a_b", "labels": {"x-abc": "v", "other": 1}}) == []
    assert validator.errors({"name": "a b"})


def test_arguments_are_checked_with_ecma_262_semantics() -> None:
    """`\\p{L}` (AWS tag patterns) is valid ECMA-262 but not Python `re`; `$` does not match before a final newline."""
    schema = {"type": "object", "properties": {"tag": {"type": "string", "pattern": r"^[\p{L}\p{N} _.:/=+\-@]*$"},
                                               "code": {"type": "string", "pattern": "^[a-z]+$"}},
              "additionalProperties": False}
    with pytest.raises(re.error):
        re.compile(schema["properties"]["tag"]["pattern"])
    validator = ArgumentValidator(schema)
    assert validator.errors({"tag": "Équipe 7", "code": "abc"}) == []
    assert validator.errors({"tag": "bad\x00"}) and validator.errors({"code": "abc\n"})
    check = compile_check(schema)
    assert check is not None and check({"tag": "Équipe 7"}) and not check({"code": "abc\n"})


def _patterns(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.add(value)
            elif key == "patternProperties" and isinstance(value, dict):
                found.update(value)
            _patterns(value, found)
    elif isinstance(node, list):
        for value in node:
            _patterns(value, found)
    return found


@pytest.mark.parametrize("name", AWS)
def test_apis_guru_specs_compile_with_ecma_262_patterns(name: str) -> None:
    path = directory_spec(f"amazonaws.com/{name}.json")
    document = load_document(str(path), Path("/"))
    written = _patterns(document, set())
    assert any(not ecma_ok(pattern) for pattern in written)  # the spec does carry a pattern clients reject
    compiled = compile_spec(document, output_schema=True)
    published: set[str] = set()
    for tool in compiled.tools:
        _patterns(tool.input_schema, published)
        _patterns(tool.output_schema, published)
    assert published
    assert [pattern for pattern in published if not ecma_ok(pattern)] == []
    # Every rejected pattern had an exact translation here: none was dropped.
    assert not [warning for warning in compiled.warnings if "not an ECMA-262" in warning]


@pytest.mark.node
def test_node_compiles_every_published_pattern(tmp_path: Path) -> None:
    """The same check with the JavaScript engine MCP clients run (Node's RegExp, `u` flag)."""
    published: set[str] = {translated for _, translated, _, _ in TRANSLATIONS}
    for name in AWS:
        compiled = compile_spec(load_document(str(directory_spec(f"amazonaws.com/{name}.json")), Path("/")))
        for tool in compiled.tools:
            _patterns(tool.input_schema, published)
    source = tmp_path / "patterns.json"
    source.write_text(json.dumps(sorted(published)))
    script = ("const ps = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); const bad = [];"
              "for (const p of ps) { try { new RegExp(p, 'u'); } catch (e) { bad.push(p); } }"
              "console.log(JSON.stringify({count: ps.length, bad}));")
    result = subprocess.run([node22(), "-e", script, str(source)], capture_output=True, text=True, timeout=60,
                            check=True)
    verdict = json.loads(result.stdout)
    assert verdict == {"count": len(published), "bad": []}
