"""The checks of `atlashub doctor` as pure functions: file contents and command outputs in, results out.

Nothing here reads the machine; :mod:`appliance.doctor` gathers the inputs, so every check is
tested table-driven without root.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatch
from pathlib import PurePosixPath

PASS, WARN, FAIL = "pass", "warn", "fail"
TCP_LISTEN = "0A"
HANDSHAKE_MAX_AGE_S = 180
DISK_WARN_PCT, DISK_FAIL_PCT = 15.0, 5.0
CERT_WARN_DAYS = 14


@dataclass(frozen=True)
class Result:
    level: str
    name: str
    message: str


# --- listening sockets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


def _hex_ipv4(text: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(text)[::-1]))


def _hex_ipv6(text: str) -> str:
    # Four 32-bit words, each in the kernel's (little-endian) byte order.
    raw = b"".join(bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, 32, 8))
    address = ipaddress.IPv6Address(raw)
    return str(address.ipv4_mapped or address)


def parse_proc_net_tcp(text: str, *, ipv6: bool) -> list[Listener]:
    """Listening sockets of /proc/net/tcp or /proc/net/tcp6."""
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != TCP_LISTEN:
            continue
        address, _, port = fields[1].partition(":")
        host = _hex_ipv6(address) if ipv6 else _hex_ipv4(address)
        listeners.append(Listener(host, int(port, 16)))
    return listeners


def parse_ss(text: str) -> list[Listener]:
    """Output of ``ss -Htln``: State Recv-Q Send-Q Local:Port Peer:Port."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] != "LISTEN":
            continue
        host, _, port = fields[3].rpartition(":")
        host = host.strip("[]").split("%", 1)[0]  # "[::]", "127.0.0.53%lo"
        host = {"*": "0.0.0.0"}.get(host, host)
        try:
            ipaddress.ip_address(host)
            listeners.append(Listener(host, int(port)))
        except ValueError:
            continue
    return listeners


def is_public(host: str) -> bool:
    """A wildcard bind reaches every interface, public ones included; otherwise only global addresses."""
    address = ipaddress.ip_address(host)
    return address.is_unspecified or address.is_global


def check_listeners(
    listeners: Iterable[Listener], services: Mapping[str, int], allow_public: Iterable[str] = ()
) -> list[Result]:
    """``services``: name → port (postgres, dashboard, agent). A public bind fails unless allowed."""
    allowed = set(allow_public)
    found = sorted(set(listeners), key=lambda item: (item.port, item.host))
    results = []
    for name, port in services.items():
        hosts = [item.host for item in found if item.port == port]
        public = [host for host in hosts if is_public(host)]
        label = f"listen_{name}"
        if not hosts:
            results.append(Result(PASS, label, f"nothing listens on port {port}"))
        elif public and name not in allowed:
            results.append(
                Result(
                    FAIL,
                    label,
                    f"port {port} is bound to a public address ({', '.join(public)}); bind it to 127.0.0.1 "
                    f"or the WireGuard address, or allow it with ATLASHUB_DOCTOR_ALLOW_PUBLIC={name}",
                )
            )
        elif public:
            results.append(Result(WARN, label, f"port {port} on {', '.join(public)} (allowed explicitly)"))
        else:
            results.append(Result(PASS, label, f"port {port} on {', '.join(hosts)} only"))
    return results


# --- firewall (UFW) ----------------------------------------------------------------------------

_UFW_RULE = re.compile(r"^(?P<to>.+?)\s{2,}(?P<action>ALLOW|DENY|REJECT|LIMIT)(?: (?P<dir>IN|OUT|FWD))?\s+(?P<src>.+)$")
# Application profiles that open only allowed ports.
_UFW_APPS = {"OpenSSH": {"22/tcp"}, "WWW": {"80/tcp"}, "WWW Secure": {"443/tcp"}, "WWW Full": {"80/tcp", "443/tcp"}}


def allowed_public_ports(wg_port: int) -> set[str]:
    return {"22/tcp", "80/tcp", "443/tcp", f"{wg_port}/udp"}


def check_ufw(status: str | None, wg_port: int) -> Result:
    """``status``: output of ``ufw status verbose``; None when ufw is not installed."""
    if status is None:
        return Result(
            WARN, "firewall", "ufw is not installed; make sure another firewall allows only 22, 80, 443 and WireGuard"
        )
    if "Status: active" not in status:
        if "Status: inactive" in status:
            return Result(FAIL, "firewall", "ufw is inactive: run ufw enable (see INSTALL.md, Firewall)")
        return Result(WARN, "firewall", f"cannot read the ufw status: {status.strip()[:200]}")
    problems = []
    default = re.search(r"^Default: (\S+) \(incoming\)", status, re.M)
    if default and default.group(1) not in ("deny", "reject"):
        problems.append(f"incoming default is {default.group(1)}")
    allowed = allowed_public_ports(wg_port)
    for line in status.splitlines():
        match = _UFW_RULE.match(line.strip())
        if not match or match["action"] not in ("ALLOW", "LIMIT") or match["dir"] in ("OUT", "FWD"):
            continue
        to, source = match["to"].replace(" (v6)", "").strip(), match["src"].replace(" (v6)", "").strip()
        if " on " in to or source != "Anywhere":
            continue  # limited to an interface (WireGuard) or to a source network: not public
        ports = _UFW_APPS.get(to) or _rule_ports(to)
        extra = sorted(ports - allowed)
        if extra:
            problems.append(f"{to} is open to anywhere")
    if problems:
        return Result(FAIL, "firewall", "ufw: " + "; ".join(dict.fromkeys(problems)))
    return Result(PASS, "firewall", f"ufw active; public: 22/tcp, 80/tcp, 443/tcp, {wg_port}/udp at most")


def _rule_ports(to: str) -> set[str]:
    """``22/tcp`` → {22/tcp}; ``22`` → tcp and udp; ``Anywhere`` → everything; an unknown app → itself."""
    spec = to.split()[0] if to.split() else to
    port, _, proto = spec.partition("/")
    if port == "Anywhere":
        return {"any"}
    if not re.fullmatch(r"[\d:,]+", port):
        return {to}
    if not port.isdigit():
        return {spec}  # ranges and lists are never on the short list
    return {f"{port}/{proto}"} if proto else {f"{port}/tcp", f"{port}/udp"}


# --- SSH ---------------------------------------------------------------------------------------

SSHD_DEFAULTS = {"permitrootlogin": "prohibit-password", "passwordauthentication": "yes"}


def parse_sshd_t(text: str) -> dict[str, str]:
    """``sshd -T``: one lower-case ``key value`` per line."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            settings.setdefault(key.lower(), value.strip())
    return settings


def parse_sshd_config(files: Mapping[str, str], main: str = "/etc/ssh/sshd_config") -> dict[str, str]:
    """Effective global settings of sshd_config and its Includes: the first value of a key wins,
    as in sshd; ``Match`` blocks are ignored. ``files``: path → contents of every file there is."""
    settings: dict[str, str] = {}

    def read(path: str, depth: int) -> None:
        if depth > 8 or path not in files:
            return
        for raw in files[path].splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            key, _, value = line.replace("=", " ", 1).partition(" ")
            key, value = key.lower(), value.strip().strip('"')
            if key == "match":
                return
            if key == "include":
                for pattern in value.split():
                    if not pattern.startswith("/"):
                        pattern = str(PurePosixPath("/etc/ssh") / pattern)
                    for candidate in sorted(p for p in files if fnmatch(p, pattern)):
                        read(candidate, depth + 1)
                continue
            settings.setdefault(key, value.lower() if key in SSHD_DEFAULTS else value)

    read(main, 0)
    return settings


def check_ssh(settings: Mapping[str, str] | None) -> Result:
    """``settings``: effective sshd settings; None when sshd is not installed."""
    if settings is None:
        return Result(WARN, "ssh", "sshd is not installed: nothing to check")
    effective = {**SSHD_DEFAULTS, **{k: v.lower() for k, v in settings.items() if k in SSHD_DEFAULTS}}
    problems = []
    if effective["permitrootlogin"] != "no":
        problems.append(f"PermitRootLogin is {effective['permitrootlogin']} (want no)")
    if effective["passwordauthentication"] != "no":
        problems.append(f"PasswordAuthentication is {effective['passwordauthentication']} (want no)")
    if problems:
        return Result(FAIL, "ssh", "; ".join(problems))
    return Result(PASS, "ssh", "key-only logins, no root login")


# --- WireGuard ---------------------------------------------------------------------------------


def check_wireguard(interface: str, dump: str | None, now: float, *, expect_peers: bool) -> Result:
    """``dump``: output of ``wg show <interface> dump``; None when the interface does not exist."""
    name = "wireguard"
    if dump is None:
        if expect_peers:
            return Result(WARN, name, f"interface {interface} does not exist: this worker cannot reach its master")
        return Result(PASS, name, f"interface {interface} does not exist (single node)")
    lines = [line.split("\t") for line in dump.strip().splitlines()]
    peers = [fields for fields in lines[1:] if len(fields) >= 8]
    if not peers:
        level = WARN if expect_peers else PASS
        return Result(level, name, f"{interface}: no peers")
    stale = []
    for fields in peers:
        key, handshake = fields[0], int(fields[4] or 0)
        if handshake == 0:
            stale.append(f"{key[:8]}… never")
        elif now - handshake > HANDSHAKE_MAX_AGE_S:
            stale.append(f"{key[:8]}… {int(now - handshake)} s ago")
    if stale:
        return Result(WARN, name, f"{interface}: stale handshakes: {', '.join(stale)}")
    return Result(PASS, name, f"{interface}: {len(peers)} peer(s), every handshake within {HANDSHAKE_MAX_AGE_S} s")


# --- disk space --------------------------------------------------------------------------------


def check_disk(label: str, path: str, total_bytes: int, free_bytes: int) -> Result:
    name = f"disk_{label}"
    if total_bytes <= 0:
        return Result(WARN, name, f"{path}: size unknown")
    pct = 100.0 * free_bytes / total_bytes
    message = f"{path}: {pct:.1f} % free ({free_bytes // (1 << 20)} MiB)"
    if pct < DISK_FAIL_PCT:
        return Result(FAIL, name, message)
    if pct < DISK_WARN_PCT:
        return Result(WARN, name, message)
    return Result(PASS, name, message)


# --- backups -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectBackup:
    project_id: str
    created_at: datetime
    last_verified: datetime | None


def check_backups(projects: Sequence[ProjectBackup], now: datetime, hours: int) -> Result:
    """No verified backup within ``hours`` → warn; none within twice that, or none ever → fail."""
    if not projects:
        return Result(PASS, "backups", "no projects yet")
    limit = timedelta(hours=hours)
    warn, fail = [], []
    for project in projects:
        if now - project.created_at < limit:
            continue
        if project.last_verified is None:
            fail.append(f"{project.project_id} (never verified)")
        elif now - project.last_verified > 2 * limit:
            fail.append(f"{project.project_id} ({_hours(now - project.last_verified)} h)")
        elif now - project.last_verified > limit:
            warn.append(f"{project.project_id} ({_hours(now - project.last_verified)} h)")
    if fail:
        return Result(FAIL, "backups", f"no verified backup for over {2 * hours} h: {', '.join(fail + warn)}")
    if warn:
        return Result(WARN, "backups", f"no verified backup for over {hours} h: {', '.join(warn)}")
    return Result(PASS, "backups", f"{len(projects)} project(s), each verified within {hours} h")


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


# --- clock -------------------------------------------------------------------------------------


def check_clock(timedatectl: str | None) -> Result:
    """``timedatectl``: output of ``timedatectl show -p NTPSynchronized``; None when it is not there."""
    if timedatectl is None:
        return Result(WARN, "clock", "synchronisation unknown (timedatectl is missing or not answering)")
    value = timedatectl.strip().partition("=")[2].strip()
    if value == "yes":
        return Result(PASS, "clock", "synchronised (NTP)")
    if value == "no":
        return Result(WARN, "clock", "not synchronised: enable systemd-timesyncd or chrony")
    return Result(WARN, "clock", f"synchronisation unknown ({timedatectl.strip()[:80]!r})")


# --- certificates ------------------------------------------------------------------------------


def check_certificates(certs: Mapping[str, datetime | None], now: datetime) -> Result:
    """``certs``: path → notAfter (None when the file could not be read as a certificate)."""
    if not certs:
        return Result(PASS, "certificates", "none configured or found")
    expired, soon, unreadable = [], [], []
    for path, not_after in sorted(certs.items()):
        if not_after is None:
            unreadable.append(path)
        elif not_after <= now:
            expired.append(path)
        elif not_after - now < timedelta(days=CERT_WARN_DAYS):
            soon.append(f"{path} ({(not_after - now).days} d)")
    if expired:
        return Result(FAIL, "certificates", f"expired: {', '.join(expired)}")
    if soon or unreadable:
        parts = ([f"expiring within {CERT_WARN_DAYS} days: {', '.join(soon)}"] if soon else []) + (
            [f"unreadable: {', '.join(unreadable)}"] if unreadable else []
        )
        return Result(WARN, "certificates", "; ".join(parts))
    return Result(PASS, "certificates", f"{len(certs)} valid for {CERT_WARN_DAYS}+ days")
