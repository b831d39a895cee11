"""The BUILT executable (`packaging/build.sh binary`), not the source tree: `atlashub dev` → dev.json
→ /readyz → create a project → one CRUD round trip → SIGTERM exits 0.

This is what catches a module PyInstaller did not bundle (roles and CLI modules are imported by
name), SQL files or dashboard assets missing from the bundle, and a missing build stamp.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARIES = {
    "onedir": ROOT / "dist" / "atlashub" / "atlashub",
}
ONEFILES = sorted(p for p in (ROOT / "dist").glob("atlashub-*-linux-*") if p.is_file())
if ONEFILES:
    BINARIES["onefile"] = ONEFILES[-1]

pytestmark = pytest.mark.system


def request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    # Only http://127.0.0.1 URLs from dev.json come here.
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})  # noqa: S310
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@pytest.fixture(params=sorted(BINARIES))
def binary(request: pytest.FixtureRequest) -> Path:
    path = BINARIES[request.param]
    if not path.exists():
        pytest.fail(f"{path} is missing: run packaging/build.sh binary first")
    return path


@pytest.fixture
def dev_instance(binary: Path) -> Iterator[dict[str, str]]:
    # Not under pytest's 0700 tmp tree: the embedded PostgreSQL runs as the postgres user.
    data_dir = Path(tempfile.mkdtemp(prefix="atlashub-smoke-", dir="/tmp"))
    data_dir.chmod(0o755)
    log = open(data_dir.parent / f"{data_dir.name}.log", "wb")  # closed below
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(data_dir)}
    proc = subprocess.Popen(
        [str(binary), "dev", "--data-dir", str(data_dir), "--gateway-port", "0", "--dashboard-port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        dev_json = data_dir / "dev.json"
        deadline = time.monotonic() + 120
        while not dev_json.exists():
            if proc.poll() is not None:
                raise AssertionError(f"atlashub dev exited {proc.returncode}: {Path(log.name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("no dev.json within 120 s")
            time.sleep(0.2)
        info = json.loads(dev_json.read_text())
        yield info
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, Path(log.name).read_text()[-3000:]
        assert not dev_json.exists(), "dev.json must be removed on exit"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_version_has_the_build_stamp(binary: Path) -> None:
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.startswith("atlashub ")
    commit = out.stdout.strip().rsplit("(", 1)[1].rstrip(")")
    assert commit and commit != "unknown", out.stdout


def test_every_subcommand_module_is_bundled(binary: Path) -> None:
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, check=True, timeout=60)
    for command in ("init", "serve", "dev", "migrate", "doctor", "version"):
        assert command in out.stdout


def test_dev_ready_project_crud(dev_instance: dict[str, str]) -> None:
    gateway, dashboard = dev_instance["gateway_url"], dev_instance["dashboard_url"]
    admin = {"x-dev-admin-token": dev_instance["admin_token"]}
    for base in (gateway, dashboard):
        status, body = request("GET", f"{base}/readyz")
        assert status == 200 and body["status"] == "ready", body
    # The dashboard's static files are inside the bundle.
    status, _ = request("GET", f"{dashboard}/")
    assert status == 200

    status, project = request("POST", f"{dashboard}/admin/api/projects", {"name": "smoke"}, admin)
    if status == 404:
        pytest.skip("this build has no projects API yet")
    assert status == 201, project
    pid, secret = project["id"], project["secret_key"]
    migration = {"name": "0001.sql", "sql": "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);"}
    status, body = request(
        "POST", f"{dashboard}/admin/api/projects/{pid}/migrations", {"migrations": [migration]}, admin
    )
    assert status == 200, body
    key = {"x-api-key": secret}
    status, body = request("POST", f"{gateway}/v1/db/notes", {"rows": [{"body": "from the built binary"}]}, key)
    assert status == 201, body
    status, body = request("GET", f"{gateway}/v1/db/notes?select=body", headers=key)
    assert status == 200 and body == [{"body": "from the built binary"}], body
