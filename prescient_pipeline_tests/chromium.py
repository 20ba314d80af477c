"""Headless Chromium for tests of rendered pages: the DOM after scripts ran, and screenshots."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]
# Simulated milliseconds the page may run its scripts before the DOM or screenshot is taken.
SCRIPT_BUDGET_MS = "15000"


def chromium() -> str:
    """The browser's path; the test is skipped, saying why, when none is installed (CI installs it)."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed here (Debian: apt-get install chromium); .ci/run installs it")


def _run(url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={SCRIPT_BUDGET_MS}",
             *extra, url],
            capture_output=True, text=True, timeout=120, check=True,
        )


def dump_dom(page: Path) -> str:
    """The page's DOM after its scripts ran (the charts are SVG by then)."""
    return _run(page.resolve().as_uri(), "--dump-dom").stdout


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 1000) -> Path:
    _run(page.resolve().as_uri(), f"--window-size={width},{height}", f"--screenshot={out}")
    assert out.exists() and out.stat().st_size > 0, f"no screenshot of {page}"
    return out


class Elements(HTMLParser):
    """Every element of a document as (tag, attributes), in document order."""

    def __init__(self, document: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(document)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def with_class(self, *names: str, tag: str | None = None) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.elements
                if (tag is None or t == tag) and set(names) <= set(attrs.get("class", "").split())]
