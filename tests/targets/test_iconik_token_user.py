"""iconik's token runs as a user, and a token stops working when its user is no longer ACTIVE
(research/iconik.md §1.1): the translator must never disable or delete that user, even when the
policy forgot `service_account_email`. (Cloudinary's keys belong to the account, not to a user.)"""

from __future__ import annotations

from scim_bridge.targets.base import TargetUser
from scim_bridge.targets.registry import TARGETS
from scim_bridge.targets.settings import TargetSettings
from tests.targets.harness import IconikHarness


async def test_without_a_configured_service_account_the_token_s_own_user_is_still_never_disabled() -> None:
    harness = IconikHarness()
    with harness.serve():
        await harness.target.close()  # the harness's own translator has the setting; this one has not
        credentials = {"app_id": harness.state.app_id, "auth_token": harness.state.auth_token}
        target = TARGETS["iconik"].build(TargetSettings(harness.url, 1000.0, credentials))  # no service account
        own = harness.state.token_user_id
        try:
            email = harness.state.users[own]["email"]
            await target.ensure_user(TargetUser(email, "Bridge", "Service", "Bridge", "POWER", False), own)
            await target.disable_user(own, email)
            await target.delete_user(own)
            assert harness.account(own) == {"email": email, "enabled": True}
            assert await target.list_accounts()  # the token still works
        finally:
            await target.close()
