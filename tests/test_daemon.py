from __future__ import annotations

import os
import socket
from pathlib import Path

import aiohttp
import pytest

from appliance.crypto import generate_master_key
from appliance.daemon import Daemon
from appliance.errors import StartupError
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, make_config


async def test_health_and_readiness_on_both_listeners(atlas: RunningDaemon) -> None:
    for url in (atlas.gateway_url, atlas.dashboard_url):
        async with atlas.http.get(url + "/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}
        async with atlas.http.get(url + "/readyz") as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["checks"] == {"control_plane": True, "postgres": True}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/no/such/thing", 404, "not_found"), ("POST", "/healthz", 405, "method_not_allowed")],
)
async def test_errors_have_the_one_json_shape(
    atlas: RunningDaemon, method: str, path: str, status: int, code: str
) -> None:
    async with atlas.http.request(method, atlas.gateway_url + path) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["code"] == code


async def test_readiness_fails_when_postgres_is_unreachable(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    state.mkdir()
    generate_master_key(state / "master.key")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    config = make_config(state, pg, postgres={"port": dead_port})
    daemon = Daemon(config)
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(daemon.url("gateway") + "/readyz") as resp:
            assert resp.status == 503
            assert (await resp.json())["checks"]["postgres"] is False
    finally:
        await daemon.stop()


async def test_a_taken_port_is_named_in_the_error(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    state.mkdir()
    generate_master_key(state / "master.key")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        daemon = Daemon(make_config(state, pg, gateway={"listen": f"127.0.0.1:{port}"}))
        with pytest.raises(StartupError, match=f"cannot listen on port {port}"):
            await daemon.start()
    assert daemon.addresses == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; checked by the CLI test as another user")
async def test_state_dir_not_writable(tmp_path: Path, pg: EmbeddedPostgres) -> None:  # pragma: no cover
    state = tmp_path / "ro"
    state.mkdir()
    state.chmod(0o500)
    with pytest.raises(StartupError, match="not writable"):
        await Daemon(make_config(state, pg)).start()


async def test_missing_master_key_with_existing_secrets_is_refused(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    state.mkdir()
    generate_master_key(state / "master.key")
    daemon = Daemon(make_config(state, pg))
    await daemon.start()
    await daemon.stop()
    (state / "master.key").unlink()
    with pytest.raises(StartupError, match="never generating a new key"):
        await Daemon(make_config(state, pg)).start()
    assert not (state / "master.key").exists()


async def test_a_different_master_key_is_refused(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    state.mkdir()
    generate_master_key(state / "master.key")
    daemon = Daemon(make_config(state, pg))
    await daemon.start()
    await daemon.stop()
    (state / "master.key").unlink()
    generate_master_key(state / "master.key")
    with pytest.raises(StartupError, match="not the key this control plane was sealed with"):
        await Daemon(make_config(state, pg)).start()


async def test_fresh_state_without_key_asks_for_init(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    with pytest.raises(StartupError, match="atlashub init"):
        await Daemon(make_config(tmp_path / "state", pg)).start()
