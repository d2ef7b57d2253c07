"""Policy: the running policy and its digest; a candidate (pasted or uploaded) shows its plan
against the directory and the ID map. A candidate is never applied from here: deploying a policy
is a change to SCIM_BRIDGE_POLICY, reviewed like any other."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from ...audit.review import policy_digest
from ...redaction import redact_text
from ...sync.plan import plan
from ...sync.policy import PolicyError, load_policy
from .guard import MAX_FORM_BYTES, form, page
from .render import render
from .session import Session


def _running(request: Request) -> dict[str, Any]:
    sync, path = request.app.state.sync, request.app.state.settings.policy
    if sync is None:
        return {"text": None, "source": None, "digest": None}
    source, digest = policy_digest(sync.engine.policy, path)
    text = redact_text(Path(path).read_text()) if path else None
    return {"text": text, "source": source, "digest": digest}


async def policy(request: Request, session: Session) -> Response:
    return render(request, "policy.html", session, title="Policy", running=_running(request), candidate="")


async def _candidate_text(request: Request) -> str:
    data = await form(request)
    upload = data.get("upload")
    if isinstance(upload, UploadFile) and upload.filename:
        return (await upload.read(MAX_FORM_BYTES)).decode("utf-8", errors="replace")
    text = data.get("candidate")
    return text if isinstance(text, str) else ""


async def plan_candidate(request: Request, session: Session) -> Response:
    text = await _candidate_text(request)
    changes: list[Any] = []
    error, digest = None, None
    if not text.strip():
        error = "paste a policy or choose a file"
    else:
        with tempfile.TemporaryDirectory(prefix="scim-bridge-candidate-") as folder:
            path = Path(folder) / "candidate.yml"
            path.write_text(text)
            try:
                candidate = load_policy(path)
                digest = policy_digest(candidate, path)[1]
                changes = await plan(request.app.state.store, candidate)
            except PolicyError as problem:
                error = str(problem).replace(str(path), "candidate policy")
    counts = Counter((c.target, c.action) for c in changes)
    return render(
        request,
        "policy.html",
        session,
        400 if error else 200,
        title="Policy plan",
        running=_running(request),
        candidate=text,
        error=error,
        changes=changes,
        counts=sorted(counts.items()),
        candidate_digest=digest,
        planned=error is None,
    )


ROUTES = [
    ("/console/policy", page(policy), ["GET"]),
    ("/console/policy/plan", page(plan_candidate), ["POST"]),
]
