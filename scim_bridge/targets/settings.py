"""What a translator is built from: the policy's words for one target, handed over as plain values.

targets/ does not read the policy (README, layers table): sync/runtime.py turns `targets.<name>`
and `access.<name>` into a `TargetSettings`, and the registry's factory for that target builds the
translator from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


class TargetConfigError(ValueError):
    """The settings cannot make a working translator (a credential or a setting missing); the
    message names the policy key to fix."""


@dataclass(frozen=True)
class TargetSettings:
    base_url: str
    rate: float  # requests/s the bridge allows itself
    credentials: Mapping[str, str]  # the policy section's credentials, resolved (never in the policy itself)
    service_account_email: str | None = None  # the bridge's own account: never disabled or deleted
    access: Mapping[str, Any] = field(default_factory=dict)  # the policy's `access.<name>`, as plain data
    transport: httpx.AsyncBaseTransport | None = None  # the httpx seam, for every client of the target
    reviewer_routing: bool = False  # the policy has `access.reviewers`: build the approvals client, if any
