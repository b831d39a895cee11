"""`atlashub doctor`: each check table-driven on captured inputs, then the command on a real state dir."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import doctor_checks as dc
from appliance.control.store import ControlPlane
from appliance.doctor_checks import FAIL, PASS, WARN, Listener, ProjectBackup
from appliance.pg.embedded import EmbeddedPostgres

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 637 1 0 100 0 0 10 0
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 638 1 0 100 0 0 10 0
   2: 0100007F:8F51 0100007F:C644 06 00000000:00000000 03:000003A0 00000000     0        0 0 3 0
   3: 0100640A:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 639 1 0 100 0 0 10 0
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000
   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
"""
SS = """\
LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*
LISTEN 0      244        127.0.0.1:5432      0.0.0.0:*
LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*
LISTEN 0      4096            [::]:5432         [::]:*
LISTEN 0      128                *:8081            *:*
"""


def test_proc_net_tcp_listeners() -> None:
    assert dc.parse_proc_net_tcp(PROC_TCP, ipv6=False) == [
        Listener("0.0.0.0", 8080),
        Listener("127.0.0.1", 8081),
        Listener("10.100.0.1", 8082),
    ]
    assert dc.parse_proc_net_tcp(PROC_TCP6, ipv6=True) == [
        Listener("::", 5432),
        Listener("::1", 8081),
        Listener("127.0.0.1", 80),
    ]


def test_ss_listeners() -> None:
    assert dc.parse_ss(SS) == [
        Listener("0.0.0.0", 8080),
        Listener("127.0.0.1", 5432),
        Listener("127.0.0.53", 53),
        Listener("::", 5432),
        Listener("0.0.0.0", 8081),
    ]


SERVICES = {"postgres": 5432, "dashboard": 8081, "agent": 8082}


@pytest.mark.parametrize(
    ("listeners", "allow", "expected"),
    [
        ([], (), {"postgres": PASS, "dashboard": PASS, "agent": PASS}),
        (
            [Listener("127.0.0.1", 5432), Listener("::1", 8081), Listener("10.100.0.1", 8082)],
            (),
            {"postgres": PASS, "dashboard": PASS, "agent": PASS},
        ),
        ([Listener("::", 5432)], (), {"postgres": FAIL, "dashboard": PASS, "agent": PASS}),
        ([Listener("0.0.0.0", 8081)], (), {"postgres": PASS, "dashboard": FAIL, "agent": PASS}),
        ([Listener("203.0.113.7", 8082)], (), {"postgres": PASS, "dashboard": PASS, "agent": PASS}),
        ([Listener("8.8.4.4", 8082)], (), {"postgres": PASS, "dashboard": PASS, "agent": FAIL}),
        ([Listener("0.0.0.0", 8081)], ("dashboard",), {"postgres": PASS, "dashboard": WARN, "agent": PASS}),
        # The public API on 0.0.0.0:8080 is not one of the watched services.
        ([Listener("0.0.0.0", 8080)], (), {"postgres": PASS, "dashboard": PASS, "agent": PASS}),
    ],
)
def test_listeners(listeners: list[Listener], allow: tuple[str, ...], expected: dict[str, str]) -> None:
    results = dc.check_listeners(listeners, SERVICES, allow)
    assert {r.name.removeprefix("listen_"): r.level for r in results} == expected


UFW_GOOD = """\
Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), disabled (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
80/tcp                     ALLOW IN    Anywhere
443/tcp                    ALLOW IN    Anywhere
51820/udp                  ALLOW IN    Anywhere
Anywhere on wg-atlas       ALLOW IN    Anywhere
5432/tcp                   ALLOW IN    10.100.0.0/24
22/tcp (v6)                ALLOW IN    Anywhere (v6)
51820/udp (v6)             ALLOW IN    Anywhere (v6)
Anywhere (v6) on wg-atlas  ALLOW IN    Anywhere (v6)
"""


@pytest.mark.parametrize(
    ("status", "level", "fragment"),
    [
        (None, WARN, "not installed"),
        ("Status: inactive\n", FAIL, "inactive"),
        ("ERROR: You need to be root to run this script\n", WARN, "cannot read"),
        (UFW_GOOD, PASS, "ufw active"),
        (UFW_GOOD.replace("51820/udp  ", "51821/udp  "), FAIL, "51821/udp is open"),
        (UFW_GOOD + "8081/tcp                   ALLOW IN    Anywhere\n", FAIL, "8081/tcp is open"),
        (UFW_GOOD + "5432 (v6)                  ALLOW IN    Anywhere (v6)\n", FAIL, "5432 is open"),
        (UFW_GOOD + "22                         LIMIT IN    Anywhere\n", FAIL, "22 is open"),  # 22/udp too
        (UFW_GOOD + "OpenSSH                    ALLOW IN    Anywhere\n", PASS, ""),
        (UFW_GOOD + "Postfix                    ALLOW IN    Anywhere\n", FAIL, "Postfix"),
        (UFW_GOOD + "6000:6007/tcp              ALLOW IN    Anywhere\n", FAIL, "6000:6007/tcp"),
        (UFW_GOOD + "8081/tcp                   DENY IN     Anywhere\n", PASS, ""),
        (UFW_GOOD.replace("Default: deny (incoming)", "Default: allow (incoming)"), FAIL, "default is allow"),
    ],
)
def test_ufw(status: str | None, level: str, fragment: str) -> None:
    result = dc.check_ufw(status, 51820)
    assert (result.level, fragment in result.message) == (level, True), result.message


SSHD_MAIN = """\
# Debian's default
Include /etc/ssh/sshd_config.d/*.conf
#PermitRootLogin prohibit-password
KbdInteractiveAuthentication no
UsePAM yes
"""


@pytest.mark.parametrize(
    ("files", "level", "fragment"),
    [
        ({"/etc/ssh/sshd_config": SSHD_MAIN}, FAIL, "PermitRootLogin is prohibit-password"),
        ({"/etc/ssh/sshd_config": SSHD_MAIN + "PermitRootLogin no\n"}, FAIL, "PasswordAuthentication is yes"),
        (
            {
                "/etc/ssh/sshd_config": SSHD_MAIN,
                "/etc/ssh/sshd_config.d/10-atlashub.conf": "PermitRootLogin no\nPasswordAuthentication no\n",
            },
            PASS,
            "key-only",
        ),
        (
            # The first value wins: an Include at the top overrides what the main file says later.
            {
                "/etc/ssh/sshd_config": SSHD_MAIN + "PasswordAuthentication yes\nPermitRootLogin yes\n",
                "/etc/ssh/sshd_config.d/10-atlashub.conf": "PermitRootLogin=no\npasswordauthentication  NO\n",
            },
            PASS,
            "",
        ),
        (
            {
                "/etc/ssh/sshd_config": "PermitRootLogin no\nMatch User backup\n  PasswordAuthentication yes\n"
                "PasswordAuthentication no\n",
            },
            FAIL,
            "PasswordAuthentication is yes",  # inside Match: the global value stays the default
        ),
        (
            {
                "/etc/ssh/sshd_config": "Include sshd_config.d/*.conf\n",
                "/etc/ssh/sshd_config.d/a.conf": "PermitRootLogin yes\n",
            },
            FAIL,
            "PermitRootLogin is yes",
        ),
    ],
)
def test_sshd_config(files: dict[str, str], level: str, fragment: str) -> None:
    result = dc.check_ssh(dc.parse_sshd_config(files))
    assert (result.level, fragment in result.message) == (level, True), result.message


def test_sshd_t_and_absent_sshd() -> None:
    out = "port 22\npermitrootlogin no\npasswordauthentication no\nkbdinteractiveauthentication no\n"
    assert dc.check_ssh(dc.parse_sshd_t(out)).level == PASS
    assert dc.check_ssh(dc.parse_sshd_t(out.replace("rootlogin no", "rootlogin without-password"))).level == FAIL
    assert dc.check_ssh(None).level == WARN


T = 1_750_000_000
WG_HEAD = "cHJpdmF0ZQ==\tcHVibGlj\t51820\toff\n"


def wg_peer(key: str, handshake: int) -> str:
    return f"{key}\t(none)\t203.0.113.9:51820\t10.100.0.2/32\t{handshake}\t1000\t2000\t25\n"


@pytest.mark.parametrize(
    ("dump", "worker", "level", "fragment"),
    [
        (None, False, PASS, "single node"),
        (None, True, WARN, "does not exist"),
        (WG_HEAD, False, PASS, "no peers"),
        (WG_HEAD, True, WARN, "no peers"),
        (WG_HEAD + wg_peer("peerAAAAAAAA", T - 30) + wg_peer("peerBBBBBBBB", T - 179), True, PASS, "2 peer(s)"),
        (WG_HEAD + wg_peer("peerAAAAAAAA", T - 30) + wg_peer("peerBBBBBBBB", T - 600), False, WARN, "peerBBBB… 600 s"),
        (WG_HEAD + wg_peer("peerCCCCCCCC", 0), False, WARN, "peerCCCC… never"),
    ],
)
def test_wireguard(dump: str | None, worker: bool, level: str, fragment: str) -> None:
    result = dc.check_wireguard("wg-atlas", dump, T, expect_peers=worker)
    assert (result.level, fragment in result.message) == (level, True), result.message


@pytest.mark.parametrize(
    ("total", "free", "level"),
    [(1000, 500, PASS), (1000, 150, PASS), (1000, 149, WARN), (1000, 50, WARN), (1000, 49, FAIL), (0, 0, WARN)],
)
def test_disk(total: int, free: int, level: str) -> None:
    assert dc.check_disk("state", "/var/lib/atlashub", total, free).level == level


def project(pid: str, age_h: float, verified_h_ago: float | None) -> ProjectBackup:
    verified = None if verified_h_ago is None else NOW - timedelta(hours=verified_h_ago)
    return ProjectBackup(pid, NOW - timedelta(hours=age_h), verified)


@pytest.mark.parametrize(
    ("projects", "level", "fragment"),
    [
        ([], PASS, "no projects"),
        ([project("p1", 100, 2), project("p2", 5, None)], PASS, "2 project(s)"),  # p2 is too young to judge
        ([project("p1", 100, 40)], WARN, "p1 (40 h)"),
        ([project("p1", 100, 73)], FAIL, "p1 (73 h)"),
        ([project("p1", 100, None), project("p2", 100, 40)], FAIL, "p1 (never verified), p2 (40 h)"),
    ],
)
def test_backups(projects: list[ProjectBackup], level: str, fragment: str) -> None:
    result = dc.check_backups(projects, NOW, 36)
    assert (result.level, fragment in result.message) == (level, True), result.message


@pytest.mark.parametrize(
    ("output", "level"),
    [("NTPSynchronized=yes\n", PASS), ("NTPSynchronized=no\n", WARN), (None, WARN), ("", WARN)],
)
def test_clock(output: str | None, level: str) -> None:
    assert dc.check_clock(output).level == level


@pytest.mark.parametrize(
    ("certs", "level", "fragment"),
    [
        ({}, PASS, "none"),
        ({"/a.crt": NOW + timedelta(days=60)}, PASS, "1 valid"),
        ({"/a.crt": NOW + timedelta(days=60), "/b.crt": NOW + timedelta(days=3)}, WARN, "/b.crt (3 d)"),
        ({"/a.crt": None}, WARN, "unreadable: /a.crt"),
        ({"/a.crt": NOW - timedelta(days=1), "/b.crt": NOW + timedelta(days=3)}, FAIL, "expired: /a.crt"),
    ],
)
def test_certificates(certs: dict[str, datetime | None], level: str, fragment: str) -> None:
    result = dc.check_certificates(certs, NOW)
    assert (result.level, fragment in result.message) == (level, True), result.message


def test_certificate_expiry_reads_pem(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from appliance.doctor import certificate_expiry

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.com")])
    not_after = datetime(2031, 1, 2, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "a.crt").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / "b.crt").write_text("not a certificate")
    assert certificate_expiry(tmp_path / "a.crt") == not_after
    assert certificate_expiry(tmp_path / "b.crt") is None


# --- the command, on a real state dir ---------------------------------------------------------

LINE = re.compile(r"^(pass|warn|fail) +(\S+) +(.+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed_control_plane(db: Path) -> None:
    """A project created 10 days ago whose last verified backup is 50 hours old (36 h allowed)."""
    store = ControlPlane(db)
    await store.open()
    try:

        def stamp(delta: timedelta) -> str:
            return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        await store.execute(
            "INSERT INTO projects (id, name, db_name, status, created_at)"
            " VALUES ('p_old', 'old', 'proj_old', 'active', ?)",
            (stamp(timedelta(days=10)),),
        )
        await store.execute(
            "INSERT INTO backups (id, project_id, kind, created_at, status, verified_at)"
            " VALUES ('bk_1', 'p_old', 'project', ?, 'verified', ?)",
            (stamp(timedelta(hours=51)), stamp(timedelta(hours=50))),
        )
    finally:
        await store.close()


def test_doctor_command_on_a_real_state_dir(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    dashboard_port = free_port()
    config = tmp_path / "atlashub.toml"
    config.write_text(
        f'[node]\nname = "doc"\nstate_dir = "{state}"\n'
        f'[dashboard]\nlisten = "127.0.0.1:{dashboard_port}"\n'
        f'[postgres]\nhost = "127.0.0.1"\nport = {pg.port}\nuser = "{pg.user}"\npassword_file = "{pg.password_file}"\n'
        f'[mesh]\nagent_port = {free_port()}\nwg_interface = "wg-doctor-none"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASHUB_")}

    def doctor(extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", "doctor", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **(extra or {})},
            check=False,
        )

    init = subprocess.run(
        [sys.executable, "-m", "appliance", "init", "--config", str(config)], env=env, capture_output=True, check=False
    )
    assert init.returncode == 0, init.stderr
    asyncio.run(seed_control_plane(state / "control.db"))

    out = doctor()
    lines = out.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), out.stdout
    levels = {m[2]: m[1] for m in (LINE.match(line) for line in lines) if m}
    for name in ("config", "state_dir", "master_key", "postgres", "control_plane", "listen_dashboard", "disk_state"):
        assert levels[name] == PASS, out.stdout
    assert levels["wireguard"] == PASS  # no such interface on a single node
    for name in ("firewall", "ssh", "clock", "certificates"):
        assert name in levels
    assert levels["backups"] == WARN, out.stdout
    assert "p_old (50 h)" in out.stdout
    # The PostgreSQL data dir comes from the server itself.
    assert "disk_postgres" in levels and str(pg.data_dir) in out.stdout

    # The dashboard's port bound to every address: a failure, and exit 1; allowed explicitly: a warning.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", dashboard_port))
        sock.listen()
        out = doctor()
        assert re.search(
            rf"^fail +listen_dashboard +port {dashboard_port} is bound to a public address", out.stdout, re.M
        )
        assert out.returncode == 1
        out = doctor({"ATLASHUB_DOCTOR_ALLOW_PUBLIC": "dashboard"})
        assert re.search(r"^warn +listen_dashboard ", out.stdout, re.M), out.stdout
