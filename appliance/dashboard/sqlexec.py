"""Run one SQL editor statement on a project owner connection, and render values as JSON.

Free of HTTP. The statement has passed :func:`appliance.dashboard.sqlguard.check_editor_sql`;
this module is the other half of the contract: one transaction, ``SET LOCAL statement_timeout``,
rows read through a server-side portal and capped at ``max_rows`` (one more is fetched to know
whether the result was ``truncated``; the user's SQL text is never rewritten).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import ipaddress
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.errors import BadRequest

EDITOR_MAX_ROWS = 5000  # the same cap as sqlguard_rules.EDITOR_MAX_ROWS, without loading the parser

# JavaScript numbers are exact only up to 2**53: larger integers are sent as strings.
JS_SAFE_INTEGER = 2**53 - 1
# asyncpg's own timeout, a backstop should the server-side statement_timeout not fire.
CLIENT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class SqlResult:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    duration_ms: float
    command: str | None  # the command tag of a statement without rows, e.g. "CREATE TABLE", "UPDATE 3"

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "rowCount": self.row_count,
            "truncated": self.truncated,
            "durationMs": self.duration_ms,
            "command": self.command,
        }


def json_value(value: Any) -> Any:
    """A JSON-safe rendering: exact numbers and binary data as strings, containers recursively."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -JS_SAFE_INTEGER <= value <= JS_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")  # PostgreSQL's spelling
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (uuid.UUID, ipaddress._BaseAddress, ipaddress._BaseNetwork)):
        return str(value)
    if isinstance(value, asyncpg.Record):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def _row_count(status: str | None) -> int:
    """Rows affected, from a command tag such as ``INSERT 0 3`` or ``UPDATE 2``."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def sql_error(exc: asyncpg.PostgresError) -> BadRequest:
    """PostgreSQL's message and its 1-based character position in the submitted SQL."""
    position = getattr(exc, "position", None)
    details: dict[str, Any] = {
        "position": int(position) if position and str(position).isdigit() else None,
        "sqlstate": exc.sqlstate,
    }
    for key in ("detail", "hint"):
        value = getattr(exc, key, None)
        if value:
            details[key] = value
    return BadRequest(str(getattr(exc, "message", None) or exc), code="sql_error", details=details)


def timeout_error(timeout_ms: int) -> BadRequest:
    return BadRequest(
        f"the statement ran longer than the {timeout_ms / 1000:g} s limit and was cancelled",
        code="sql_timeout",
        details={"timeout_ms": timeout_ms},
    )


async def run_statement(
    conn: asyncpg.Connection, sql: str, *, timeout_ms: int, max_rows: int = EDITOR_MAX_ROWS
) -> SqlResult:
    """Run ``sql`` (exactly the text the guard accepted) in one transaction; commit if it succeeds."""
    client_timeout = timeout_ms / 1000 + CLIENT_GRACE_SECONDS
    started = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            prepared = await conn.prepare(sql, timeout=client_timeout)
            attributes = prepared.get_attributes()
            command = None
            if attributes:
                cursor = await prepared.cursor()
                records = await cursor.fetch(max_rows + 1, timeout=client_timeout)
                truncated = len(records) > max_rows
                rows = [[json_value(v) for v in record.values()] for record in records[:max_rows]]
                row_count = len(rows)
            else:
                await prepared.fetch(timeout=client_timeout)
                rows, truncated = [], False
                command = prepared.get_statusmsg() or None
                row_count = _row_count(command)
    except asyncpg.QueryCanceledError:
        raise timeout_error(timeout_ms) from None
    except TimeoutError:
        raise timeout_error(timeout_ms) from None
    except asyncio.CancelledError:
        raise
    except asyncpg.PostgresError as exc:
        raise sql_error(exc) from None
    duration = round((time.perf_counter() - started) * 1000, 2)
    columns = [{"name": a.name, "type": a.type.name} for a in attributes]
    return SqlResult(columns, rows, row_count, truncated, duration, command)
