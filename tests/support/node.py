"""The Node tools scripts/fetch-node-tools installs into .cache/node-tools: a Node 22 binary,
`@modelcontextprotocol/conformance` and `@modelcontextprotocol/inspector`.

Without them a test skips with the reason, or fails when CI=true (CI fetches them first, so absence
there is a defect).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

from support.skips import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
NODE_TOOLS = REPO / ".cache" / "node-tools" / "node_modules"
FETCH_HINT = "run scripts/fetch-node-tools"


def unavailable(reason: str) -> NoReturn:
    ci_reason = f"{reason} (CI=true: the node tools must be present; {FETCH_HINT})"
    skip_or_fail(f"{reason} ({FETCH_HINT})", ci_reason=ci_reason)


def _node_major(node: str) -> int:
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return 0
    match = re.match(r"v(\d+)\.", version.strip())
    return int(match.group(1)) if match else 0


def node22() -> str:
    """The Node 22+ binary: the one fetched into .cache/node-tools, else the system's when new enough."""
    fetched = [str(NODE_TOOLS / f"node-linux-{arch}" / "bin" / "node") for arch in ("x64", "arm64")]
    for candidate in (*fetched, shutil.which("node")):
        if candidate and os.access(candidate, os.X_OK) and _node_major(candidate) >= 22:
            return candidate
    unavailable("Node.js 22 or newer is not available (the system Node is older and .cache/node-tools has none)")


def package_bin(package: str, command: str) -> Path:
    """The script behind one `bin` entry of a package installed under .cache/node-tools."""
    manifest = NODE_TOOLS / package / "package.json"
    if not manifest.exists():
        unavailable(f"{package} is not installed under .cache/node-tools")
    bins = json.loads(manifest.read_text())["bin"]
    script = bins if isinstance(bins, str) else bins[command]
    return manifest.parent / script
