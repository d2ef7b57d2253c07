"""The whole conformance run (scim2-tester, scim-sanity strict, Okta spec port) as part of `pytest`.

conformance/run starts its own bridge and runs test_okta_spec.py in an inner pytest against it
(only that file, with SCIM_CONFORMANCE_URL/TOKEN set), so nothing here is collected twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().with_name("run")
SUMMARY = re.compile(
    r"^conformance: scim2-tester (\d+) passed, (\d+) failed; "
    r"scim-sanity (\d+) passed, (\d+) failed; okta-spec (\d+)/(\d+)$"
)


@pytest.mark.slow  # a bridge in a subprocess and three checkers: ~8 s alone, far more on a loaded machine
def test_conformance_run_is_clean() -> None:
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON") or sys.executable}
    for name in ("SCIM_CONFORMANCE_URL", "SCIM_CONFORMANCE_TOKEN", "_CONFORMANCE_REEXEC"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, str(RUN)],
        cwd=RUN.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    summary = SUMMARY.match(lines[-1]) if lines else None
    assert summary, "conformance/run printed no summary line:\n" + output
    assert result.returncode == 0, f"conformance/run exited {result.returncode}:\n" + output
    tester_passed, tester_failed, sanity_passed, sanity_failed, okta_passed, okta_total = map(int, summary.groups())
    assert tester_failed == sanity_failed == 0 and okta_passed == okta_total == 12, output
    assert tester_passed > 0 and sanity_passed > 0, output
