"""The target registry: every entry's references resolve, its policy sections exist, its factory
builds a translator whose capabilities follow the policy, and the files a target needs are there."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from scim_bridge.sync.policy import Policy
from scim_bridge.targets.base import Target
from scim_bridge.targets.capabilities import Capability
from scim_bridge.targets.registry import TARGETS, entry, resolve
from scim_bridge.targets.settings import TargetConfigError, TargetSettings

ROOT = Path(__file__).resolve().parents[2]
CLOUDINARY_CREDENTIALS = {"account_id": "a1", "key": "k", "secret": "s", "admin_key": "ak", "admin_secret": "as"}
ICONIK_CREDENTIALS = {"app_id": "app", "auth_token": "token"}
CREDENTIALS = {"cloudinary": CLOUDINARY_CREDENTIALS, "iconik": ICONIK_CREDENTIALS}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_reference_of_an_entry_resolves_to_what_it_names(name: str) -> None:
    target = TARGETS[name]
    for model in (resolve(target.policy_model), resolve(target.access_model)):
        assert issubclass(model, BaseModel)
    assert {"enabled", "base_url", "rate", "service_account_email"} <= set(resolve(target.policy_model).model_fields)
    assert callable(resolve(target.factory))
    receiver = target.webhook_receiver({}, resolve(target.policy_model)(), 60.0)
    assert receiver is None or (not receiver.configured and receiver.off_message)  # no secret: off
    assert callable(target.emulator_app())  # an ASGI app, built with its defaults


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_policy_has_both_sections_of_every_registered_target(name: str) -> None:
    policy = Policy()
    assert isinstance(dict(policy.targets)[name], BaseModel) and isinstance(dict(policy.access)[name], BaseModel)
    assert TARGETS[name].policy_section == f"targets.{name}" and TARGETS[name].access_section == f"access.{name}"


@pytest.mark.parametrize("name", sorted(TARGETS))
async def test_a_translator_built_without_access_settings_has_only_what_it_offers(name: str) -> None:
    built = TARGETS[name].build(TargetSettings("http://127.0.0.1:9", 10.0, CREDENTIALS[name]))
    try:
        assert isinstance(built, Target) and built.name == name
        assert built.capabilities == built.offers
        assert built.folders is built.agency_keys is built.acls is built.projects is None
    finally:
        await built.close()


async def test_cloudinary_access_settings_turn_on_folder_grants_and_agency_keys() -> None:
    access = {"product_environment": "production", "folders": [{"path": "campaigns"}]}
    built = entry("cloudinary").build(TargetSettings("http://127.0.0.1:9", 10.0, CLOUDINARY_CREDENTIALS, None, access))
    try:
        assert {Capability.FOLDER_GRANTS, Capability.AGENCY_KEYS} <= built.capabilities
        assert Capability.COLLECTION_ACLS not in built.capabilities
    finally:
        await built.close()


def test_cloudinary_folders_without_a_product_environment_are_refused_naming_the_setting() -> None:
    settings = TargetSettings("http://127.0.0.1:9", 10.0, CLOUDINARY_CREDENTIALS, None, {"folders": [{"path": "a"}]})
    with pytest.raises(TargetConfigError, match="access.cloudinary.product_environment"):
        entry("cloudinary").build(settings)


async def test_iconik_access_settings_turn_on_collection_acls_and_projects() -> None:
    access = {"collections": [{"title": "Campaigns"}], "projects": {"groups": []}}
    built = entry("iconik").build(TargetSettings("http://127.0.0.1:9", 10.0, ICONIK_CREDENTIALS, None, access))
    try:
        assert {Capability.COLLECTION_ACLS, Capability.PROJECTS} <= built.capabilities
        assert Capability.FOLDER_GRANTS not in built.capabilities
    finally:
        await built.close()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_file_a_target_needs_exists_for_each_registered_target(name: str) -> None:
    missing = [path for path in TARGETS[name].files() if not (ROOT / path).is_file()]
    assert not missing


def test_a_translator_missing_part_of_the_core_cannot_be_built() -> None:
    class HalfDone(Target):
        name = "half-done"

        async def list_users(self) -> list:  # type: ignore[type-arg]
            return []

    with pytest.raises(TypeError, match="abstract"):
        HalfDone()  # type: ignore[abstract]


def test_an_unknown_target_name_says_which_are_known() -> None:
    with pytest.raises(KeyError, match="cloudinary"):
        entry("dropbox")
