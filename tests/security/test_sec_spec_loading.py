"""Spec loading with hostile documents: YAML alias bombs and symlinked $refs leaving the spec's folder.

Specs are operator-configured, but a spec URL often points at a third party's API (its published
openapi.yaml): its content is not under the operator's control, and reloads fetch it again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import SpecError, load_document


def _alias_bomb(levels: int = 8) -> str:
    defs = ["x-lol:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        defs.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(
        [
            "openapi: 3.0.0",
            "info: {title: t, version: '1'}",
            *defs,
            "paths:",
            "  /x:",
            "    get:",
            "      operationId: op",
            f"      parameters: [{{name: q, in: query, schema: {{type: string, enum: *a{levels}}}}}]",
            "      responses: {'200': {description: ok}}",
        ]
    )


def test_yaml_alias_bomb_in_enum_values_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(_alias_bomb())
    started = time.monotonic()
    with pytest.raises(SpecError, match="YAML aliases expand"):
        compile_spec(load_document("spec.yaml", tmp_path))
    assert time.monotonic() - started < 5


def test_symlinked_ref_file_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("type: string\ndescription: from outside\n")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "schemas.yaml").symlink_to(outside / "secret.yaml")
    (spec_dir / "spec.yaml").write_text(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      operationId: op\n"
        "      parameters: [{name: q, in: query, schema: {$ref: 'schemas.yaml'}}]\n"
        "      responses: {'200': {description: ok}}\n"
    )
    with pytest.raises(SpecError, match="outside the spec's folder"):
        load_document("spec.yaml", spec_dir)
