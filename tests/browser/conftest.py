"""The browser tests: a real headless Chromium driven by Selenium.

Tests marked ``@pytest.mark.browser`` are skipped cleanly when Selenium, Chromium or ChromeDriver
is missing (Debian: ``apt-get install chromium chromium-driver``; ``.ci/run`` installs them).
``$SYMGRAD_CHROMIUM`` and ``$SYMGRAD_CHROMEDRIVER`` name other binaries. The ``browser``
fixture is one headless Chromium for the session (``--headless=new --no-sandbox``), started
with the ChromeDriver found on the machine: Selenium never downloads one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def binaries() -> tuple[str | None, str | None]:
    chromium = os.environ.get("SYMGRAD_CHROMIUM") or next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    driver = os.environ.get("SYMGRAD_CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, driver


def missing() -> str:
    """Why the browser tests cannot run here ("" when they can)."""
    if importlib.util.find_spec("selenium") is None:
        return "needs Selenium (pip install selenium)"
    chromium, driver = binaries()
    if chromium is None:
        return "needs Chromium (apt-get install chromium)"
    if driver is None:
        return "needs ChromeDriver (apt-get install chromium-driver)"
    return ""


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is not None and (why := missing()):
        pytest.skip(why)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if why := missing():
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)
    try:
        yield d
    finally:
        d.quit()
