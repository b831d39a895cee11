from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from appliance.cloud.provision import Provisioner
from appliance.cloud.runs import CloudContext
from appliance.cloud.settings import HETZNER, CloudSettings
from appliance.config import Config
from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import SecretBox
from appliance.mesh.identity import NodeIdentity
from appliance.mesh.tokens import JoinTokens, parse_token
from tests.cloud.fake_hetzner import FakeHetzner

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVmb29iYXJmb29iYXJmb29iYXJmb29iYXJmb29iYXI= admin@laptop"
MASTER = NodeIdentity.generate().node_id


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeHetzner, str]]:
    api = FakeHetzner()
    server = TestServer(api.app())
    await server.start_server()
    try:
        yield api, str(server.make_url("/v1"))
    finally:
        await server.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control = ControlPlane(tmp_path / "control.db")
    await control.open()
    yield control
    await control.close()


def joined_token(user_data: str) -> str:
    found = re.search(r"--token (\S+)", user_data)
    assert found, "the user data runs `atlashub node join --token`"
    return shlex.split(found.group(1))[0]


async def join_as_worker(store: ControlPlane, user_data: str, node_id: str, name: str = "w1") -> None:
    """What `atlashub node join` on the new server makes the master do: consume the token, add the node."""
    _, secret = parse_token(joined_token(user_data))
    async with store.transaction() as tx:
        await JoinTokens(store, MASTER).consume(secret, node_id, tx=tx)
        await tx.execute(
            "INSERT INTO nodes (id, name, role, status, created_at) VALUES (?, ?, 'worker', 'unknown', ?)",
            (node_id, name, utcnow()),
        )


class Env:
    def __init__(self, store: ControlPlane, api: FakeHetzner, url: str) -> None:
        self.store, self.api, self.url = store, api, url
        self.box = SecretBox(b"k" * 32)
        self.removed: list[str] = []
        config = Config().replace(gateway={"public_url": "https://api.example.com"})

        async def remove_node(node_id: str) -> None:
            self.removed.append(node_id)
            await store.execute("UPDATE nodes SET removed_at = ?, status = 'removed' WHERE id = ?", (utcnow(), node_id))

        self.ctx = CloudContext(store, self.box, MASTER, config, remove_node)
        self.provisioner = Provisioner(self.ctx, action_timeout=5, join_timeout=1.0, poll_interval=0.02)

    async def set_token(self) -> None:
        await CloudSettings(self.store, self.box).save(HETZNER, self.api.token, self.url, SSH_KEY)

    def auto_join(self, node_id: str = "n_aaaaaaaaaaaaaaaa") -> None:
        async def boot(server: dict[str, Any]) -> None:
            await join_as_worker(self.store, server["_user_data"], node_id, server["name"])

        self.api.on_server_created = boot

    async def provision(self, name: str = "w1") -> dict[str, Any]:
        run_id = await self.provisioner.start({"name": name, "server_type": "cx22", "location": "fsn1"})
        return await self.provisioner.run(run_id)


@pytest.fixture
async def env(store: ControlPlane, fake: tuple[FakeHetzner, str]) -> Env:
    api, url = fake
    environment = Env(store, api, url)
    await environment.set_token()
    return environment
