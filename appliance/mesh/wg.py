"""WireGuard through its own tools: ``ip`` for the interface, ``wg`` for keys and peers.

Works with kernel WireGuard and with ``wireguard-go`` (used when ``ip link add … type
wireguard`` fails). An interface that already exists is reused as it is, so an operator
(or a test) may create it beforehand. With ``manage=False`` every change is skipped and
only reads are attempted: the operator runs WireGuard, AtlasHub only talks over it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
PERSISTENT_KEEPALIVE = 25


class WireGuardError(RuntimeError):
    pass


@dataclass(frozen=True)
class PeerSpec:
    public_key: str
    allowed_ip: str  # one address, without prefix length: peers get /32
    endpoint: str | None = None
    keepalive: bool = False


async def run(
    *argv: str, check: bool = True, input: bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run one command without a shell; return (exit code, stdout). Stderr goes into the error."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise WireGuardError(f"{argv[0]} is not installed (apt-get install wireguard-tools)") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), COMMAND_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise WireGuardError(f"{' '.join(argv[:3])} timed out") from None
    code = proc.returncode or 0
    if check and code != 0:
        raise WireGuardError(f"{' '.join(argv[:4])} failed ({code}): {err.decode(errors='replace').strip()}")
    return code, out.decode(errors="replace")


def render_conf(private_key: str, listen_port: int | None, peers: Iterable[PeerSpec]) -> str:
    """A ``wg syncconf`` file: the interface keys and exactly these peers."""
    lines = ["[Interface]", f"PrivateKey = {private_key}"]
    if listen_port:
        lines.append(f"ListenPort = {listen_port}")
    for peer in peers:
        lines += ["", "[Peer]", f"PublicKey = {peer.public_key}", f"AllowedIPs = {peer.allowed_ip}/32"]
        if peer.endpoint:
            lines.append(f"Endpoint = {peer.endpoint}")
        if peer.keepalive:
            lines.append(f"PersistentKeepalive = {PERSISTENT_KEEPALIVE}")
    return "\n".join(lines) + "\n"


class WireGuard:
    def __init__(self, interface: str, listen_port: int, private_key_path: Path, *, manage: bool = True) -> None:
        self.interface = interface
        self.listen_port = listen_port
        self.private_key_path = private_key_path
        self.manage = manage

    async def exists(self) -> bool:
        code, _ = await run("ip", "link", "show", "dev", self.interface, check=False)
        return code == 0

    async def up(self, address_cidr: str, peers: Iterable[PeerSpec]) -> None:
        """Create (or reuse) the interface, set key, port, address and exactly ``peers``. Idempotent."""
        if not self.manage:
            return
        if not await self.exists():
            await self._create()
        private_key = self.private_key_path.read_text().strip()
        await self._syncconf(render_conf(private_key, self.listen_port, peers))
        await run("ip", "address", "replace", address_cidr, "dev", self.interface)
        await run("ip", "link", "set", "dev", self.interface, "up")
        log.info("WireGuard %s is up at %s", self.interface, address_cidr)

    async def _create(self) -> None:
        code, _ = await run("ip", "link", "add", "dev", self.interface, "type", "wireguard", check=False)
        if code == 0:
            return
        userspace = shutil.which("wireguard-go")
        if userspace is None:
            raise WireGuardError("no kernel WireGuard and no wireguard-go (apt-get install wireguard-go)")
        log.info("kernel WireGuard unavailable; starting wireguard-go for %s", self.interface)
        # wireguard-go refuses to start where the kernel could have WireGuard unless told otherwise;
        # here the kernel just said it cannot. It daemonises and outlives us, like a kernel interface.
        await run(userspace, self.interface, env={**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"})
        for _ in range(50):
            if await self.exists():
                return
            await asyncio.sleep(0.1)
        raise WireGuardError(f"wireguard-go did not create {self.interface}")

    async def _syncconf(self, conf: str) -> None:
        fd, name = tempfile.mkstemp(prefix="atlashub-wg-", suffix=".conf")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(conf)
            await run("wg", "syncconf", self.interface, name)
        finally:
            os.unlink(name)

    async def set_peer(self, peer: PeerSpec) -> None:
        if not self.manage:
            return
        argv = ["wg", "set", self.interface, "peer", peer.public_key, "allowed-ips", f"{peer.allowed_ip}/32"]
        if peer.endpoint:
            argv += ["endpoint", peer.endpoint]
        if peer.keepalive:
            argv += ["persistent-keepalive", str(PERSISTENT_KEEPALIVE)]
        await run(*argv)

    async def remove_peer(self, public_key: str) -> None:
        if not self.manage:
            return
        await run("wg", "set", self.interface, "peer", public_key, "remove")

    async def handshake_ages(self, now: float | None = None) -> dict[str, float | None]:
        """Seconds since the last handshake per peer public key (None: never). Empty when unreadable."""
        try:
            code, out = await run("wg", "show", self.interface, "latest-handshakes", check=False)
        except WireGuardError:
            return {}
        if code != 0:
            return {}
        now = time.time() if now is None else now
        ages: dict[str, float | None] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                stamp = int(parts[1])
                ages[parts[0]] = round(max(0.0, now - stamp), 1) if stamp else None
        return ages
