"""The Hetzner Cloud client against the local API: auth, errors, rate limits, pagination, actions."""

from __future__ import annotations

import time

import pytest

from appliance.cloud.hetzner import ActionFailed, HetznerClient, HetznerError, reset_delay
from tests.cloud.conftest import SSH_KEY
from tests.cloud.fake_hetzner import FakeHetzner


async def test_wrong_token_is_unauthorized_and_not_echoed(fake: tuple[FakeHetzner, str]) -> None:
    _, url = fake
    async with HetznerClient("wrong-token-value", url) as api:
        with pytest.raises(HetznerError) as caught:
            await api.find_servers()
    assert caught.value.code == "unauthorized" and caught.value.status == 400
    assert "wrong-token-value" not in str(caught.value) + repr(caught.value.to_dict())


async def test_error_shape_becomes_code_and_message(fake: tuple[FakeHetzner, str]) -> None:
    api_state, url = fake
    async with HetznerClient(api_state.token, url) as api:
        await api.create_ssh_key("k", SSH_KEY, {})
        with pytest.raises(HetznerError) as caught:
            await api.create_ssh_key("k", SSH_KEY, {})
        assert caught.value.code == "uniqueness_error" and caught.value.status == 409
        with pytest.raises(HetznerError) as missing:
            await api.get_server(1)
        assert missing.value.code == "not_found" and missing.value.status == 404


async def test_rate_limit_is_retried_after_reset(fake: tuple[FakeHetzner, str]) -> None:
    api_state, url = fake
    api_state.rate_limit_next = 2
    async with HetznerClient(api_state.token, url) as api:
        assert await api.find_firewalls() == []
    assert len(api_state.requests) == 3
    api_state.rate_limit_next = 10
    async with HetznerClient(api_state.token, url, max_retries=1) as api:
        with pytest.raises(HetznerError) as caught:
            await api.find_firewalls()
    assert caught.value.code == "rate_limit_exceeded"


def test_reset_delay_reads_the_unix_reset_time() -> None:
    now = 1_700_000_000.0
    assert reset_delay({"RateLimit-Reset": str(int(now) + 3)}, 0, now) == pytest.approx(3)
    assert reset_delay({"RateLimit-Reset": str(int(now) + 3600)}, 0, now) == 30.0
    assert reset_delay({}, 2, now) == 2.0
    assert reset_delay({"Retry-After": "1"}, 0, now) == 1.0


async def test_pagination_follows_next_page(fake: tuple[FakeHetzner, str]) -> None:
    api_state, url = fake
    for i in range(120):
        api_state.firewalls[i] = {"id": i, "name": f"f{i}", "labels": {}, "rules": [], "applied_to": []}
    async with HetznerClient(api_state.token, url) as api:
        found = await api.find_firewalls()
        assert [f["id"] for f in found] == list(range(120))
        assert [f["id"] for f in await api.find_firewalls(name="f7")] == [7]
    assert sum(1 for m, p in api_state.requests if p == "/v1/firewalls") == 4  # 3 pages + the filter


async def test_server_lifecycle_with_actions_and_firewall(fake: tuple[FakeHetzner, str]) -> None:
    api_state, url = fake
    api_state.action_polls = 2
    async with HetznerClient(api_state.token, url) as api:
        key = await api.create_ssh_key("k", SSH_KEY, {"managed-by": "atlashub"})
        firewall = await api.create_firewall("fw", [], {})
        spec = {
            "name": "s1",
            "server_type": "cx22",
            "image": "debian-12",
            "ssh_keys": [key["id"]],
            "labels": {"a": "b"},
        }
        server, action = await api.create_server(spec)
        started = time.monotonic()
        done = await api.wait_action(action, interval=0.01)
        assert done["status"] == "success" and time.monotonic() - started < 5
        [applied] = await api.apply_firewall(firewall["id"], server["id"])
        await api.wait_action(applied, interval=0.01)
        assert [s["id"] for s in await api.find_servers(label_selector="a=b")] == [server["id"]]
        assert await api.find_servers(label_selector="a=c") == []
        with pytest.raises(HetznerError) as busy:
            await api.delete_firewall(firewall["id"])
        assert busy.value.code == "resource_in_use"
        await api.wait_action(await api.delete_server(server["id"]) or {}, interval=0.01)
        await api.delete_firewall(firewall["id"])
        await api.delete_ssh_key(key["id"])
    assert api_state.servers == api_state.firewalls == api_state.ssh_keys == {}


async def test_failed_action_raises_its_error(fake: tuple[FakeHetzner, str]) -> None:
    api_state, url = fake
    api_state.action_error = "server_limit_exceeded"
    async with HetznerClient(api_state.token, url) as api:
        _, action = await api.create_server({"name": "s", "server_type": "cx22", "image": "debian-12"})
        with pytest.raises(ActionFailed) as caught:
            await api.wait_action(action, interval=0.01)
        assert caught.value.code == "server_limit_exceeded"
        api_state.action_polls = 1000
        _, slow = await api.create_server({"name": "t", "server_type": "cx22", "image": "debian-12"})
        with pytest.raises(TimeoutError):
            await api.wait_action(slow, timeout=0.05, interval=0.01)


async def test_unreachable_api_is_a_clear_error() -> None:
    async with HetznerClient("t", "http://127.0.0.1:9") as api:
        with pytest.raises(HetznerError) as caught:
            await api.find_servers()
    assert caught.value.code == "unreachable"
