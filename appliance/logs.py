"""JSON logs with a redacting filter: keys, tokens, passwords and DSNs never reach a log line."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Our own API keys and refresh tokens carry recognisable prefixes.
    (re.compile(r"\bah_(pub|sec|rt|adm|jt)_[A-Za-z0-9_\-]{8,}"), r"ah_\1_[REDACTED]"),
    # JWTs (three base64url parts, the first starting with eyJ).
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[REDACTED-JWT]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]+=*"), r"\1 [REDACTED]"),
    # Credentials inside URLs / DSNs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/\s@]+):[^@\s/]+@"), r"\1:[REDACTED]@"),
    # key=value / key: value pairs whose key smells secret.
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|x-api-key|authorization|"
            r"signature|master[_-]?key|access[_-]?key|secret[_-]?key)(\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s\"',;&]+)"
        ),
        r"\1\2[REDACTED]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message once, redacts it, and freezes the result into the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the log line
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(_redact_values(entry), default=str, ensure_ascii=False)


def _redact_values(value: Any) -> Any:
    """Redact string leaves, so the JSON stays valid whatever a secret looked like."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_values(v) for v in value]
    return value


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Idempotent: replaces the root handlers, so calling it again (SIGHUP) applies a new level."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_atlashub", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._atlashub = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print query strings; we log requests ourselves.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
