"""Makes the shared test helpers importable everywhere as the `support` package (tests/support).

The test folders are not packages; pytest imports each test file with its own folder first on sys.path.
Putting this folder there too lets any test write `from support.net import free_port` instead of adding
other folders to sys.path itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


def pytest_collection_modifyitems(items: list) -> None:
    """Tests marked `slow` (several seconds each: real processes, large specs) run first, so that the xdist
    workers share them from the start instead of one worker running a 10 s test alone at the end.
    The sort is stable: otherwise file order, and a module's tests stay together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
