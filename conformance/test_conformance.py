"""The whole conformance run (scim2-tester, scim-sanity, Okta spec test) inside the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).with_name("run")


def test_conformance_run_is_clean() -> None:
    result = subprocess.run([sys.executable, str(RUN)], capture_output=True, text=True, timeout=600,
                            cwd=RUN.parents[1])
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert " 0 failed" in summary and "okta-spec 12/12" in summary, summary
