"""The runtime settings, their types and bounds, and the checks on a changed set. Pure: no I/O.

Each key is ``<section>.<field>`` of the configuration key whose value it overrides; the file
value is the default. A value sent in a PATCH is either a new value, ``None`` (back to the file
value), or for a secret the masked marker ``{"set": true}`` (keep) / ``{"set": false}`` (none).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from yarl import URL

from appliance.config import Config
from appliance.errors import BadRequest

Kind = Literal["int", "float", "bool", "string", "string_list", "secret"]
MAX_TEXT = 500
MAX_RECIPIENTS = 20
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


class SettingError(BadRequest):
    """A value the node refuses; ``details.key`` names the setting."""

    def __init__(self, key: str, message: str, *, code: str = "invalid_setting") -> None:
        super().__init__(f"{key}: {message}", code=code, details={"key": key})


@dataclass(frozen=True)
class Setting:
    key: str
    kind: Kind
    group: str
    label: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    # A further check of a well-typed value; returns the problem, or None.
    check: Callable[[Any, Config], str | None] | None = None
    # Whether a secret is set by the file when nothing overrides it (default: its value is non-empty).
    file_set: Callable[[Config], bool] | None = None
    # The value from the file; None for a secret read from a file by its user (smtp password).
    from_file: Callable[[Config], Any] | None = None

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def file_value(self, config: Config) -> Any:
        if self.from_file is not None:
            return self.from_file(config)
        section, _, name = self.key.partition(".")
        value = getattr(getattr(config, section), name)
        return list(value) if isinstance(value, tuple) else value

    def is_set_in_file(self, config: Config) -> bool:
        if self.file_set is not None:
            return self.file_set(config)
        return bool(self.file_value(config))

    def meta(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"type": self.kind, "group": self.group, "label": self.label}
        shown["description"] = self.description
        if self.minimum is not None:
            shown["min"] = self.minimum
        if self.maximum is not None:
            shown["max"] = self.maximum
        if self.unit:
            shown["unit"] = self.unit
        return shown


def _webhook_problem(url: Any, config: Config) -> str | None:
    if url == "":
        return None
    from appliance.scheduler.safehttp import Allowlist, AllowlistError, TargetRefused

    try:
        Allowlist.parse(config.scheduler.http_allowlist).check_url(URL(url))
    except (ValueError, TypeError, AllowlistError, TargetRefused) as exc:
        # The URL holds its token: the problem names the setting, never the value.
        return f"the webhook URL is not usable: {exc}"
    return None


def _host_problem(host: Any, config: Config) -> str | None:
    return None if host == "" or _HOSTNAME.match(host) else "must be a host name or an IP address"


def _email_problem(address: Any, config: Config) -> str | None:
    return None if address == "" or _EMAIL.match(address) else "must be an e-mail address"


def _recipients_problem(addresses: Any, config: Config) -> str | None:
    if len(addresses) > MAX_RECIPIENTS:
        return f"at most {MAX_RECIPIENTS} recipients"
    bad = [a for a in addresses if not _EMAIL.match(a)]
    return f"not an e-mail address: {bad[0]!r}" if bad else None


API, EDITOR, BACKUPS, NOTIFY, SESSIONS = "Public API", "SQL editor", "Backups", "Notifications", "Admin sessions"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "gateway.rate_limit_per_second", "float", API, "Rate limit",
        "Requests per second each project may make to the public API (refilled continuously).",
        minimum=0.1, maximum=100_000, unit="requests/s",
    ),
    Setting(
        "gateway.rate_limit_burst", "int", API, "Rate limit burst",
        "Requests a project may make at once before the rate limit applies.",
        minimum=1, maximum=1_000_000, unit="requests",
    ),
    Setting(
        "gateway.default_limit", "int", API, "Default page size",
        "Rows /v1/db returns when a request gives no limit.", minimum=1, maximum=100_000, unit="rows",
    ),
    Setting(
        "gateway.max_limit", "int", API, "Maximum page size",
        "The largest limit /v1/db accepts, and the most rows one insert may carry.",
        minimum=1, maximum=100_000, unit="rows",
    ),
    Setting(
        "dashboard.sql_timeout_ms", "int", EDITOR, "Statement timeout",
        "How long one SQL editor statement (or table browser page) may run.",
        minimum=100, maximum=3_600_000, unit="ms",
    ),
    Setting(
        "backups.keep_daily", "int", BACKUPS, "Keep daily",
        "Days whose newest backup retention keeps.", minimum=0, maximum=3650, unit="days",
    ),
    Setting(
        "backups.keep_weekly", "int", BACKUPS, "Keep weekly",
        "Weeks whose newest backup retention keeps.", minimum=0, maximum=520, unit="weeks",
    ),
    Setting(
        "backups.keep_monthly", "int", BACKUPS, "Keep monthly",
        "Months whose newest backup retention keeps.", minimum=0, maximum=240, unit="months",
    ),
    Setting(
        "backups.alert_unverified_hours", "int", BACKUPS, "Unverified backup alert",
        "Alert when a project has had no verified backup for this long.", minimum=1, maximum=8760, unit="hours",
    ),
    Setting(
        "scheduler.discord_webhook_url", "secret", NOTIFY, "Discord webhook URL",
        "Alerts and failed jobs are posted here. Its host must be in scheduler.http_allowlist.",
        check=_webhook_problem,
    ),
    Setting(
        "scheduler.smtp_host", "string", NOTIFY, "SMTP host",
        "Mail server for alert e-mails; empty sends none.", check=_host_problem,
    ),
    Setting(
        "scheduler.smtp_port", "int", NOTIFY, "SMTP port", "465 means TLS from the start.",
        minimum=1, maximum=65535,
    ),
    Setting("scheduler.smtp_starttls", "bool", NOTIFY, "SMTP STARTTLS", "Upgrade the connection with STARTTLS."),
    Setting("scheduler.smtp_username", "string", NOTIFY, "SMTP user name", "Empty: no SMTP login."),
    Setting(
        "scheduler.smtp_password", "secret", NOTIFY, "SMTP password",
        "Overrides scheduler.smtp_password_file.",
        from_file=lambda config: None,
        file_set=lambda config: bool(config.scheduler.smtp_password_file),
    ),
    Setting(
        "scheduler.smtp_from", "string", NOTIFY, "E-mail sender", "From address of alert e-mails.",
        check=_email_problem,
    ),
    Setting(
        "scheduler.smtp_to", "string_list", NOTIFY, "E-mail recipients", "Who receives alert e-mails.",
        check=_recipients_problem,
    ),
    Setting(
        "admin.session_hours", "float", SESSIONS, "Session lifetime",
        "How long a local admin sign-in lasts; applies to new sign-ins.", minimum=0.25, maximum=720, unit="hours",
    ),
)  # fmt: skip

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Keep:
    """A secret sent back as its masked marker: unchanged."""


def lookup(key: str) -> Setting:
    setting = BY_KEY.get(key)
    if setting is None:
        raise SettingError(key, "unknown setting", code="unknown_setting")
    return setting


def parse(setting: Setting, raw: object, config: Config) -> Any:
    """The value to store for ``raw``: a typed value, None (back to the file value) or Keep()."""
    key = setting.key
    if raw is None:
        return None
    if setting.secret and isinstance(raw, dict):
        if raw == {"set": True}:
            return Keep()
        if raw == {"set": False}:
            return ""
        raise SettingError(key, 'a secret takes a string, {"set": false} to clear it, or null for the file value')
    value = _typed(setting, raw)
    low, high = setting.minimum, setting.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingError(key, f"must be between {_number(setting.minimum)} and {_number(setting.maximum)}")
    if setting.check is not None:
        problem = setting.check(value, config)
        if problem:
            raise SettingError(key, problem)
    return value


def _typed(setting: Setting, raw: object) -> Any:
    key, kind = setting.key, setting.kind
    if kind == "bool":
        if not isinstance(raw, bool):
            raise SettingError(key, "must be true or false")
        return raw
    if kind in ("int", "float"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise SettingError(key, "must be a number")
        if kind == "float":
            return float(raw)
        if raw != int(raw):
            raise SettingError(key, "must be a whole number")
        return int(raw)
    if kind == "string_list":
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise SettingError(key, "must be a list of strings")
        return [_text(key, item.strip()) for item in raw if item.strip()]
    if not isinstance(raw, str):
        raise SettingError(key, "must be a string")
    return _text(key, raw.strip())


def _text(key: str, text: str) -> str:
    if len(text) > MAX_TEXT or not text.isprintable():
        raise SettingError(key, f"must be printable text of at most {MAX_TEXT} characters")
    return text


def _number(value: float | None) -> str:
    return f"{value:g}" if value is not None else "…"


# Rules over several keys: (keys involved, check of the effective values → (key, problem) or None).
Rule = tuple[tuple[str, ...], Callable[[Mapping[str, Any]], tuple[str, str] | None]]


def _page_sizes(values: Mapping[str, Any]) -> tuple[str, str] | None:
    if values["gateway.max_limit"] < values["gateway.default_limit"]:
        return "gateway.max_limit", "must be at least gateway.default_limit"
    return None


def _smtp_complete(values: Mapping[str, Any]) -> tuple[str, str] | None:
    if not values["scheduler.smtp_host"]:
        return None
    if not values["scheduler.smtp_from"]:
        return "scheduler.smtp_from", "required when scheduler.smtp_host is set"
    if not values["scheduler.smtp_to"]:
        return "scheduler.smtp_to", "required when scheduler.smtp_host is set"
    return None


RULES: tuple[Rule, ...] = (
    (("gateway.default_limit", "gateway.max_limit"), _page_sizes),
    (("scheduler.smtp_host", "scheduler.smtp_from", "scheduler.smtp_to"), _smtp_complete),
)


def check_rules(values: Mapping[str, Any], changed: set[str]) -> None:
    """Raise for the first rule broken by the effective ``values`` that involves a ``changed`` key."""
    for keys, rule in RULES:
        if changed.intersection(keys):
            broken = rule(values)
            if broken is not None:
                raise SettingError(*broken)
