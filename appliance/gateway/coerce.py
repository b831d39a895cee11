"""Client values to the Python objects asyncpg encodes for a column's type.

Two sources: query-string text (filters) and JSON body values (insert/update). JSON ``null``
becomes ``None`` whatever the type; NOT NULL is the database's job. A value that does not fit
is a 400 ``invalid_value`` naming the column and the expected type, never a driver error.

Types this module does not know (inet, interval, enums, ranges...) and array filters typed as
text (``{a,b}``) travel as text and are cast in SQL by their catalog type name: ``transport``
tells the builder which placeholder form to write. That keeps asyncpg's binary codecs, which
want specific Python objects for such types, out of the way.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Literal

from appliance.errors import BadRequest
from appliance.gateway.schema import ColumnInfo

Transport = Literal["native", "text", "text_array"]
"""How a value reaches PostgreSQL: ``native`` is a bare ``$n`` typed by the column,
``text`` is ``$n::text::<type>`` and ``text_array`` is ``$n::text[]::<type>``."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_NUMBERS = {  # spellings PostgreSQL's float8in and numeric_in accept, case-insensitive
    "nan": "NaN",
    **dict.fromkeys(("inf", "+inf", "infinity", "+infinity"), "Infinity"),
    **dict.fromkeys(("-inf", "-infinity"), "-Infinity"),
}
_TRUE = frozenset({"true", "t", "1"})
_FALSE = frozenset({"false", "f", "0"})


class _Unfit(ValueError):
    """The value does not fit the type; turned into BadRequest with the column named."""


@dataclass(frozen=True, slots=True)
class _Scalar:
    expected: str
    text: Callable[[str], object]
    json: Callable[[object], object]


def transport(column: ColumnInfo, *, from_body: bool) -> Transport:
    element = _array_element(column.udt_name)
    if element is None:
        return "native" if column.udt_name in _SCALARS else "text"
    if from_body:
        return "native" if element in _SCALARS else "text_array"
    return "text"  # an array literal typed in a query string: let PostgreSQL parse it


def is_array(column: ColumnInfo) -> bool:
    return _array_element(column.udt_name) is not None


def from_text(column: ColumnInfo, raw: str) -> object:
    """A filter value from the query string, for ``transport(column, from_body=False)``."""
    try:
        if transport(column, from_body=False) == "text":
            return _text(raw)
        return _SCALARS[column.udt_name].text(raw)
    except (_Unfit, ValueError, ArithmeticError) as exc:
        raise _invalid(column, "text") from exc


def from_json(column: ColumnInfo, value: object) -> object:
    """A value from a JSON body (as parsed by ``json.loads``), for ``from_body=True``."""
    if value is None:
        return None
    try:
        element = _array_element(column.udt_name)
        if element is not None:
            return _json_array(element, value)
        return _scalar_json(column.udt_name, value)
    except (_Unfit, ValueError, ArithmeticError) as exc:
        raise _invalid(column, "json") from exc


def _invalid(column: ColumnInfo, source: Literal["text", "json"]) -> BadRequest:
    element = _array_element(column.udt_name)
    if element is not None:
        inner = f" of {_SCALARS[element].expected}" if element in _SCALARS else ""
        expected = f"a JSON array{inner}" if source == "json" else "an array literal like {a,b}"
    elif column.udt_name in _SCALARS:
        scalar = _SCALARS[column.udt_name]
        expected = "true or false" if column.udt_name == "bool" and source == "json" else scalar.expected
    else:
        expected = "a string PostgreSQL can read"
    return BadRequest(
        f"invalid value for column '{column.name}': expected {expected} ({column.type_name})",
        code="invalid_value",
        details={"column": column.name, "type": column.type_name},
    )


def _array_element(udt_name: str) -> str | None:
    return udt_name[1:] if udt_name.startswith("_") and len(udt_name) > 1 else None


def _json_array(element: str, value: object) -> list[object]:
    if not isinstance(value, list):
        raise _Unfit("not a list")
    return [_json_element(element, v) for v in value]


def _json_element(element: str, value: object) -> object:
    if value is None:
        return None
    if isinstance(value, list) and element not in ("json", "jsonb"):
        return _json_array(element, value)  # a nested list is one more array dimension
    return _scalar_json(element, value)


def _scalar_json(udt_name: str, value: object) -> object:
    scalar = _SCALARS.get(udt_name)
    return scalar.json(value) if scalar is not None else _unknown_json(value)


def _unknown_json(value: object) -> str:
    """Unknown types travel as text: strings as-is, numbers and booleans as JSON spells them."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise _Unfit("not a scalar")


def _text(raw: str) -> str:
    if "\x00" in raw:
        raise _Unfit("PostgreSQL text cannot hold NUL")
    return raw


def _json_text(value: object) -> str:
    if not isinstance(value, str):
        raise _Unfit("not a string")
    return _text(value)


def _via_text(parse: Callable[[str], object]) -> Callable[[object], object]:
    """JSON accepts the type only as a string (dates, UUIDs, bytea...)."""
    return lambda value: parse(_json_text(value))


def _integer(bits: int) -> _Scalar:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def checked(number: int) -> int:
        if not low <= number <= high:
            raise _Unfit("out of range")
        return number

    def text(raw: str) -> object:
        if not _INTEGER.fullmatch(raw) or len(raw) > 24:
            raise _Unfit("not an integer")
        return checked(int(raw))

    def from_json(value: object) -> object:
        if isinstance(value, str):  # JavaScript clients send int8 beyond 2**53 as strings
            return text(value)
        if isinstance(value, float) and value.is_integer():
            return checked(int(value))
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Unfit("not an integer")
        return checked(value)

    return _Scalar(f"an integer from {low} to {high}", text, from_json)


def _decimal_text(raw: str) -> Decimal:
    special = _SPECIAL_NUMBERS.get(raw.lower())
    if special is not None:
        return Decimal(special)
    if not _DECIMAL.fullmatch(raw):
        raise _Unfit("not a number")
    return Decimal(raw)


def _float_text(raw: str) -> object:
    number = _decimal_text(raw)
    result = float(number)
    if math.isinf(result) and number.is_finite():
        raise _Unfit("out of range")
    return result


def _float_json(value: object) -> object:
    if isinstance(value, str):
        return _float_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _Unfit("not a number")
    return float(value)


def _numeric_json(value: object) -> object:
    if isinstance(value, str):
        return _decimal_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _Unfit("not a number")
    # repr keeps the shortest decimal that round-trips; exact values should be sent as strings
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _bool_text(raw: str) -> object:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Unfit("not a boolean")


def _bool_json(value: object) -> object:
    if not isinstance(value, bool):
        raise _Unfit("not a boolean")
    return value


def _timestamp(raw: str) -> object:
    # Like PostgreSQL's timestamp input, an offset is accepted and ignored.
    return datetime.fromisoformat(raw).replace(tzinfo=None)


def _timestamptz(raw: str) -> object:
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _time(raw: str) -> object:
    return time.fromisoformat(raw).replace(tzinfo=None)


def _timetz(raw: str) -> object:
    parsed = time.fromisoformat(raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _bytea(raw: str) -> object:
    """``\\x``-prefixed hex (what PostgreSQL's JSON output gives back) or standard base64."""
    if raw.startswith("\\x"):
        return bytes.fromhex(raw[2:])
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise _Unfit("not base64") from exc


def _json_value(value: object) -> object:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _build_scalars() -> dict[str, _Scalar]:
    text = _Scalar("a string", _text, _json_text)
    float_ = _Scalar("a number", _float_text, _float_json)
    json_ = _Scalar("JSON", _text, _json_value)
    scalars = {
        "int2": _integer(16),
        "int4": _integer(32),
        "int8": _integer(64),
        "float4": float_,
        "float8": float_,
        "numeric": _Scalar("a decimal number", _decimal_text, _numeric_json),
        "bool": _Scalar("true, false, t, f, 1 or 0", _bool_text, _bool_json),
        "uuid": _Scalar("a UUID", uuid.UUID, _via_text(uuid.UUID)),
        "date": _Scalar("an ISO 8601 date", date.fromisoformat, _via_text(date.fromisoformat)),
        "timestamp": _Scalar("an ISO 8601 timestamp", _timestamp, _via_text(_timestamp)),
        "timestamptz": _Scalar("an ISO 8601 timestamp", _timestamptz, _via_text(_timestamptz)),
        "time": _Scalar("an ISO 8601 time", _time, _via_text(_time)),
        "timetz": _Scalar("an ISO 8601 time", _timetz, _via_text(_timetz)),
        "json": json_,
        "jsonb": json_,
        "bytea": _Scalar("base64 or \\x-prefixed hex", _bytea, _via_text(_bytea)),
    }
    scalars.update(dict.fromkeys(("text", "varchar", "bpchar", "citext", "name"), text))
    return scalars


_SCALARS: dict[str, _Scalar] = _build_scalars()
