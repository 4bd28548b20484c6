"""A test that needs a part this machine may lack skips on a laptop and fails under CI=true, where it must run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str, *, ci_reason: str | None = None) -> NoReturn:
    """Skip with `reason`; under CI=true fail with `ci_reason` (default: the same reason)."""
    if on_ci():
        pytest.fail(ci_reason or reason)
    pytest.skip(reason)
