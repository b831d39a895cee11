"""The key cache takes in changes another process made to the same control plane."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.control.store import ControlPlane, utcnow
from appliance.projects.keys import KeyService


async def test_refresh_takes_in_keys_created_revoked_and_rotated_elsewhere(tmp_path: Path) -> None:
    daemon_store, cli_store = ControlPlane(tmp_path / "control.db"), ControlPlane(tmp_path / "control.db")
    await daemon_store.open()
    await cli_store.open()
    try:
        await cli_store.execute(
            "INSERT INTO projects (id, name, db_name, node_id, status, created_at)"
            " VALUES ('abcdefghijkl', 'Shop', 'proj_abcdefghijkl', NULL, 'active', ?)",
            (utcnow(),),
        )
        daemon, cli = KeyService(daemon_store), KeyService(cli_store)
        await daemon.load()
        assert await daemon.refresh() is False  # nothing changed

        record, secret = await cli.create("abcdefghijkl", "secret")
        assert daemon.resolve(secret) is None
        assert await daemon.refresh() is True
        found = daemon.resolve(secret)
        assert found is not None and found.id == record.id and found.project_id == "abcdefghijkl"
        assert await daemon.refresh() is False

        new, new_secret, _ = await cli.rotate("abcdefghijkl", record.id, 60)
        assert await daemon.refresh() is True
        assert daemon.resolve(new_secret) is not None and daemon.resolve(secret) is not None
        assert daemon.resolve(secret, now=time.time() + 120) is None  # the old key's grace ends

        await cli.revoke("abcdefghijkl", new.id)
        assert await daemon.refresh() is True
        assert daemon.resolve(new_secret) is None

        await cli_store.execute("DELETE FROM projects WHERE id = 'abcdefghijkl'")
        assert await daemon.refresh() is True
        assert daemon.resolve(secret) is None
    finally:
        await cli_store.close()
        await daemon_store.close()
