"""Without chromium the browser tests fail, saying how to install it: never a silent skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_chromium_fails_the_browser_tests_with_the_install_command() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"]
        + ["tests/browser/test_console_browser.py::test_a_post_without_the_csrf_token_is_refused"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SCIM_BRIDGE_CHROMIUM": "/nonexistent/chromium"},
    )
    assert run.returncode == 1, run.stdout
    assert "apt-get install chromium" in run.stdout and "skipped" not in run.stdout
