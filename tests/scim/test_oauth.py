"""/oauth/token and its access tokens over real HTTP: revocation on every replica, throttling of
failed client authentications."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from scim_bridge.auth.credentials import CredentialBook
from scim_bridge.auth.throttle import ADDRESS_BURST, CLIENT_BURST
from tests.live import LiveBridge
from tests.scim.test_scopes import client_pair, credentials


def token_for(bridge: LiveBridge, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{bridge.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def users_status(bridge: LiveBridge, token: str) -> int:
    return httpx.get(f"{bridge.base}/Users", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_revoked_clients_access_tokens_get_401_on_every_replica_within_2_s(bridge_store_url: str) -> None:
    client_id, secret = client_pair(credentials(bridge_store_url, "create-client", "otds"))
    with LiveBridge(bridge_store_url) as first, LiveBridge(bridge_store_url) as second:
        token = token_for(first, client_id, secret)
        other = token_for(second, client_id, secret)
        for replica in (first, second):  # both replicas accept (and cache) both tokens
            assert users_status(replica, token) == 200 and users_status(replica, other) == 200
        assert credentials(bridge_store_url, "revoke", client_id) == f"revoked {client_id}"
        revoked_at = time.monotonic()
        time.sleep(CredentialBook.CACHE_SECONDS)
        asked_after = time.monotonic() - revoked_at  # when the requests leave, not when they return (load)
        statuses = {users_status(replica, t) for replica in (first, second) for t in (token, other)}
        assert statuses == {401}, statuses
        assert asked_after < CredentialBook.CACHE_SECONDS + 0.5, asked_after  # else this proved a looser bound
        refused = httpx.post(
            f"{first.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_revoking_one_client_leaves_the_tokens_of_another_working(bridge_store_url: str) -> None:
    revoked_id, revoked_secret = client_pair(credentials(bridge_store_url, "create-client", "old-otds"))
    kept_id, kept_secret = client_pair(credentials(bridge_store_url, "create-client", "otds"))
    with LiveBridge(bridge_store_url) as bridge:
        revoked, kept = token_for(bridge, revoked_id, revoked_secret), token_for(bridge, kept_id, kept_secret)
        credentials(bridge_store_url, "revoke", revoked_id)
        time.sleep(CredentialBook.CACHE_SECONDS + 0.1)
        assert users_status(bridge, revoked) == 401
        assert users_status(bridge, kept) == 200


@pytest.fixture
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    """A fresh bridge (fresh throttle counters) on SQLite: the counters are in memory, not in the store."""
    with LiveBridge(f"sqlite:///{tmp_path_factory.mktemp('oauth')}/oauth.db") as live:
        yield live


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address, i.e. another remote address."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def ask(http: httpx.Client, bridge: LiveBridge, client_id: str, secret: str) -> httpx.Response:
    return http.post(f"{bridge.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def test_wrong_secrets_for_a_client_are_throttled_with_429_retry_after_and_an_oauth_error(
    bridge: LiveBridge,
) -> None:
    client_id, secret = client_pair(credentials(bridge.settings.store, "create-client", "otds"))
    with from_address("127.0.0.2") as attacker:
        answers = [ask(attacker, bridge, client_id, f"guess-{n}") for n in range(50)]
        statuses = [a.status_code for a in answers]
        assert statuses == [401] * CLIENT_BURST + [429] * (50 - CLIENT_BURST)
        throttled = answers[-1]
        assert 1 <= int(throttled.headers["retry-after"]) <= 12
        body = throttled.json()
        assert body["error"] == "slow_down" and "too many failed client authentications" in body["error_description"]
        assert throttled.headers["cache-control"] == "no-store"
        # Throttled before the secret is checked: the right secret from there does not get through either.
        assert ask(attacker, bridge, client_id, secret).status_code == 429
    with from_address("127.0.0.3") as otds:  # the real OTDS, elsewhere, is not slowed by the attacker
        assert ask(otds, bridge, client_id, secret).status_code == 200


def test_one_address_spraying_client_ids_is_throttled_without_slowing_other_addresses(bridge: LiveBridge) -> None:
    client_id, secret = client_pair(credentials(bridge.settings.store, "create-client", "otds"))
    with from_address("127.0.0.4") as sprayer:
        statuses = [ask(sprayer, bridge, f"sbc_guess{n}", "x").status_code for n in range(ADDRESS_BURST + 10)]
        assert statuses == [401] * ADDRESS_BURST + [429] * 10
        malformed = sprayer.post(
            f"{bridge.root}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!"},
        )
        assert malformed.status_code == 429
    with from_address("127.0.0.5") as otds:
        assert ask(otds, bridge, client_id, secret).status_code == 200


def test_a_failing_client_does_not_slow_a_healthy_client_at_the_same_address(bridge: LiveBridge) -> None:
    store = bridge.settings.store
    broken_id, _ = client_pair(credentials(store, "create-client", "otds-test"))
    healthy_id, healthy_secret = client_pair(credentials(store, "create-client", "otds-prod"))
    with from_address("127.0.0.6") as nat:
        assert {ask(nat, bridge, broken_id, "old-secret").status_code for _ in range(30)} == {401, 429}
        assert ask(nat, bridge, healthy_id, healthy_secret).status_code == 200


def test_successful_token_requests_are_never_throttled(bridge: LiveBridge) -> None:
    client_id, secret = client_pair(credentials(bridge.settings.store, "create-client", "otds"))
    with from_address("127.0.0.7") as otds:
        assert {ask(otds, bridge, client_id, secret).status_code for _ in range(ADDRESS_BURST * 2)} == {200}
