"""The targets the bridge knows: one entry per target, and what a new target must bring.

An entry names its translator factory, its policy sections and model, its emulator and its
activity normaliser. They are named by reference ("module:attribute", like a package entry point)
and resolved when used, because they live in layers targets/ must not import: the policy models in
sync/, the normalisers in audit/, the emulators (which import nothing of the bridge, and are not
loaded in production unless asked for). A test resolves every reference, so a typo fails CI.

Does not: decide what a target does (the translator does), nor read the policy (sync/runtime.py
hands a `TargetSettings` to `entry.build`).

Today sync/runtime.py builds targets from the registry; the engine, access sync, review, webhooks
and the CLI still name the two targets in places (README, "Adding a target"); a later step moves
them onto the registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Target
from .settings import TargetSettings

#: What a new target needs, `{name}` its registry name (README, "Adding a target").
FILES_OF_A_TARGET = (
    "scim_bridge/targets/{name}.py",  # the translator: a Target subclass and build(TargetSettings)
    "scim_bridge/targets/registry.py",  # its TargetEntry in TARGETS
    "scim_bridge/sync/policy.py",  # its `targets.{name}` section model (and the role rules' field)
    "scim_bridge/sync/access.py",  # its `access.{name}` section model, if it takes grants
    "scim_bridge/emulators/{name}.py",  # a faithful emulator of its API: build(state, switches, faults)
    "scim_bridge/audit/activity.py",  # normalize_{name}: its webhook payload as an activity Event
    "tests/targets/harness.py",  # a Harness for it: tests/targets/test_contract.py then runs against it
)


def resolve(reference: str) -> Any:
    """The object a "package.module:attribute" reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class TargetEntry:
    name: str
    factory: str  # "module:function": (TargetSettings) -> Target
    policy_model: str  # "module:Class": the `targets.<name>` section
    access_model: str  # "module:Class": the `access.<name>` section
    emulator: str  # "module:function": (state=None, switches=None, faults=None) -> ASGI app
    activity: str  # "module:function": a webhook payload → an activity Event

    @property
    def policy_section(self) -> str:
        return f"targets.{self.name}"

    @property
    def access_section(self) -> str:
        return f"access.{self.name}"

    def build(self, settings: TargetSettings) -> Target:
        factory: Callable[[TargetSettings], Target] = resolve(self.factory)
        return factory(settings)

    def emulator_app(self, *args: Any, **kwargs: Any) -> Any:
        return resolve(self.emulator)(*args, **kwargs)

    def activity_normaliser(self) -> Callable[..., Any]:
        normaliser: Callable[..., Any] = resolve(self.activity)
        return normaliser

    def files(self) -> list[str]:
        return [path.format(name=self.name) for path in FILES_OF_A_TARGET]


TARGETS: dict[str, TargetEntry] = {
    entry.name: entry
    for entry in (
        TargetEntry(
            "cloudinary",
            factory="scim_bridge.targets.cloudinary:build",
            policy_model="scim_bridge.sync.policy:CloudinaryPolicy",
            access_model="scim_bridge.sync.access:CloudinaryAccess",
            emulator="scim_bridge.emulators.cloudinary:build",
            activity="scim_bridge.audit.activity:normalize_cloudinary",
        ),
        TargetEntry(
            "iconik",
            factory="scim_bridge.targets.iconik:build",
            policy_model="scim_bridge.sync.policy:IconikPolicy",
            access_model="scim_bridge.sync.access:IconikAccess",
            emulator="scim_bridge.emulators.iconik:build",
            activity="scim_bridge.audit.activity:normalize_iconik",
        ),
    )
}


def entry(name: str) -> TargetEntry:
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"no target {name!r} in the registry (known: {', '.join(TARGETS)})") from None
