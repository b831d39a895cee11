"""Configuration: TOML plus ``ATLASHUB_<SECTION>_<KEY>`` environment overrides, into frozen dataclasses.

Every problem is collected and reported at once, each naming its key; unknown keys are
errors. Only ``main()`` exits: everything here raises :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/atlashub/atlashub.toml")
KNOWN_ROLES = ("gateway", "dashboard", "scheduler", "backups", "agent")
# Environment variables that start with ATLASHUB_ but are not configuration keys.
NON_CONFIG_ENV = frozenset({"ATLASHUB_DEV_ADMIN_TOKEN", "ATLASHUB_CONFIG"})


@dataclass(frozen=True)
class NodeConfig:
    name: str = "atlashub"
    state_dir: str = "/var/lib/atlashub"
    roles: tuple[str, ...] = KNOWN_ROLES


@dataclass(frozen=True)
class GatewayConfig:
    listen: str = "0.0.0.0:8080"
    public_url: str = ""
    exposed_schema: str = "public"
    default_limit: int = 100
    max_limit: int = 1000
    max_body_bytes: int = 1024 * 1024
    statement_timeout_ms: int = 5000
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200


@dataclass(frozen=True)
class DashboardConfig:
    listen: str = "127.0.0.1:8081"
    dev_admin_token_enabled: bool = False
    static_dir: str = ""
    sql_timeout_ms: int = 5000
    sql_allow_extensions: bool = False


@dataclass(frozen=True)
class PostgresConfig:
    host: str = "/var/run/postgresql"
    port: int = 5432
    user: str = "postgres"
    password_file: str = ""
    database: str = "postgres"
    # Host that project roles use to connect; defaults to `host`.
    project_host: str = ""
    # Where the daemon's own project pools connect; defaults to `project_host`. A unix socket
    # directory is faster than loopback TCP when pg_hba allows password logins over the socket.
    pool_host: str = ""
    pool_min: int = 0
    pool_max: int = 5
    max_pools: int = 50
    pool_idle_seconds: float = 300.0


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "fs"
    fs_root: str = ""
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key_file: str = ""
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    url_expires_seconds: int = 3600
    max_upload_bytes: int = 1 << 30


@dataclass(frozen=True)
class AdminConfig:
    # Cloudflare Access: team domain (e.g. "myteam.cloudflareaccess.com") and the application audience tag.
    access_team_domain: str = ""
    access_audience: str = ""
    access_jwks_url: str = ""
    session_hours: float = 12.0
    login_max_attempts: int = 5
    lockout_seconds: int = 300
    secure_cookies: bool = False


@dataclass(frozen=True)
class AuthConfig:
    access_token_seconds: int = 900
    refresh_token_days: int = 30
    min_password_length: int = 10
    bcrypt_rounds: int = 12
    login_per_minute: int = 10
    signup_per_hour: int = 30


@dataclass(frozen=True)
class KeysConfig:
    rotation_grace_seconds: int = 86400
    last_used_flush_seconds: float = 30.0


@dataclass(frozen=True)
class SchedulerConfig:
    http_allowlist: tuple[str, ...] = ()
    discord_webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password_file: str = ""
    smtp_from: str = ""
    smtp_to: tuple[str, ...] = ()
    run_history_days: int = 30


@dataclass(frozen=True)
class BackupsConfig:
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    verify: bool = True
    alert_unverified_hours: int = 36
    undo_window_hours: int = 24
    max_import_bytes: int = 100 * 1024 * 1024


@dataclass(frozen=True)
class MeshConfig:
    # "master" or "worker"; a single node is its own master.
    role: str = "master"
    master_url: str = ""
    agent_port: int = 8082
    wg_interface: str = "wg-atlas"
    wg_listen_port: int = 51820
    wg_network: str = "10.100.0.0/24"
    endpoint: str = ""
    heartbeat_seconds: float = 30.0
    # host:port of the agent listener; empty = the node's WireGuard address and agent_port.
    agent_listen: str = ""
    # False when the operator manages the WireGuard interface and peers.
    wg_manage: bool = True
    # The apt repository new cloud workers install AtlasHub from; empty = the official one.
    worker_apt_url: str = ""


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True)
class Config:
    node: NodeConfig = field(default_factory=NodeConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    backups: BackupsConfig = field(default_factory=BackupsConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.node.state_dir)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """Return a copy with some keys of some sections replaced (used by `atlashub dev` and tests)."""
        changes = {}
        for name, values in sections.items():
            changes[name] = dataclasses.replace(getattr(self, name), **values)
        new = dataclasses.replace(self, **changes)
        problems = _validate(new)
        if problems:
            raise ConfigError(problems)
        return new


SECTIONS: dict[str, type] = typing.get_type_hints(Config)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None, *, use_file: bool = True) -> Config:
    """Load the config file (optional when ``path`` is None and the default is absent) plus env overrides.

    ``use_file=False`` reads only the environment (``atlashub dev`` runs on its embedded defaults).
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    explicit = path is not None or "ATLASHUB_CONFIG" in env
    path = path or Path(env.get("ATLASHUB_CONFIG", str(DEFAULT_CONFIG_PATH)))
    if not use_file:
        pass
    elif path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    elif explicit:
        raise ConfigError([f"{path}: config file not found"])

    sections: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            problems.append(f"[{name}]: unknown section")
        elif not isinstance(value, dict):
            problems.append(f"[{name}]: must be a table")
        else:
            sections[name] = dict(value)
    _apply_env(env, sections, problems)

    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        built[name] = _build_section(name, cls, sections.get(name, {}), problems)
    if problems:
        raise ConfigError(problems)
    config = Config(**built)
    problems = _validate(config)
    if problems:
        raise ConfigError(problems)
    return config


def _apply_env(env: Mapping[str, str], sections: dict[str, dict[str, Any]], problems: list[str]) -> None:
    for var, value in env.items():
        if not var.startswith("ATLASHUB_") or var in NON_CONFIG_ENV:
            continue
        rest = var[len("ATLASHUB_") :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1 :]
        known = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key not in known:
            problems.append(f"{var}: unknown key {section}.{key}")
            continue
        sections.setdefault(section, {})[key] = _EnvValue(value)


@dataclass(frozen=True)
class _EnvValue:
    """A value from the environment: text that still has to be parsed for its field's type."""

    text: str


def _build_section(name: str, cls: type, values: dict[str, Any], problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            problems.append(f"{name}.{key}: unknown key")
            continue
        try:
            kwargs[key] = _coerce(hints[key], value)
        except ValueError as exc:
            problems.append(f"{name}.{key}: {exc}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - all keys are checked above
        problems.append(f"[{name}]: {exc}")
        return cls()


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    from_env = isinstance(value, _EnvValue)
    if origin is tuple:
        if from_env:
            items = [v.strip() for v in value.text.split(",") if v.strip()]
        elif isinstance(value, list):
            items = value
        else:
            raise ValueError("must be a list")
        if not all(isinstance(i, str) for i in items):
            raise ValueError("must be a list of strings")
        return tuple(items)
    if origin in (typing.Union, types.UnionType):
        raise ValueError("unsupported type")  # pragma: no cover - no such fields yet
    if hint is bool:
        if from_env:
            low = value.text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("must be true or false")
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if hint is int:
        if from_env:
            try:
                return int(value.text)
            except ValueError:
                raise ValueError("must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        return value
    if hint is float:
        if from_env:
            try:
                return float(value.text)
            except ValueError:
                raise ValueError("must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        return float(value)
    if hint is str:
        if from_env:
            return value.text
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    raise ValueError("unsupported type")  # pragma: no cover


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port). Port 0 means any free port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be host:port")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ValueError("port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError("port must be between 0 and 65535")
    return host, number


def _validate(config: Config) -> list[str]:
    problems: list[str] = []
    for role in config.node.roles:
        if role not in KNOWN_ROLES:
            problems.append(f"node.roles: unknown role {role!r} (known: {', '.join(KNOWN_ROLES)})")
    if not config.node.roles:
        problems.append("node.roles: at least one role is needed")
    if not config.node.state_dir:
        problems.append("node.state_dir: must not be empty")
    for key in ("gateway", "dashboard"):
        try:
            parse_listen(getattr(config, key).listen)
        except ValueError as exc:
            problems.append(f"{key}.listen: {exc}")
    if config.gateway.default_limit < 1:
        problems.append("gateway.default_limit: must be at least 1")
    if config.gateway.max_limit < config.gateway.default_limit:
        problems.append("gateway.max_limit: must be at least gateway.default_limit")
    if config.gateway.max_body_bytes < 1024:
        problems.append("gateway.max_body_bytes: must be at least 1024")
    if config.gateway.statement_timeout_ms < 1:
        problems.append("gateway.statement_timeout_ms: must be positive")
    if config.gateway.rate_limit_per_second <= 0 or config.gateway.rate_limit_burst < 1:
        problems.append("gateway.rate_limit_per_second/rate_limit_burst: must be positive")
    if not 1 <= config.postgres.port <= 65535:
        problems.append("postgres.port: must be between 1 and 65535")
    if config.postgres.pool_max < 1 or config.postgres.pool_min > config.postgres.pool_max:
        problems.append("postgres.pool_max: must be at least 1 and at least postgres.pool_min")
    if config.postgres.max_pools < 1:
        problems.append("postgres.max_pools: must be at least 1")
    if config.storage.backend not in ("fs", "s3"):
        problems.append("storage.backend: must be 'fs' or 's3'")
    if config.storage.backend == "s3" and not config.storage.s3_endpoint:
        problems.append("storage.s3_endpoint: required when storage.backend is 's3'")
    problems.extend(_allowlist_problems(config.scheduler))
    if config.dashboard.sql_timeout_ms < 100:
        problems.append("dashboard.sql_timeout_ms: must be at least 100")
    if config.mesh.agent_listen:
        try:
            parse_listen(config.mesh.agent_listen)
        except ValueError as exc:
            problems.append(f"mesh.agent_listen: {exc}")
    if config.mesh.role not in ("master", "worker"):
        problems.append("mesh.role: must be 'master' or 'worker'")
    if config.mesh.role == "worker" and not config.mesh.master_url:
        problems.append("mesh.master_url: required when mesh.role is 'worker'")
    if config.mesh.worker_apt_url and not _is_http_url(config.mesh.worker_apt_url):
        problems.append("mesh.worker_apt_url: must be an http(s):// URL of an apt repository")
    if config.auth.bcrypt_rounds < 12:
        problems.append("auth.bcrypt_rounds: must be at least 12")
    if config.auth.min_password_length < 8:
        problems.append("auth.min_password_length: must be at least 8")
    if config.admin.access_team_domain and not config.admin.access_audience:
        problems.append("admin.access_audience: required when admin.access_team_domain is set")
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("logging.level: must be DEBUG, INFO, WARNING or ERROR")
    if config.logging.format not in ("json", "text"):
        problems.append("logging.format: must be 'json' or 'text'")
    return problems


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)


def _allowlist_problems(scheduler: SchedulerConfig) -> list[str]:
    from appliance.scheduler.safehttp import Allowlist, AllowlistError

    try:
        Allowlist.parse(scheduler.http_allowlist)
    except AllowlistError as exc:
        return [f"scheduler.http_allowlist: {problem}" for problem in exc.problems]
    return []
