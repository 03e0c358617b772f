"""Headless Chromium for the report and dashboard tests (Debian's `chromium`; bootstrap installs it as root)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not on PATH: apt-get install -y chromium "
    "(scripts/bootstrap.sh installs it when run as root)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def chromium(url: str, workdir: Path, screenshot: Path | None = None, budget_ms: int = 0,
             size: str = "1200,2400") -> str:
    """Load ``url`` in a fresh profile: take a screenshot, or return the DOM after load (and ``budget_ms`` of JS)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
    if budget_ms:
        cmd.append(f"--virtual-time-budget={budget_ms}")
    cmd.append(f"--screenshot={screenshot}" if screenshot else "--dump-dom")
    done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=120)
    if screenshot is not None:
        assert screenshot.exists(), f"chromium wrote no screenshot: {done.stderr[-2000:]}"
    return done.stdout
