"""The runtime settings of this node: stored in the control plane, read from memory, applied live.

Lifecycle: ``core.service(RuntimeSettings)``; :class:`appliance.core.Core` awaits ``load()``
when it opens, so ``get`` never waits. ``update`` checks the whole change before writing any
of it, writes it in one transaction, and then calls every subscriber (the roles re-read what
they use). Secrets are sealed with the master key and only ever shown as ``{"set": bool}``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import DecryptionError
from appliance.settings.registry import BY_KEY, SETTINGS, Keep, Setting, check_rules, lookup, parse

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

Listener = Callable[[], None]


def seal_context(key: str) -> str:
    return f"setting:{key}"


async def stored_value(store: ControlPlane, key: str) -> Any:
    """A plain (not secret) runtime value straight from the control plane, or None: for tools that
    read the control plane without a running core (``atlashub doctor``). Before migration 0010: None."""
    try:
        row = await store.fetchone("SELECT value_json FROM runtime_settings WHERE key = ?", (key,))
    except sqlite3.OperationalError:
        return None
    return json.loads(row["value_json"]) if row and row["value_json"] is not None else None


@dataclass(frozen=True)
class Override:
    value: Any = field(repr=False)
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class Change:
    """What an update did, as the audit log may show it (secrets as {"set": bool})."""

    changed: dict[str, Any]
    reset: list[str]

    @property
    def keys(self) -> list[str]:
        return sorted([*self.changed, *self.reset])


class RuntimeSettings:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._overrides: dict[str, Override] = {}
        self._listeners: list[Listener] = []

    async def load(self) -> None:
        """Read the stored overrides. One that cannot be read (unknown key, bad seal) is skipped, logged."""
        rows = await self._core.store.fetchall(
            "SELECT key, value_json, value_enc, updated_at, updated_by FROM runtime_settings"
        )
        found: dict[str, Override] = {}
        for row in rows:
            setting = BY_KEY.get(row["key"])
            if setting is None:
                log.warning("ignoring the stored runtime setting %s: this version does not know it", row["key"])
                continue
            try:
                if setting.secret:
                    value: Any = self._core.box.decrypt_text(row["value_enc"], seal_context(setting.key))
                else:
                    value = json.loads(row["value_json"])
            except (DecryptionError, TypeError, ValueError):
                log.warning("ignoring the stored runtime setting %s: it cannot be read; set it again", row["key"])
                continue
            found[setting.key] = Override(value, row["updated_at"], row["updated_by"])
        self._overrides = found

    def get(self, key: str) -> Any:
        """The effective value: the runtime value when one is set, else the file value."""
        override = self._overrides.get(key)
        if override is not None:
            return override.value
        return BY_KEY[key].file_value(self._core.config)

    def overridden(self, key: str) -> bool:
        return key in self._overrides

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def describe(self) -> dict[str, Any]:
        """What the admin API shows: every value (secrets masked) and how each may be set."""
        config = self._core.config
        values: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for setting in SETTINGS:
            override = self._overrides.get(setting.key)
            values[setting.key] = self._shown(setting, override)
            meta[setting.key] = {
                **setting.meta(),
                "secret": setting.secret,
                "source": "runtime" if override else "file",
                "file_value": self._mask(setting, setting.is_set_in_file(config))
                if setting.secret
                else setting.file_value(config),
                **({"updated_at": override.updated_at, "updated_by": override.updated_by} if override else {}),
            }
        return {"settings": values, "meta": meta}

    def _shown(self, setting: Setting, override: Override | None) -> Any:
        if not setting.secret:
            return override.value if override else setting.file_value(self._core.config)
        if override is not None:
            return self._mask(setting, bool(override.value))
        return self._mask(setting, setting.is_set_in_file(self._core.config))

    @staticmethod
    def _mask(setting: Setting, is_set: bool) -> dict[str, bool]:
        return {"set": is_set}

    async def update(self, patch: Mapping[str, object], actor: str) -> Change:
        """All or nothing: every key and value is checked, then all are written in one transaction."""
        config = self._core.config
        parsed: dict[str, Any] = {}
        for key, raw in patch.items():
            parsed[key] = parse(lookup(key), raw, config)
        effective = {s.key: self.get(s.key) for s in SETTINGS}
        for key, value in parsed.items():
            if value is None:
                effective[key] = BY_KEY[key].file_value(config)
            elif not isinstance(value, Keep):
                effective[key] = value
        check_rules(effective, {k for k, v in parsed.items() if not isinstance(v, Keep)})

        now = utcnow()
        fresh = dict(self._overrides)
        changed: dict[str, Any] = {}
        reset: list[str] = []
        async with self._core.store.transaction() as tx:
            for key, value in parsed.items():
                setting = BY_KEY[key]
                if isinstance(value, Keep):
                    continue
                if value is None:
                    if key in fresh:
                        await tx.execute("DELETE FROM runtime_settings WHERE key = ?", (key,))
                        del fresh[key]
                        reset.append(key)
                    continue
                plain, sealed = (
                    (None, self._core.box.encrypt_text(value, seal_context(key)))
                    if setting.secret
                    else (json.dumps(value), None)
                )
                await tx.execute(
                    "INSERT INTO runtime_settings (key, value_json, value_enc, updated_at, updated_by)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json,"
                    " value_enc = excluded.value_enc, updated_at = excluded.updated_at,"
                    " updated_by = excluded.updated_by",
                    (key, plain, sealed, now, actor),
                )
                fresh[key] = Override(value, now, actor)
                changed[key] = self._mask(setting, bool(value)) if setting.secret else value
        self._overrides = fresh
        if changed or reset:
            log.info("runtime settings changed by %s: %s", actor, ", ".join(sorted([*changed, *reset])))
            for listener in list(self._listeners):
                try:
                    listener()
                except Exception:
                    log.exception("applying the changed runtime settings failed")
        return Change(changed, reset)
