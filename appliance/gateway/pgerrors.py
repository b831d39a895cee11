"""PostgreSQL errors → the product's errors, with the right status and no platform SQL."""

from __future__ import annotations

import logging

import asyncpg

from appliance.errors import (
    AtlasError,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    ServiceUnavailable,
    Unprocessable,
)

log = logging.getLogger(__name__)

STALE_SCHEMA = frozenset({"42703", "42P01", "42804"})  # undefined column/table, datatype mismatch


def is_stale_schema(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in STALE_SCHEMA


def translate(exc: BaseException) -> AtlasError:
    if isinstance(
        exc, OSError | asyncpg.InterfaceError | asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError
    ):
        log.warning("database unavailable: %r", exc)
        return ServiceUnavailable("the project database is unavailable; retry later", code="database_unavailable")
    if not isinstance(exc, asyncpg.PostgresError):
        raise exc
    state = exc.sqlstate or ""
    details = {
        key: value
        for key, value in (
            ("constraint", getattr(exc, "constraint_name", None)),
            ("column", getattr(exc, "column_name", None)),
            ("table", getattr(exc, "table_name", None)),
        )
        if value
    }
    if state == "23505":
        return Conflict(
            f"a row with this key already exists ({details.get('constraint', 'unique')})",
            code="unique_violation",
            details=details,
        )
    if state == "23502":
        return Unprocessable(
            f"column {details.get('column', '?')} must not be null", code="not_null_violation", details=details
        )
    if state == "23503":
        return Unprocessable(
            f"foreign key {details.get('constraint', '?')} is violated", code="foreign_key_violation", details=details
        )
    if state == "23514":
        return Unprocessable(
            f"check constraint {details.get('constraint', '?')} is violated", code="check_violation", details=details
        )
    if state in ("23P01",):
        return Conflict("an exclusion constraint is violated", code="exclusion_violation", details=details)
    if state == "42501":
        return Forbidden(
            "permission denied by the project's grants or row-level security policies", code="permission_denied"
        )
    if state == "25006":
        return Forbidden("this key may only read", code="read_only")
    if state == "57014":
        return GatewayTimeout("the statement took too long and was cancelled", code="statement_timeout")
    if state.startswith("22"):
        return BadRequest(
            f"a value does not fit its column: {exc.args[0] if exc.args else state}",
            code="invalid_value",
            details=details,
        )
    if state in ("40001", "40P01"):
        return Conflict("a concurrent transaction interfered; retry", code="retry", details=None)
    if state.startswith(("08", "53", "57P")):
        log.warning("database unavailable: %s %s", state, exc)
        return ServiceUnavailable("the project database is unavailable; retry later", code="database_unavailable")
    log.error("unmapped database error %s: %s", state, exc)
    return AtlasError("the database rejected the request", code="database_error")
