"""Each console page's time on the sandbox, against /health measured in the same run.

    .venv/bin/python bench/console.py [--rounds 20]

Starts `scim-bridge sandbox` in its own process (the sample directory synced into both emulators),
gives the screens something to show (eleven leavers, so the deprovision brake holds changes; a
reconcile report; an access review), logs in with the sandbox's admin token, then fetches every
page `--rounds` times over real HTTP and prints the median and p95 per page. The aim: every page
under 300 ms. The actions that call the targets (run the review, check or repair drift, provision
now) take as long as the targets answer and are not pages; they are not measured here.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import free_port

LIMIT_MS = 300.0
LEAVERS = ["ava.andersen", "ben.hansen", "chloe.olsen", "daniel.brown", "elena.ito", "farid.petrov", "hiro.jensen"]
LEAVERS += ["isabel.quist", "jonas.dubois", "kara.kim", "liam.rossi"]


def _wait_idle(admin: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if admin.get("/queue").json()["total"] == 0:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the sandbox's queue did not drain")
        time.sleep(0.3)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
    port, access_file = free_port(), folder / "access.json"
    command = [sys.executable, "-m", "scim_bridge", "sandbox", "--port", str(port)]
    command += ["--credentials-file", str(access_file), "--store", f"sqlite:///{folder}/sb.db"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not access_file.exists() or not access_file.read_text().strip():
            time.sleep(0.1)
        access = json.loads(access_file.read_text())
        root = f"http://127.0.0.1:{port}"
        admin = httpx.Client(
            base_url=access["admin"]["base_url"],
            headers={"Authorization": f"Bearer {access['admin']['token']}"},
            timeout=60,
        )
        scim = httpx.Client(
            base_url=access["scim"]["base_url"],
            headers={"Authorization": f"Bearer {access['scim']['token']}"},
            timeout=60,
        )
        _wait_idle(admin)
        users = {u["userName"]: u["id"] for u in scim.get("/Users", params={"count": 100}).json()["Resources"]}
        patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
        patch["Operations"] = [{"op": "replace", "path": "active", "value": False}]  # type: ignore[assignment]
        for name in LEAVERS:
            scim.patch(f"/Users/{users[name + '@example.com']}", json=patch).raise_for_status()
        _wait_idle(admin)
        admin.post("/reconcile")
        console = httpx.Client(base_url=root, timeout=60)
        form = console.get("/console/login")
        console.post("/console/login", data={"csrf_token": _csrf(form.text), "token": access["admin"]["token"]})
        console.post("/console/review/run", data={"csrf_token": _csrf(console.get("/console").text)})
        zoe = users["zoe.petrov@example.com"]
        group = next(iter(g["id"] for g in scim.get("/Groups").json()["Resources"]))
        pages = {
            "/health (baseline)": "/health",
            "Overview": "/console",
            "Overview (live part)": "/console/overview/live",
            "People": "/console/people",
            "People search": "/console/people?q=zoe",
            "Person": f"/console/people/{zoe}",
            "Explain": f"/console/people/{zoe}/explain",
            "Groups": "/console/groups",
            "Group": f"/console/groups/{group}",
            "Provisioning log": "/console/log",
            "Dead letters": "/console/dead-letters",
            "Held changes": "/console/held",
            "Drift": "/console/drift",
            "Access review": "/console/review",
            "Policy": "/console/policy",
        }
        print(f"console pages on the sandbox, {args.rounds} rounds each (ms)")
        print(f"{'page':24} {'median':>8} {'p95':>8} {'× /health':>10}")
        baseline, worst = None, 0.0
        for label, path in pages.items():
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                answer = console.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            median = statistics.median(times)
            p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
            baseline = baseline or median
            if label != "/health (baseline)":
                worst = max(worst, p95)
            print(f"{label:24} {median:8.1f} {p95:8.1f} {median / baseline:10.1f}")
        print(f"slowest page p95 {worst:.1f} ms: {'under' if worst < LIMIT_MS else 'OVER'} {LIMIT_MS:.0f} ms")
        return 0 if worst < LIMIT_MS else 1
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    raise SystemExit(main())
