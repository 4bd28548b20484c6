"""docs/config.md documents every field of the model (a field added without docs fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from castproxy.config import model
from castproxy.config.messages import AUTH_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("owner", "heading"),
    [
        (model.Config, "## `{}`"),
        (model.ServerSettings, "### `server.{}`"),
        (model.StoreSettings, "### `store.{}`"),
        (model.Workspace, "### `{}`"),
    ],
)
def test_every_section_field_has_a_heading(owner: type[BaseModel], heading: str) -> None:
    missing = [name for name in owner.model_fields if f"\n{heading.format(name)}\n" not in DOC]
    assert missing == []


@pytest.mark.parametrize("auth_type", sorted(AUTH_TYPES))
def test_every_auth_type_and_field_is_documented(auth_type: str) -> None:
    section = DOC.split(f"\n#### `type: {auth_type}`\n", 1)
    assert len(section) == 2, f"no section for auth type {auth_type}"
    body = section[1].split("\n#", 1)[0]
    fields = [name for name in AUTH_TYPES[auth_type].model_fields if name != "type"]
    assert [name for name in fields if f"| `{name}` |" not in body] == []


def test_inbound_and_tool_entries_are_documented() -> None:
    assert "`api_keys`" in DOC
    for name in model.ToolSelection.model_fields:
        assert f"{name}:" in DOC.split("\n### `tools`\n", 1)[1].split("\n### ", 1)[0]
