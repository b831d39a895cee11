"""Three real nodes (master + 2 workers), each in its own network namespace with its own
PostgreSQL, joined over real WireGuard (wireguard-go), each a real ``atlashub serve``.

Layout: namespaces ``<id>m``, ``<id>w1``, ``<id>w2`` hang off a bridge in a fourth (hub)
namespace on 192.168.231.0/24; the test reaches the master through one more veth into the
hub. Everything is torn down at the end: daemons, PostgreSQL, wireguard-go, namespaces.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.mesh.envelope import HEARTBEAT, seal
from appliance.mesh.identity import NodeIdentity
from appliance.pg.embedded import EmbeddedPostgres

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("wireguard-go") is None, reason="apt-get install wireguard-go wireguard-tools"),
]

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SUBNET = "192.168.231"
USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}

# Sends prepared HTTP requests from inside a namespace and prints what came back (one JSON line each).
SENDER = r"""
import asyncio, base64, json, sys
import aiohttp

async def main():
    out = []
    async with aiohttp.ClientSession() as http:
        for item in json.load(open(sys.argv[1])):
            try:
                async with http.post(item["url"], data=base64.b64decode(item["body"]), headers=item["headers"],
                                     timeout=aiohttp.ClientTimeout(total=item.get("timeout", 10))) as resp:
                    text = await resp.text()
                    out.append({"status": resp.status, "body": text})
            except Exception as exc:
                out.append({"status": None, "body": type(exc).__name__})
    print(json.dumps(out))

asyncio.run(main())
"""


def sh(*argv: str, check: bool = True, ns: str | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")
    return result


@dataclass
class NetnsPostgres(EmbeddedPostgres):
    netns: str = ""

    def _cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *super()._cmd(*args)]


@dataclass
class Node:
    name: str
    ns: str
    ip: str
    wg_if: str
    role: str
    base: Path
    pg: NetnsPostgres | None = None
    wg_proc: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def config(self) -> Path:
        return self.base / "atlashub.toml"

    def write_config(self, master_ip: str) -> None:
        assert self.pg is not None
        mesh = [f'role = "{self.role}"', f'wg_interface = "{self.wg_if}"', f'endpoint = "{self.ip}:51820"']
        mesh += ["heartbeat_seconds = 1.0"]
        if self.role == "worker":
            mesh.append(f'master_url = "http://{master_ip}:8080"')
        self.config.write_text(
            "\n".join(
                [
                    "[node]",
                    f'name = "{self.name}"',
                    f'state_dir = "{self.state}"',
                    "[gateway]",
                    'listen = "0.0.0.0:8080"',
                    f'public_url = "http://{self.ip}:8080"',
                    "[dashboard]",
                    'listen = "0.0.0.0:8081"',
                    "[postgres]",
                    'host = "127.0.0.1"',
                    f"port = {self.pg.port}",
                    'user = "postgres"',
                    f'password_file = "{self.pg.password_file}"',
                    "[storage]",
                    'backend = "fs"',
                    f'fs_root = "{self.base / "storage"}"',
                    "[logging]",
                    'format = "text"',
                    "[mesh]",
                    *mesh,
                    "",
                ]
            )
        )

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(PYTHON, "-m", "appliance", *args, "--config", str(self.config), ns=self.ns, check=check, input=stdin)

    def start(self) -> None:
        log = self.base / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.daemon = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, PYTHON, "-m", "appliance", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        wait(lambda: self.http_ok("/readyz"), 60, f"{self.name} ready")

    def http_ok(self, path: str) -> bool:
        if self.daemon is not None and self.daemon.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.logs[-1].read_text()[-3000:]}")
        probe = sh("python3", "-c", _GET.format(url=f"http://127.0.0.1:8080{path}"), ns=self.ns, check=False)
        return probe.returncode == 0

    def kill(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait(10)
        self.daemon = None

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.daemon = None


_GET = "import urllib.request,sys; urllib.request.urlopen('{url}', timeout=2)"


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


class Bed:
    def __init__(self) -> None:
        self.id = secrets.token_hex(2)
        self.base = Path(tempfile.mkdtemp(prefix="atlashub-netns-", dir="/tmp"))
        self.base.chmod(0o755)
        self.hub = f"ah{self.id}hub"
        self.namespaces: list[str] = []
        self.nodes: dict[str, Node] = {}
        self.root_veth = f"ah{self.id}r"

    def build(self) -> None:
        sh("ip", "netns", "add", self.hub)
        self.namespaces.append(self.hub)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.hub)
        sh("ip", "link", "set", "br0", "up", ns=self.hub)
        # The test's own way in: a veth from the root namespace onto the hub bridge.
        sh("ip", "link", "add", self.root_veth, "type", "veth", "peer", "name", "tohost")
        sh("ip", "link", "set", "tohost", "netns", self.hub)
        sh("ip", "link", "set", "tohost", "master", "br0", ns=self.hub)
        sh("ip", "link", "set", "tohost", "up", ns=self.hub)
        sh("ip", "address", "add", f"{SUBNET}.254/24", "dev", self.root_veth)
        sh("ip", "link", "set", self.root_veth, "up")
        for index, (name, role) in enumerate((("m", "master"), ("w1", "worker"), ("w2", "worker")), start=1):
            self.nodes[name] = self._node(name, role, index)

    def _node(self, name: str, role: str, index: int) -> Node:
        ns = f"ah{self.id}{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", f"p{name}", ns=ns)
        sh("ip", "link", "set", f"p{name}", "netns", self.hub, ns=ns)
        sh("ip", "link", "set", f"p{name}", "master", "br0", ns=self.hub)
        sh("ip", "link", "set", f"p{name}", "up", ns=self.hub)
        ip = f"{SUBNET}.{index}"
        sh("ip", "address", "add", f"{ip}/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        base = self.base / name
        base.mkdir()
        base.chmod(0o755)
        node = Node(name=name, ns=ns, ip=ip, wg_if=f"wg{self.id}{name}", role=role, base=base)
        node.pg = NetnsPostgres(data_dir=base / "pg", password_file=base / "pg.password", port=5432, netns=ns)
        node.pg.ensure_initialized()
        node.pg.start()
        # The interface exists before the daemon starts (wireguard-go, owned by this test); the
        # daemon finds it and configures key, port, address and peers itself.
        node.wg_proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "wireguard-go", "-f", node.wg_if],
            env={**os.environ, **USERSPACE_ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait(lambda: sh("ip", "link", "show", node.wg_if, ns=ns, check=False).returncode == 0, 10, "wireguard-go")
        node.state.mkdir(mode=0o700)
        generate_master_key(node.state / MASTER_KEY_FILE)
        node.write_config(f"{SUBNET}.1")
        return node

    def teardown(self) -> None:
        for node in self.nodes.values():
            node.stop()
        for node in self.nodes.values():
            if node.pg is not None:
                with contextlib.suppress(Exception):
                    node.pg.stop()
            if node.wg_proc is not None and node.wg_proc.poll() is None:
                node.wg_proc.terminate()
                try:
                    node.wg_proc.wait(5)
                except subprocess.TimeoutExpired:
                    node.wg_proc.kill()
            Path(f"/var/run/wireguard/{node.wg_if}.sock").unlink(missing_ok=True)
        subprocess.run(["ip", "link", "del", self.root_veth], capture_output=True, check=False)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        if os.environ.get("ATLASHUB_KEEP_NETNS_LOGS"):
            print(f"logs kept in {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    testbed = Bed()
    try:
        testbed.build()
        for node in testbed.nodes.values():
            node.start()
        yield testbed
    finally:
        testbed.teardown()


def node_list(node: Node) -> dict[str, Any]:
    return json.loads(node.cli("node", "list", "--json").stdout)


def status_of(master: Node, node_id: str) -> str | None:
    return next((n["status"] for n in node_list(master)["nodes"] if n["id"] == node_id), None)


def identity_of(node: Node) -> NodeIdentity:
    return NodeIdentity.load(node.state / "node-ed25519.pem")


def send_from(bed: Bed, node: Node, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    script, spec = bed.base / "sender.py", bed.base / f"spec-{secrets.token_hex(3)}.json"
    script.write_text(SENDER)
    spec.write_text(json.dumps(items))
    result = sh(PYTHON, str(script), str(spec), ns=node.ns)
    return list(json.loads(result.stdout))


def heartbeat_item(sealed: Any, url: str, body: bytes | None = None) -> dict[str, Any]:
    data = sealed.body if body is None else body
    return {"url": url, "headers": sealed.http_headers(), "body": base64.b64encode(data).decode(), "timeout": 5}


def test_cluster(bed: Bed) -> None:
    master, w1, w2 = bed.nodes["m"], bed.nodes["w1"], bed.nodes["w2"]
    master_url = f"http://{master.ip}:8080"

    # -- join both workers with one-time tokens ------------------------------------------------
    token1 = master.cli("node", "token", "create").stdout.strip()
    token2 = master.cli("node", "token", "create").stdout.strip()
    assert "joined master" in w1.cli("node", "join", "--master", master_url, "--token", token1).stdout
    assert "joined master" in w2.cli("node", "join", "--master", master_url, "--token", token2).stdout
    ids = {name: identity_of(node).node_id for name, node in bed.nodes.items()}
    wait(lambda: status_of(master, ids["w1"]) == "healthy", 60, "worker 1 heartbeats over WireGuard")
    wait(lambda: status_of(master, ids["w2"]) == "healthy", 60, "worker 2 heartbeats over WireGuard")
    listed = {n["id"]: n for n in node_list(master)["nodes"]}
    assert {listed[ids["w1"]]["wg_address"], listed[ids["w2"]]["wg_address"]} == {"10.100.0.2", "10.100.0.3"}
    handshakes = sh("wg", "show", master.wg_if, "latest-handshakes", ns=master.ns).stdout
    assert all(int(line.split()[1]) > 0 for line in handshakes.strip().splitlines()), handshakes

    # -- a used or expired token is refused ------------------------------------------------------
    reused = w2.cli("node", "join", "--master", master_url, "--token", token1, check=False)
    assert reused.returncode != 0 and "join_token_invalid" in reused.stderr, reused.stderr
    expired = master.cli("node", "token", "create", "--ttl", "60").stdout.strip()
    with sqlite3.connect(master.state / "control.db") as db:
        db.execute("UPDATE join_tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE used_at IS NULL")
    refused = w2.cli("node", "join", "--master", master_url, "--token", expired, check=False)
    assert refused.returncode != 0 and "join_token_invalid" in refused.stderr, refused.stderr

    # -- tampered, replayed, stale, misaddressed and unknown-sender messages are refused --------
    agent = "http://10.100.0.1:8082/mesh/v1/heartbeat"
    w2_identity = identity_of(w2)
    body = json.dumps({"version": "0.1.0", "health": "ok"}).encode()
    good = seal(w2_identity, ids["m"], HEARTBEAT, body)
    items = [
        heartbeat_item(good, agent),
        heartbeat_item(good, agent),  # replayed
        heartbeat_item(seal(w2_identity, ids["m"], HEARTBEAT, body), agent, body + b" "),  # tampered
        heartbeat_item(seal(w2_identity, ids["m"], HEARTBEAT, body, now=time.time() - 300), agent),  # stale
        heartbeat_item(seal(w2_identity, ids["w1"], HEARTBEAT, body), agent),  # misaddressed
        heartbeat_item(seal(NodeIdentity.generate(), ids["m"], HEARTBEAT, body), agent),  # unknown sender
    ]
    answers = send_from(bed, w2, items)
    reasons = [
        json.loads(a["body"])["error"]["details"]["reason"] if a["status"] == 401 else a["status"] for a in answers
    ]
    assert reasons == [204, "replayed", "body_mismatch", "stale", "wrong_recipient", "unknown_sender"], answers

    # -- a removed node can no longer talk ------------------------------------------------------
    master.cli("node", "remove", ids["w2"])
    wait(lambda: status_of(master, ids["w2"]) is None, 15, "worker 2 removed")
    fresh = seal(w2_identity, ids["m"], HEARTBEAT, body)
    answer = send_from(bed, w2, [heartbeat_item(fresh, agent)])[0]
    # The WireGuard peer is gone (no route: timeout) or, if a packet got through, the key is unpinned.
    assert answer["status"] is None or "unknown_sender" in answer["body"], answer
    assert status_of(master, ids["w1"]) == "healthy"

    # -- a project on worker 1, CRUD and storage through the master -----------------------------
    _project_flow(bed, master, w1, ids)


def _project_flow(bed: Bed, master: Node, w1: Node, ids: dict[str, str]) -> None:
    admin = _admin_session(master)
    if admin is None:
        pytest.skip("local admin accounts are not available to sign in to the master's admin API")
    status, project = admin("POST", f"/admin/api/nodes/{ids['w1']}/projects", {"name": "on-worker-1"})
    assert status == 201, project
    status, other = admin("POST", "/admin/api/projects", {"name": "on-master"})
    assert status == 201, other
    sql = "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done boolean NOT NULL DEFAULT false);"
    # The schema is applied on each project's own node (the worker's admin API, over the test's bridge).
    for call, pid in ((_admin_session(w1), project["id"]), (admin, other["id"])):
        status, body = call(
            "POST", f"/admin/api/projects/{pid}/migrations", {"migrations": [{"name": "1.sql", "sql": sql}]}
        )
        assert status == 200, body
    api = _public(master)
    secret, local_secret = project["secret_key"], other["secret_key"]
    status, rows = api("POST", "/v1/db/todos", secret, {"rows": [{"title": "one"}, {"title": "two"}]})
    assert status == 201, rows
    status, rows = api("GET", "/v1/db/todos?order=id.asc", secret, None)
    assert status == 200 and [r["title"] for r in rows] == ["one", "two"], rows
    status, rows = api("PATCH", "/v1/db/todos?eq.title=one", secret, {"values": {"done": True}})
    assert status == 200 and rows[0]["done"] is True, rows
    status, body = api("DELETE", "/v1/db/todos?eq.title=two", secret, None)
    assert status == 200, body
    status, body = api("GET", "/v1/storage/list?bucket=private", secret, None)
    assert status == 200, body
    _commands_and_admin(admin, ids, project["id"])

    # -- worker 1 goes down: its projects 503, the others are fine; back up: it recovers ----------
    w1.kill()
    status, body = api("GET", "/v1/db/todos", secret, None)
    assert (status, body["error"]["code"]) == (503, "node_unavailable"), body
    status, body = api("GET", "/v1/db/todos", local_secret, None)
    assert status == 200, body
    w1.start()
    wait(lambda: api("GET", "/v1/db/todos", secret, None)[0] == 200, 60, "worker 1 serving again")
    wait(lambda: status_of(master, ids["w1"]) == "healthy", 30, "worker 1 healthy again")


def _commands_and_admin(admin: Any, ids: dict[str, str], project_id: str) -> None:
    """Master → worker commands over the tunnel, and the admin SQL editor through the master."""
    status, body = admin(
        "POST", f"/admin/api/nodes/{ids['w1']}/commands", {"name": "backup_project", "args": {"project_id": project_id}}
    )
    assert status == 200 and body["result"]["status"] in ("completed", "verified"), body
    status, body = admin(
        "POST", f"/admin/api/nodes/{ids['w1']}/commands", {"name": "unit_state", "args": {"unit": "atlashub.service"}}
    )
    if status == 503 and body["error"]["code"] == "dbus_unavailable":
        print("unit_state/restart skipped: no systemd D-Bus in the worker's namespace (tests/agent/test_systemd.py)")
    else:
        assert status == 200 and body["result"]["unit"] == "atlashub.service", body
    status, body = admin(
        "POST", f"/admin/api/projects/{project_id}/sql", {"sql": "SELECT title FROM todos ORDER BY id"}
    )
    if status != 200 and not _admin_forwarding_registered():
        print("admin SQL through the master skipped: the dashboard does not register admin_forwarding")
        return
    assert status == 200 and "one" in json.dumps(body), body


def _admin_forwarding_registered() -> bool:
    import inspect

    import appliance.dashboard

    return "admin_forwarding" in inspect.getsource(appliance.dashboard)


def _request(url: str, method: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - URLs built here, http only
        url, data=data, method=method, headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def _public(master: Node) -> Any:
    def call(method: str, path: str, key: str, body: Any) -> tuple[int, Any]:
        return _request(f"http://{master.ip}:8080{path}", method, body, {"x-api-key": key})

    return call


def _admin_session(node: Node) -> Any:
    """Sign in to a node's admin API with a new local account (`atlashub admin create`); None without one."""
    import http.cookiejar
    import urllib.error
    import urllib.request

    name, password = "ops" + secrets.token_hex(3), secrets.token_urlsafe(18)
    made = node.cli("admin", "create", "--username", name, stdin=password + "\n", check=False)
    if made.returncode != 0:
        return None
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://{node.ip}:8081"

    def call(method: str, path: str, body: Any, csrf: str = "") -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - URLs built here, http only
            base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"content-type": "application/json", "x-csrf-token": csrf},
        )
        try:
            with opener.open(request, timeout=120) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    status, session = call("POST", "/admin/api/session", {"username": name, "password": password})
    assert status == 200, session
    csrf = session["csrf_token"]
    return lambda method, path, body: call(method, path, body, csrf)
