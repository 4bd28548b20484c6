"""Headless Chromium for browser tests: Debian's `chromium` package driven by the `playwright` pip package.

`playwright install` cannot download browsers here, so the test launches /usr/bin/chromium itself.
Without it (or without playwright) a test skips with the reason, or fails under CI=true: .ci/run
installs chromium, so absence there is a defect.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from support.skips import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_chromium() -> str:
    path = CHROMIUM if shutil.which(CHROMIUM) else shutil.which("chromium")
    if path is None:
        skip_or_fail("Chromium is not installed (apt-get install -y chromium)",
                     ci_reason="Chromium is missing under CI=true: .ci/run installs it (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    return path


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Any]:
    """A fresh browser context's page in headless Chromium; everything is closed afterwards."""
    executable = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=FLAGS)
        try:
            context = await browser.new_context()
            yield await context.new_page()
        finally:
            await browser.close()
