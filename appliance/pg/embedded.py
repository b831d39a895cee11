"""A private PostgreSQL cluster started from the system's binaries (the embedded default and the test bed).

It listens on 127.0.0.1 only, with scram-sha-256 password auth, as production does.
When we run as root, PostgreSQL runs as the unprivileged ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import StartupError

log = logging.getLogger(__name__)

APT_HINT = "install it with: sudo apt-get install -y postgresql postgresql-contrib"


def find_pg_bin() -> Path:
    """The newest installed server's bin directory (Debian layout first, then pg_config)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            return bindir
    raise StartupError(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found; {APT_HINT}")


# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./+-]+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ensure_traversable(path: Path) -> None:
    """Give 'others' the search bit on ancestors we own, so the postgres user can reach the data dir."""
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & 0o001 and parent.stat().st_uid == os.getuid():
            log.info("making %s traversable for the postgres user (o+x)", parent)
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """Lifecycle: ``ensure_initialized()`` once, then ``start()``; ``stop()`` is idempotent."""

    data_dir: Path
    password_file: Path
    port: int = 0
    run_as: str | None = None

    def __post_init__(self) -> None:
        self.bin = find_pg_bin()
        if self.run_as is None and os.geteuid() == 0:
            self.run_as = "postgres"
        if self.run_as:
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                raise StartupError(f"user {self.run_as!r} does not exist; {APT_HINT}") from None
        self.log_file = self.data_dir / "postgres.log"

    # -- helpers ---------------------------------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as and os.geteuid() == 0:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _chown(self, path: Path) -> None:
        if self.run_as and os.geteuid() == 0:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False)

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def user(self) -> str:
        return "postgres"

    @property
    def socket_dir(self) -> Path | None:
        """The directory of the server's unix socket, or None when its path would be too long.

        Local clients (the daemon itself) connect there: a unix socket costs both sides less CPU
        per query than loopback TCP. Applications use TCP on 127.0.0.1.
        """
        directory = self.data_dir.parent / (self.data_dir.name + "-socket")
        socket_path = directory / f".s.PGSQL.{self.port or 65535}"
        if len(str(socket_path).encode()) > _MAX_SOCKET_PATH or not _PLAIN_PATH.fullmatch(str(directory)):
            return None  # too long for sun_path, or not safe inside pg_ctl's quoted options
        return directory

    @property
    def socket_ready(self) -> bool:
        """True when the running server listens on :attr:`socket_dir`."""
        directory = self.socket_dir
        return directory is not None and (directory / f".s.PGSQL.{self.port}").exists()

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    # -- lifecycle -------------------------------------------------------------------------

    def ensure_initialized(self) -> None:
        """Idempotent: initdb with a random superuser password the first time only."""
        if self.initialized:
            if not self.password_file.exists():
                raise StartupError(
                    f"{self.data_dir} holds a PostgreSQL cluster but its password file {self.password_file} is missing"
                )
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        _ensure_traversable(self.data_dir.parent)
        self._chown(self.data_dir)
        password = secrets.token_urlsafe(32)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        # initdb reads the password from a file the postgres user can read; it lives only for this call.
        pwfile = self.data_dir.parent / f".initdb-pw-{secrets.token_hex(4)}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        self._chown(pwfile)
        try:
            result = self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StartupError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        log.info("initialized a PostgreSQL cluster in %s", self.data_dir)

    def running_port(self) -> int | None:
        """The port of a server already running on this data dir (left by a killed parent), if any."""
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.exists():
            return None
        status = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status")
        if status.returncode != 0:
            return None
        lines = pidfile.read_text().splitlines()
        try:
            return int(lines[3])
        except (IndexError, ValueError):
            return None

    def start(self) -> int:
        existing = self.running_port()
        if existing:
            log.info("PostgreSQL is already running on port %d; using it", existing)
            self.port = existing
            return existing
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        sockets = "''"
        if (directory := self.socket_dir) is not None:
            directory.mkdir(mode=0o700, exist_ok=True)
            self._chown(directory)
            sockets = f"'{directory}'"
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets} "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        result = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-5:])
            raise StartupError(f"PostgreSQL did not start: {result.stderr.strip()} {tail}".strip())
        log.info("PostgreSQL started on 127.0.0.1:%d", self.port)
        return self.port

    def stop(self, timeout: float = 30) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        result = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
        )
        if result.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
            log.warning("pg_ctl stop failed (%s); sending immediate shutdown", result.stderr.strip())
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")
        deadline = time.monotonic() + 10
        while (self.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("PostgreSQL stopped")
