"""Query-string grammar of ``/v1/db``: a pure function from ``(key, value)`` pairs to an AST.

Grammar (pairs as decoded by the HTTP layer, in order)::

    select=*            | select=col1,col2      columns; blanks around names are ignored
    limit=<n>           offset=<n>              ASCII digits only
    order=col[.asc|.desc][,col2[.asc|.desc]...] the LAST dot splits name from direction
    count=exact         (reads only)            also return the total matching rows
    return=minimal|representation (writes only)
    <op>.<col>=<value>  op: eq neq lt lte gt gte like ilike in; the FIRST dot splits
    in.<col>=a,b,"c,d"  items split on commas; "..." quotes an item (\\" and \\\\ inside)

Filters AND together and a column may repeat (``gt.age=1&lt.age=9``). The parser does not
know the schema: column existence and value types are checked by the builder. Every other
key, a repeated non-filter key, or a malformed value is a 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from appliance.errors import BadRequest

FilterOp = Literal["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in"]
ReturnMode = Literal["minimal", "representation"]

FILTER_OPS: frozenset[str] = frozenset(get_args(FilterOp))
_OPS_TEXT = ", ".join(get_args(FilterOp))
_DIGITS = re.compile(r"[0-9]{1,19}")
_INT8_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Filter:
    """``column <op> value``; ``value`` is a tuple of items only for ``in``."""

    op: FilterOp
    column: str
    value: str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Order:
    column: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ReadQuery:
    columns: tuple[str, ...] | None  # None means select=* (all columns, from the snapshot)
    filters: tuple[Filter, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int = 100
    offset: int = 0
    count_exact: bool = False


@dataclass(frozen=True, slots=True)
class WriteQuery:
    filters: tuple[Filter, ...]
    returning: bool


def parse_read(params: Sequence[tuple[str, str]], *, default_limit: int = 100, max_limit: int = 1000) -> ReadQuery:
    """Parse the query string of ``GET /v1/db/:table``."""
    singles = _singles(params, allowed=frozenset({"select", "limit", "offset", "order", "count"}))
    limit = default_limit
    if "limit" in singles:
        limit = _non_negative("limit", singles["limit"])
        if limit > max_limit:
            raise BadRequest(
                f"limit {limit} is above the maximum of {max_limit} rows; page with offset",
                code="limit_too_large",
                details={"parameter": "limit", "max": max_limit},
            )
    count = singles.get("count")
    if count is not None and count != "exact":
        raise _bad_param("count", "count accepts only 'exact'")
    return ReadQuery(
        columns=_parse_select(singles["select"]) if "select" in singles else None,
        filters=_filters(params),
        order=_parse_order(singles["order"]) if "order" in singles else (),
        limit=limit,
        offset=_non_negative("offset", singles["offset"]) if "offset" in singles else 0,
        count_exact=count is not None,
    )


def parse_write(
    params: Sequence[tuple[str, str]], *, allow_filters: bool = True, default_return: ReturnMode = "minimal"
) -> WriteQuery:
    """Parse the query string of a write: filters (PATCH/DELETE only) and ``return``.

    Whether filters are *required* is the builder's rule, so this accepts none.
    """
    singles = _singles(params, allowed=frozenset({"return"}))
    mode = singles.get("return", default_return)
    if mode not in get_args(ReturnMode):
        raise _bad_param("return", "return accepts 'minimal' or 'representation'")
    filters = _filters(params)
    if filters and not allow_filters:
        raise BadRequest(
            "filters are not accepted on this request",
            code="unknown_parameter",
            details={"parameter": _filter_key(filters[0])},
        )
    return WriteQuery(filters=filters, returning=mode == "representation")


def parse_filters(params: Sequence[tuple[str, str]]) -> tuple[Filter, ...]:
    """Filters of a PATCH/DELETE query string (``return`` is validated and allowed)."""
    return parse_write(params).filters


def _singles(params: Sequence[tuple[str, str]], *, allowed: frozenset[str]) -> dict[str, str]:
    """Non-filter parameters; each may appear once. Rejects keys that are neither."""
    found: dict[str, str] = {}
    for key, value in params:
        op, dot, _ = key.partition(".")
        if dot:
            if op not in FILTER_OPS:
                raise BadRequest(
                    f"unknown filter operator '{op}' in parameter '{key}'; expected one of {_OPS_TEXT}",
                    code="unknown_operator",
                    details={"parameter": key},
                )
            continue
        if key not in allowed:
            expected = ", ".join(sorted(allowed))
            raise BadRequest(
                f"unknown parameter '{key}'; expected {expected} or <op>.<column> filters",
                code="unknown_parameter",
                details={"parameter": key},
            )
        if key in found:
            raise _bad_param(key, f"parameter '{key}' is given more than once")
        found[key] = value
    return found


def _filters(params: Sequence[tuple[str, str]]) -> tuple[Filter, ...]:
    filters: list[Filter] = []
    for key, value in params:
        op, dot, column = key.partition(".")
        if not dot or op not in FILTER_OPS:
            continue  # already validated by _singles
        if not column:
            raise _bad_param(key, f"filter '{key}' names no column; write {op}.<column>=<value>")
        parsed: str | tuple[str, ...] = _parse_in_list(key, value) if op == "in" else value
        filters.append(Filter(op=cast(FilterOp, op), column=column, value=parsed))
    return tuple(filters)


def _filter_key(f: Filter) -> str:
    return f"{f.op}.{f.column}"


def _parse_select(raw: str) -> tuple[str, ...] | None:
    if raw.strip() == "*":
        return None
    columns: list[str] = []
    for item in raw.split(","):
        name = item.strip()
        if not name:
            raise _bad_param("select", "select has an empty column name; write select=* or select=a,b")
        if name == "*":
            raise _bad_param("select", "select=* cannot be combined with column names")
        if name not in columns:  # a repeated column would repeat a JSON key
            columns.append(name)
    return tuple(columns)


def _parse_order(raw: str) -> tuple[Order, ...]:
    orders: list[Order] = []
    for item in raw.split(","):
        name, dot, direction = item.strip().rpartition(".")
        if not dot:
            name, direction = direction, "asc"
        if direction not in ("asc", "desc"):
            raise _bad_param("order", f"order item '{item}' must be <column>, <column>.asc or <column>.desc")
        if not name:
            raise _bad_param("order", "order has an empty column name")
        orders.append(Order(column=name, descending=direction == "desc"))
    return tuple(orders)


def _non_negative(name: str, raw: str) -> int:
    if not _DIGITS.fullmatch(raw) or int(raw) > _INT8_MAX:
        raise _bad_param(name, f"{name} must be a non-negative integer, got '{raw}'")
    return int(raw)


def _parse_in_list(key: str, raw: str) -> tuple[str, ...]:
    """Split ``a,b,"c,d"`` into items. A quoted item may hold commas, ``\\"`` and ``\\\\``."""
    if raw == "":
        raise _bad_param(key, f"filter '{key}' needs at least one value; write \"\" for an empty string")
    items: list[str] = []
    pos = 0
    while True:
        if raw.startswith('"', pos):
            chars: list[str] = []
            pos += 1
            while pos < len(raw) and raw[pos] != '"':
                if raw[pos] == "\\" and pos + 1 < len(raw):
                    pos += 1
                chars.append(raw[pos])
                pos += 1
            if pos >= len(raw):
                raise _bad_param(key, f"filter '{key}' has an unterminated quoted value")
            pos += 1
            if pos < len(raw) and raw[pos] != ",":
                raise _bad_param(key, f"filter '{key}': a closing quote must be followed by a comma")
            items.append("".join(chars))
        else:
            end = raw.find(",", pos)
            item = raw[pos:] if end < 0 else raw[pos:end]
            if '"' in item:
                raise _bad_param(key, f"filter '{key}': quote the whole item to use '\"' in a value")
            items.append(item)
            pos = len(raw) if end < 0 else end
        if pos >= len(raw):
            return tuple(items)
        pos += 1  # skip the comma; a trailing comma yields a final empty item
        if pos == len(raw):
            items.append("")
            return tuple(items)


def _bad_param(name: str, message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter", details={"parameter": name})
