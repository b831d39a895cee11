"""The configuration the node runs with, as the dashboard may show it: secrets and DSNs redacted.

Values from the file (and ``ATLASHUB_*`` overrides) apply at start; a changed file needs a
restart (``logging.level`` also applies on SIGHUP). Keys that a runtime setting overrides are
listed, so the page can say which file values are not the ones in effect.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from appliance.config import Config
from appliance.logs import redact

REDACTED = "[REDACTED]"
# Keys whose whole value is a secret (a webhook URL carries its token; an access key id is one
# half of a credential). Files that hold secrets (``*_file``) are paths and are shown.
_SECRET_KEY = re.compile(r"(password|secret|token|access_key|webhook_url|dsn)")
RELOADABLE = ("logging.level",)


def _shown(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return [_shown(name, item) for item in value]
    if not isinstance(value, str):
        return value
    if _SECRET_KEY.search(name) and not name.endswith("_file") and value:
        return REDACTED
    return redact(value)


def file_config(config: Config) -> dict[str, dict[str, Any]]:
    """Every section and key, in the order of the config dataclasses."""
    shown: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        shown[section.name] = {f.name: _shown(f.name, getattr(values, f.name)) for f in dataclasses.fields(values)}
    return shown
