"""The provisioning step machine against the local Hetzner API: success, failure at every
step with cleanup of exactly what was created, a clean second attempt, no secrets in logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from appliance.cloud.provision import FIREWALL_NAME
from appliance.errors import Conflict
from tests.cloud.conftest import Env

NODE = "n_aaaaaaaaaaaaaaaa"


def assert_nothing_left(env: Env) -> None:
    assert env.api.servers == {}
    assert env.api.firewalls == {}
    assert env.api.ssh_keys == {}


async def pending_tokens(env: Env) -> int:
    row = await env.store.fetchone("SELECT count(*) AS n FROM join_tokens WHERE used_at IS NULL")
    assert row is not None
    return int(row["n"])


async def test_provisioning_creates_key_firewall_server_and_waits_for_the_join(env: Env) -> None:
    env.auto_join(NODE)
    run = await env.provision("w1")
    assert run["state"] == "done" and run["step"] == "done" and run["error"] is None
    assert run["node_id"] == NODE and run["server_ip"]
    [server] = env.api.servers.values()
    assert server["id"] == run["server_id"] and server["labels"]["atlashub-run"] == run["id"]
    [firewall] = env.api.firewalls.values()
    assert firewall["name"] == FIREWALL_NAME
    assert firewall["applied_to"] == [{"type": "server", "server": {"id": server["id"]}}]
    assert {(r["protocol"], r["port"]) for r in firewall["rules"]} == {
        ("tcp", "22"),
        ("tcp", "80"),
        ("tcp", "443"),
        ("udp", "51820"),
    }
    [key] = env.api.ssh_keys.values()
    assert server["_ssh_keys"] == [key["id"]]
    assert server["_user_data"].startswith("#!/bin/bash\n")
    assert "https://api.example.com" in server["_user_data"]


async def test_existing_key_and_firewall_are_reused_and_never_deleted(env: Env) -> None:
    env.auto_join(NODE)
    assert (await env.provision("w1"))["state"] == "done"
    env.api.fail["create_server"] = (422, "uniqueness_error")
    run = await env.provision("w2")
    assert run["state"] == "failed" and run["step"] == "server"
    assert "uniqueness_error" in run["error"]
    assert len(env.api.servers) == 1 and len(env.api.firewalls) == 1 and len(env.api.ssh_keys) == 1
    assert run["cleanup"] == {"node": "not joined", "join_token": "deleted", "server": "none"}


@pytest.mark.parametrize(
    ("operation", "status", "code", "step"),
    [
        ("create_ssh_key", 422, "invalid_input", "ssh_key"),
        ("create_firewall", 422, "invalid_input", "firewall"),
        ("create_server", 422, "uniqueness_error", "server"),
        ("create_server", 503, "unavailable", "server"),
    ],
)
async def test_a_refused_step_deletes_everything_created_and_a_retry_is_clean(
    env: Env, operation: str, status: int, code: str, step: str
) -> None:
    env.api.fail[operation] = (status, code)
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["step"] == step and code in run["error"]
    assert_nothing_left(env)
    assert await pending_tokens(env) == 0
    assert run["server_id"] is None and run["firewall_id"] is None and run["ssh_key_id"] is None
    env.auto_join(NODE)
    again = await env.provision("w1")
    assert again["state"] == "done", again
    assert len(env.api.servers) == len(env.api.firewalls) == len(env.api.ssh_keys) == 1


async def test_failed_create_action_deletes_the_server_and_what_came_before(env: Env) -> None:
    env.api.action_error = "server_create_failed"
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["step"] == "server_action"
    assert "server_create_failed" in run["error"]
    assert_nothing_left(env)
    assert run["cleanup"]["server"].startswith("deleted ")
    assert run["cleanup"]["firewall"] == "deleted" and run["cleanup"]["ssh_key"] == "deleted"


async def test_join_that_never_arrives_times_out_and_cleans_up(env: Env) -> None:
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["step"] == "join"
    assert "did not join" in run["error"]
    assert_nothing_left(env)
    assert await pending_tokens(env) == 0
    env.auto_join(NODE)
    assert (await env.provision("w1"))["state"] == "done"


async def test_firewall_still_in_use_after_server_deletion_is_retried(env: Env) -> None:
    env.api.firewall_busy_deletes = 2
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["cleanup"]["firewall"] == "deleted"
    assert_nothing_left(env)


async def test_failed_cleanup_is_reported_and_can_be_run_again(env: Env) -> None:
    env.api.fail["delete_server"] = (500, "server_error")
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["cleanup"]["server"].startswith("failed")
    assert "cleanup incomplete" in run["error"] and run["server_id"] is not None
    again = await env.provisioner.cleanup(run["id"])
    assert again["cleanup"]["server"].startswith("deleted") and again["server_id"] is None
    assert_nothing_left(env)


async def test_a_node_that_joins_after_a_later_failure_is_removed(env: Env) -> None:
    env.auto_join(NODE)
    env.api.action_error = "server_create_failed"
    run = await env.provision("w1")
    assert run["state"] == "failed" and run["cleanup"]["node"] == f"removed {NODE}"
    assert env.removed == [NODE]


async def test_cancellation_cleans_up(env: Env) -> None:
    env.provisioner.join_timeout = 60
    run_id = await env.provisioner.start({"name": "w1", "server_type": "cx22", "location": "fsn1"})
    task = asyncio.create_task(env.provisioner.run(run_id))
    while not env.api.servers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    run = await env.provisioner.runs.get(run_id)
    assert run["state"] == "failed" and run["step"] == "join" and "interrupted" in run["error"]
    assert_nothing_left(env)


async def test_requests_are_checked_before_anything_is_created(env: Env) -> None:
    for body in (
        {"name": "Bad Name", "server_type": "cx22", "location": "fsn1"},
        {"name": "w1", "server_type": "", "location": "fsn1"},
        {"name": "w1", "server_type": "cx22", "location": None},
    ):
        with pytest.raises(Exception, match="must be"):
            await env.provisioner.start(body)
    await env.store.execute("DELETE FROM cloud_settings")
    with pytest.raises(Conflict) as caught:
        await env.provisioner.start({"name": "w1", "server_type": "cx22", "location": "fsn1"})
    assert caught.value.code == "cloud_token_missing"
    assert env.api.requests == []


async def test_secrets_never_reach_the_log(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens: list[str] = []

    async def boot(server: dict) -> None:
        from tests.cloud.conftest import joined_token

        tokens.append(joined_token(server["_user_data"]))

    env.api.on_server_created = boot
    run = await env.provision("w1")
    assert run["state"] == "failed"
    row = await env.store.fetchone("SELECT token_enc FROM cloud_settings")
    assert row is not None and env.api.token not in row["token_enc"]
    text = caplog.text + repr(run)
    assert tokens and tokens[0] not in text and tokens[0].split(".")[1] not in text
    assert env.api.token not in text


async def test_workers_install_from_the_configured_apt_repository(env: Env) -> None:
    from appliance.cloud.cloudinit import DEFAULT_APT_URL

    env.ctx.config = env.ctx.config.replace(mesh={"worker_apt_url": "https://mirror.example.net/atlashub"})
    env.auto_join(NODE)
    run = await env.provision("w1")
    assert run["state"] == "done"
    [server] = env.api.servers.values()
    assert "URIs: https://mirror.example.net/atlashub/\n" in server["_user_data"]
    assert DEFAULT_APT_URL not in server["_user_data"]
