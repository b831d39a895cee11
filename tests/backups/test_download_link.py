"""Signed, expiring download links: a browser follows one without the admin header, until it expires."""

from __future__ import annotations

import time

import pytest

from appliance.backups import links
from appliance.errors import Forbidden
from tests.backups.conftest import backup, create_project
from tests.fixtures.daemon import RunningDaemon

KEY = b"k" * 32


async def test_signed_link_downloads_without_the_admin_header_until_it_expires(atlas: RunningDaemon) -> None:
    pid = await create_project(atlas, schema="CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);")
    backup_id = (await backup(atlas, pid))["result"]["id"]
    status, body = await atlas.admin("POST", f"/admin/api/backups/{backup_id}/download-url")
    assert status == 200, body
    assert body["expires_in"] == 600 and body["url"].startswith(atlas.dashboard_url + "/admin/backups/download/")
    _, direct = await atlas.admin("GET", f"/admin/api/backups/{backup_id}/download")

    async with atlas.http.get(body["url"]) as resp:  # no admin header: what a browser sends
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        assert await resp.read() == direct and direct.startswith(b"PGDMP")

    url = body["url"]
    sig = url.split("sig=")[1]
    tampered = url[:-1] + ("A" if sig[-1] != "A" else "B")
    key = atlas.daemon.core.box.derive("backup-download")
    expired = atlas.dashboard_url + links.signed_path(key, backup_id, 60, now=time.time() - 120)
    for bad in (
        tampered,
        url.replace(backup_id, "bk_" + "0" * 20),  # the signature names one backup only
        url.split("?")[0],
        expired,
        url.replace("expires=", "expires=1"),
    ):
        async with atlas.http.get(bad) as resp:
            assert resp.status == 403, bad
            assert (await resp.json())["error"]["code"] == "download_link_invalid"

    status, body = await atlas.admin("POST", f"/admin/api/backups/{backup_id}/download-url", json={"expires_in": 5})
    assert status == 200 and body["expires_in"] == 5
    for bad_ttl in (0, -1, "60", 10**9, True):
        status, body = await atlas.admin(
            "POST", f"/admin/api/backups/{backup_id}/download-url", json={"expires_in": bad_ttl}
        )
        assert (status, body["error"]["code"]) == (400, "invalid_value")
    # Asking for a link needs the admin; only the link itself does not.
    async with atlas.http.post(f"{atlas.dashboard_url}/admin/api/backups/{backup_id}/download-url") as resp:
        assert resp.status == 401
    status, body = await atlas.admin("POST", "/admin/api/backups/bk_missing/download-url")
    assert status == 404


def test_link_signature_and_expiry() -> None:
    path = links.signed_path(KEY, "bk_1", 600, now=1_000_000)
    query = dict(part.split("=") for part in path.split("?")[1].split("&"))
    assert query["expires"] == "1000600"
    links.check(KEY, "bk_1", query["expires"], query["sig"], now=1_000_599)
    for backup_id, expires, sig, now in (
        ("bk_1", query["expires"], query["sig"], 1_000_600),  # expired at the second it names
        ("bk_2", query["expires"], query["sig"], 1_000_000),
        ("bk_1", "1000601", query["sig"], 1_000_000),
        ("bk_1", query["expires"], None, 1_000_000),
        ("bk_1", "-5", query["sig"], 1_000_000),
    ):
        with pytest.raises(Forbidden):
            links.check(KEY, backup_id, expires, sig, now=now)
    with pytest.raises(Forbidden):
        links.check(b"x" * 32, "bk_1", query["expires"], query["sig"], now=1_000_000)
