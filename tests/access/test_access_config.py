"""The access settings in cast.yaml: bad values at FILE:LINE:COL, and what validate and connect print."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from castproxy.config.loader import load_config
from castproxy.config.problems import ConfigError

SPEC = '{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "http://127.0.0.1:9"}], ' \
       '"paths": {"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}}}'
KEY = "k" * 40


def _errors(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "spec.json").write_text(SPEC)
    path = tmp_path / "cast.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as failure:
        load_config(path, {})
    return [f"{problem.line}:{problem.column}: {problem.message}" for problem in failure.value.errors]


def test_a_rate_in_another_unit_is_refused_at_its_position(tmp_path: Path) -> None:
    found = _errors(tmp_path, """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            rate_limit: {per_caller: 10/day}
            tools: [listItems]
        """)
    assert len(found) == 1 and found[0].startswith("5:")
    assert "a rate like 10/minute: N/second, N/minute or N/hour" in found[0]


def test_identity_needs_the_secret_key(tmp_path: Path) -> None:
    found = _errors(tmp_path, """\
        version: 1
        server:
          identity: {issuer: "https://idp.example", client_id: castproxy}
        workspaces:
          api: {openapi: ./spec.json, tools: [listItems]}
        """)
    assert found == ["3:3: server.identity needs `server.secret_key` (sign-in sessions and tokens are protected with "
                     "it; at least 32 random characters)"]


def test_a_symmetric_or_none_algorithm_is_refused(tmp_path: Path) -> None:
    found = _errors(tmp_path, f"""\
        version: 1
        server:
          secret_key: {KEY}
          identity: {{issuer: "https://idp.example", client_id: castproxy, algorithms: [HS256]}}
        workspaces:
          api: {{openapi: ./spec.json, tools: [listItems]}}
        """)
    assert len(found) == 1 and found[0].startswith("4:") and "asymmetric JOSE algorithms only" in found[0]


def test_two_named_keys_with_one_name_are_refused(tmp_path: Path) -> None:
    found = _errors(tmp_path, """\
        version: 1
        workspaces:
          api:
            openapi: ./spec.json
            inbound:
              api_keys:
                - {name: bot, key: aaaaaaaaaaaaaaaa}
                - {name: bot, key: bbbbbbbbbbbbbbbb}
            tools: [listItems]
        """)
    assert found == ["8:18: inbound key name 'bot' is used twice in this workspace"]


def test_validate_and_connect_print_the_identity_redirect_uri(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SPEC)
    config = tmp_path / "cast.yaml"
    config.write_text(textwrap.dedent(f"""\
        version: 1
        server:
          public_url: https://mcp.corp.example
          secret_key: {KEY}
          identity: {{issuer: "https://idp.example", client_id: castproxy}}
        workspaces:
          api: {{openapi: ./spec.json, tools: [listItems], access: {{groups: [eng]}}}}
        """))
    validate = subprocess.run([sys.executable, "-m", "castproxy", "validate", "-c", str(config), "--offline"],
                              capture_output=True, text=True, timeout=60)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    expected = "https://mcp.corp.example/oauth/identity/callback"
    assert f"register this redirect URI for client castproxy at the identity provider (server.identity): {expected}" \
        in validate.stdout
    connect = subprocess.run([sys.executable, "-m", "castproxy", "connect", "api", "-c", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert connect.returncode == 0 and expected in connect.stderr and "company account" in connect.stderr
