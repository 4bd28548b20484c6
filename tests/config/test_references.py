"""The `${...}` reference syntax on its own: what resolves to what, and what is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from castproxy.config.references import ReferenceProblem, resolve

ENV = {"TOKEN": "t0k", "EMPTY": "", "HOST": "api.example.com"}


@pytest.mark.parametrize(
    ("text", "value", "has_reference", "defaults"),
    [
        ("plain", "plain", False, ()),
        ("costs $5 or $", "costs $5 or $", False, ()),
        ("${env:TOKEN}", "t0k", True, ()),
        ("Bearer ${env:TOKEN}", "Bearer t0k", True, ()),
        ("https://${env:HOST}/v1?k=${env:TOKEN}", "https://api.example.com/v1?k=t0k", True, ()),
        ("${env:UNSET:-fallback}", "fallback", True, ("UNSET",)),
        ("${env:EMPTY:-fallback}", "fallback", True, ("EMPTY",)),
        ("${env:UNSET:-}", "", True, ("UNSET",)),
        ("${env:TOKEN:-unused}", "t0k", True, ()),
        ("$${env:TOKEN}", "${env:TOKEN}", False, ()),
        ("$$${env:TOKEN}", "$${env:TOKEN}", False, ()),  # a lone "$", then the "$${" escape
    ],
)
def test_resolves(text: str, value: str, has_reference: bool, defaults: tuple[str, ...], tmp_path: Path) -> None:
    resolved = resolve(text, ENV, tmp_path)
    assert (resolved.value, resolved.has_reference, resolved.defaults_used) == (value, has_reference, defaults)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${env:MISSING}", "environment variable MISSING is not set (referenced as ${env:MISSING})"),
        ("${env:EMPTY}", "environment variable EMPTY is empty (referenced as ${env:EMPTY})"),
        ("${env:}", "empty variable name in '${env:}': write ${env:NAME}"),
        ("${env:1ABC}", "'1ABC' is not a valid environment variable name in '${env:...}' "
         "(letters, digits and '_', not starting with a digit)"),
        ("${TOKEN}", "malformed reference '${TOKEN}': write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'"),
        ("${}", "malformed reference: write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'"),
        ("${vault:a/b}", "unknown secret source 'vault' in '${...}': use ${env:NAME} or ${file:PATH}"),
        ("a ${env:TOKEN", "unclosed '${' in this value: write ${env:NAME} or ${file:PATH}, or $${ for a literal '${'"),
        ("${file: }", "empty path in '${file:}': write ${file:PATH} (relative to the config's folder)"),
    ],
)
def test_rejects(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ReferenceProblem) as failure:
        resolve(text, ENV, tmp_path)
    assert str(failure.value) == message


def test_file_reference_reads_relative_to_the_config_and_strips_one_newline(tmp_path: Path) -> None:
    (tmp_path / "one").write_text("secret\n")
    (tmp_path / "two").write_text("secret\n\n")
    (tmp_path / "none").write_text("secret")
    assert resolve("${file:one}", {}, tmp_path).value == "secret"
    assert resolve("${file:two}", {}, tmp_path).value == "secret\n"
    assert resolve(f"${{file:{tmp_path / 'none'}}}", {}, Path("/elsewhere")).value == "secret"


def test_file_reference_problems(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "big").write_bytes(b"x" * (64 * 1024 + 1))
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    expected = {
        "missing": f"secret file {tmp_path / 'missing'} (${{file:missing}}) does not exist",
        "folder": f"secret file {tmp_path / 'folder'} (${{file:folder}}) is a directory, not a file",
        "big": f"secret file {tmp_path / 'big'} (${{file:big}}) is larger than 64 KiB; a secret file holds only "
        "the secret",
        "binary": f"secret file {tmp_path / 'binary'} (${{file:binary}}) is not UTF-8 text",
    }
    for name, message in expected.items():
        with pytest.raises(ReferenceProblem) as failure:
            resolve(f"${{file:{name}}}", {}, tmp_path)
        assert str(failure.value) == message
