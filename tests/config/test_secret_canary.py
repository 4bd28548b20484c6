"""A canary secret planted in env and file references must never show up in any output.

Covers a config that loads (repr, str, JSON dumps, warnings, `validate` output, logs) and configs that
fail with the canary in places where an error message would otherwise quote the value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from castproxy.cli import main
from castproxy.config.loader import load_config
from castproxy.config.problems import ConfigError

CANARY = "canary-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
WriteConfig = Callable[..., Path]

GOOD = """
version: 1
server:
  host: 0.0.0.0
  secret_key: ${env:CANARY_KEY}
store:
  backend: redis
  url: ${env:CANARY_REDIS}
workspaces:
  per-user:
    openapi: ./spec.json
    auth:
      type: oauth2
      authorization_url: https://id.example.com/authorize
      token_url: https://id.example.com/token
      client_id: castproxy
      client_secret: ${file:client_secret}
    tools: [listItems]
  shared:
    openapi: ./spec.json
    auth:
      type: headers
      headers:
        Authorization: Bearer ${env:CANARY}
        X-Key: ${env:UNSET_CANARY:-CANARY_VALUE}
    tools: [listItems]
  keyed:
    openapi: ./spec.json
    auth: {type: api_key, value: "${file:client_secret}"}
    inbound:
      api_keys: ["${env:CANARY}"]
    tools: [listItems]
""".replace("CANARY_VALUE", CANARY)

BROKEN = """
version: 1
server:
  port: ${env:CANARY}
  public_url: ${env:CANARY}
  secret_key: ${env:CANARY_SHORT}
workspaces:
  api:
    openapi: ./spec.json
    base_url: ${env:CANARY}
    timeout: ${env:CANARY}
    output_schema: ${env:CANARY}
    auth: {type: api_key, header: "X ${env:CANARY}", value: "${env:CANARY}"}
    tools:
      - operation: listItems
        name: not valid ${env:CANARY}
  other:
    openapi: ./spec.json
    auth: {type: "${env:CANARY}"}
    tools: ["${env:CANARY}", "${env:CANARY}"]
"""


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    (tmp_path / "client_secret").write_text(CANARY + "\n")
    values = {
        "CANARY": CANARY,
        "CANARY_KEY": CANARY + "-long-enough-key",
        "CANARY_REDIS": f"redis://:{CANARY}@127.0.0.1:6379/0",
        "CANARY_SHORT": CANARY[:20],
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text
        assert CANARY[:20] not in text


def test_a_loaded_config_never_shows_the_secret(
    write_config: WriteConfig, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    loaded = load_config(write_config(GOOD), environ)
    # the values really are there, behind get_secret_value()
    shared = loaded.config.workspaces["shared"].auth
    assert shared.headers["Authorization"].get_secret_value() == f"Bearer {CANARY}"  # type: ignore[union-attr]
    assert loaded.warnings, "the defaulted header and the open shared workspaces should warn"
    _assert_clean(
        repr(loaded),
        str(loaded),
        repr(loaded.config),
        str(loaded.config.model_dump()),
        loaded.config.model_dump_json(),
        *(str(w) for w in loaded.warnings),
        *(repr(w) for w in loaded.warnings),
        caplog.text,
    )


def test_errors_never_quote_a_referenced_value(write_config: WriteConfig, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config(write_config(BROKEN), environ)
    problems = failure.value.problems
    assert len(failure.value.errors) >= 10, [str(p) for p in problems]
    _assert_clean(str(failure.value), repr(failure.value), *(repr(p) for p in problems))


def test_validate_output_never_shows_the_secret(
    write_config: WriteConfig,
    write_spec: Callable[..., Path],
    environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    write_spec("listItems")
    good, broken = write_config(GOOD), write_config(BROKEN, name="broken.yaml")
    assert main(["validate", "-c", str(good), "--offline"]) == 0
    assert main(["validate", "-c", str(broken), "--offline"]) == 1
    output = capsys.readouterr()
    assert "warning:" in output.out
    _assert_clean(output.out, output.err, caplog.text)


def test_env_override_errors_never_show_the_secret_key(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config("version: 1\nworkspaces: {api: {openapi: ./s.json, tools: [x]}}\n")
    with pytest.raises(ConfigError) as failure:
        load_config(path, {"CASTPROXY_SECRET_KEY": CANARY[:20]})
    assert "CASTPROXY_SECRET_KEY" in str(failure.value)
    _assert_clean(str(failure.value))
