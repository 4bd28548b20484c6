"""A base_url with user:password@ would carry a secret into `tools` output and binary tool results (the
embedded resource's URI is the upstream URL): the config refuses it and says where the credential goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from castproxy.config.loader import load_config
from castproxy.config.problems import ConfigError

CANARY = "canary-base-url-pw-5521"

CONFIG = """version: 1
workspaces:
  w:
    openapi: ./spec.json
    base_url: {base_url}
    auth: {{type: none}}
    tools: [listItems]
"""


@pytest.mark.parametrize(
    "base_url", ["http://user:${env:BASE_PW}@api.example.com/v1", "https://${env:BASE_PW}@api.example.com"]
)
def test_base_url_with_user_information_is_refused_without_showing_it(tmp_path: Path, base_url: str) -> None:
    (tmp_path / "spec.json").write_text("{}")
    path = tmp_path / "cast.yaml"
    path.write_text(CONFIG.format(base_url=base_url))
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={"BASE_PW": CANARY})
    text = str(raised.value) + " ".join(str(problem) for problem in raised.value.problems)
    assert "user information" in text
    assert CANARY not in text
    assert any(problem.line == 5 for problem in raised.value.problems)


def test_plain_base_url_still_loads(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text("{}")
    path = tmp_path / "cast.yaml"
    path.write_text(CONFIG.format(base_url="https://api.example.com/v1?tenant=a@b"))
    loaded = load_config(path, environ={})
    assert str(loaded.config.workspaces["w"].base_url) == "https://api.example.com/v1?tenant=a@b"  # an @ in the query


def test_tools_output_does_not_show_a_secret_in_the_base_url_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from castproxy.cli import main

    spec = Path(__file__).resolve().parents[2] / "castproxy" / "testserver" / "openapi.json"
    (tmp_path / "spec.json").write_text(spec.read_text())
    path = tmp_path / "cast.yaml"
    path.write_text(CONFIG.format(base_url='"https://api.example.com/v1?api_key=${env:BASE_PW}"'))
    monkeypatch.setenv("BASE_PW", CANARY)
    assert main(["tools", "w", "-c", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
