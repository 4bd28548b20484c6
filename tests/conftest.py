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
