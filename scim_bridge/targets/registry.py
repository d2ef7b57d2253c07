"""The targets the bridge knows: one entry per target, and what a new target must bring.

An entry names its translator factory, its policy section models, its emulator and, if it sends
webhooks, its receiver. They are named by reference ("module:attribute", like a package entry
point) and resolved when used: the policy models subclass sync/'s bases (the registry itself
imports no sync/ module, which imports it), the emulators import nothing of the bridge and are not
loaded in production unless asked for. A test resolves every reference, so a typo fails CI.

Does not: decide what a target does (the translator does), nor read the policy (sync/runtime.py
hands a `TargetSettings` to `entry.build`).

sync/, audit/ and web/ loop over TARGETS; what there still names Cloudinary or iconik is listed,
with why, in tests/test_target_names.py (README, "Adding a target").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import Target
from .capabilities import GrantsApplier, GrantsRun, WebhookReceiver
from .settings import TargetSettings

#: What a new target brings, `{name}` its registry name (README, "Adding a target"); nothing in
#: sync/, audit/ or web/ (`TargetEntry.files` lists where each registered entry's files are).
FILES_OF_A_TARGET = (
    "scim_bridge/targets/{name}.py",  # the translator: a Target subclass and build(TargetSettings)
    "scim_bridge/targets/registry.py",  # its TargetEntry in TARGETS
    "scim_bridge/targets/{name}_policy.py",  # `targets.{name}` (a sync.policy.TargetPolicy) and `access.{name}`
    #                                           (a sync.access.TargetSection) section models
    "scim_bridge/targets/{name}_grants.py",  # only if it takes grants: its GrantsApplier
    "scim_bridge/emulators/{name}.py",  # a faithful emulator of its API: build(state, switches, faults)
    "scim_bridge/targets/{name}_webhook.py",  # only if it sends webhooks: its WebhookReceiver
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
    #: "module:function": (credentials, policy section, max_age) -> WebhookReceiver; None: no webhooks
    webhook: str | None = None
    #: "module:Class": (GrantsRun, access section) -> GrantsApplier; None: the target takes no grants
    grants: str | None = None

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

    def webhook_receiver(self, credentials: Mapping[str, str], section: Any, max_age: float) -> WebhookReceiver | None:
        """The target's webhook receiver, None for a target without webhooks."""
        if self.webhook is None:
            return None
        factory: Callable[..., WebhookReceiver] = resolve(self.webhook)
        return factory(credentials, section, max_age)

    def grants_applier(self, run: GrantsRun, section: Any) -> GrantsApplier | None:
        """The target's grants applier for one grants run, None for a target without grants."""
        if self.grants is None:
            return None
        factory: Callable[[GrantsRun, Any], GrantsApplier] = resolve(self.grants)
        return factory(run, section)

    def files(self) -> list[str]:
        """The files this entry's references live in, with the registry and the contract harness:
        what adding this target touched (FILES_OF_A_TARGET is the layout a new one follows)."""
        references = [self.factory, self.policy_model, self.access_model, self.emulator, self.webhook, self.grants]
        modules = dict.fromkeys(r.partition(":")[0] for r in references if r)
        return [
            *(module.replace(".", "/") + ".py" for module in modules),
            "scim_bridge/targets/registry.py",
            "tests/targets/harness.py",
        ]


TARGETS: dict[str, TargetEntry] = {
    entry.name: entry
    for entry in (
        TargetEntry(
            "cloudinary",
            factory="scim_bridge.targets.cloudinary:build",
            policy_model="scim_bridge.targets.cloudinary_policy:CloudinaryPolicy",
            access_model="scim_bridge.targets.cloudinary_policy:CloudinaryAccess",
            emulator="scim_bridge.emulators.cloudinary:build",
            webhook="scim_bridge.targets.cloudinary_webhook:receiver",
            grants="scim_bridge.targets.cloudinary_grants:CloudinaryGrants",
        ),
        TargetEntry(
            "iconik",
            factory="scim_bridge.targets.iconik:build",
            policy_model="scim_bridge.targets.iconik_policy:IconikPolicy",
            access_model="scim_bridge.targets.iconik_policy:IconikAccess",
            emulator="scim_bridge.emulators.iconik:build",
            webhook="scim_bridge.targets.iconik_webhook:receiver",
            grants="scim_bridge.targets.iconik_grants:IconikGrants",
        ),
    )
}


def entry(name: str) -> TargetEntry:
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"no target {name!r} in the registry (known: {', '.join(TARGETS)})") from None
