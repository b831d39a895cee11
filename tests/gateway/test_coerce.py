"""Value coercion for /v1/db: query-string text and JSON body values per column type."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BadRequest
from appliance.gateway.coerce import Transport, from_json, from_text, transport
from appliance.gateway.schema import ColumnInfo

_TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "numeric": "numeric(10,2)",
    "bool": "boolean",
    "text": "text",
    "varchar": "character varying(20)",
    "bpchar": "character(3)",
    "citext": "citext",
    "name": "name",
    "uuid": "uuid",
    "date": "date",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "json": "json",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "inet": "inet",
    "mood": "mood",
    "_int4": "integer[]",
    "_text": "text[]",
    "_jsonb": "jsonb[]",
    "_inet": "inet[]",
}


def col(udt: str) -> ColumnInfo:
    return ColumnInfo(f"c_{udt}", _TYPE_NAMES[udt], udt, nullable=True, has_default=False, is_pk=False)


UID = uuid.UUID("6f1c9a8e-2b7c-4f5a-9a1e-000000000001")

TEXT_OK: list[tuple[str, str, object]] = [
    ("int2", "-32768", -32768),
    ("int4", "42", 42),
    ("int4", "+7", 7),
    ("int8", "9223372036854775807", 2**63 - 1),
    ("float8", "1.5", 1.5),
    ("float8", "-2e3", -2000.0),
    ("float8", ".5", 0.5),
    ("float4", "Infinity", float("inf")),
    ("float8", "-infinity", float("-inf")),
    ("numeric", "12.50", Decimal("12.50")),
    ("numeric", "1e-3", Decimal("0.001")),
    ("numeric", "-Infinity", Decimal("-Infinity")),
    ("float8", "inf", float("inf")),
    ("bool", "true", True),
    ("bool", "T", True),
    ("bool", "1", True),
    ("bool", "false", False),
    ("bool", "f", False),
    ("bool", "0", False),
    ("text", "'; DROP TABLE x;--", "'; DROP TABLE x;--"),
    ("varchar", "", ""),
    ("citext", "MiXeD", "MiXeD"),
    ("uuid", str(UID), UID),
    ("uuid", UID.hex, UID),
    ("date", "2024-02-29", date(2024, 2, 29)),
    ("timestamp", "2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
    ("timestamp", "2024-01-02 03:04:05+05:00", datetime(2024, 1, 2, 3, 4, 5)),
    ("timestamptz", "2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    (
        "timestamptz",
        "2024-01-02T03:04:05.250+02:00",
        datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=timezone(timedelta(hours=2))),
    ),
    ("timestamptz", "2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("time", "13:45:00", time(13, 45)),
    ("timetz", "13:45:00+01:00", time(13, 45, tzinfo=timezone(timedelta(hours=1)))),
    ("jsonb", '{"a": 1}', '{"a": 1}'),
    ("bytea", "aGVsbG8=", b"hello"),
    ("bytea", "\\x68656c6c6f", b"hello"),
    ("inet", "10.0.0.1", "10.0.0.1"),
    ("mood", "happy", "happy"),
    ("_int4", "{1,2}", "{1,2}"),
]


@pytest.mark.parametrize(("udt", "raw", "expected"), TEXT_OK, ids=[f"{u}:{r!r}" for u, r, _ in TEXT_OK])
def test_from_text(udt: str, raw: str, expected: object) -> None:
    value = from_text(col(udt), raw)
    assert value == expected
    assert type(value) is type(expected)


TEXT_BAD: list[tuple[str, str]] = [
    ("int2", "32768"),
    ("int4", "2147483648"),
    ("int4", "1.0"),
    ("int4", " 1"),
    ("int4", "1_000"),
    ("int4", ""),
    ("int4", "abc"),
    ("int8", "9" * 30),
    ("float8", "1e400"),
    ("float8", "1,5"),
    ("float8", "infinite"),
    ("float8", "nan1"),
    ("numeric", "12.5.1"),
    ("numeric", "0x10"),
    ("bool", "yes"),
    ("bool", ""),
    ("text", "a\x00b"),
    ("uuid", "not-a-uuid"),
    ("date", "2023-02-29"),
    ("date", "yesterday"),
    ("timestamptz", "2024-13-01T00:00:00Z"),
    ("time", "25:00"),
    ("bytea", "not base64!"),
    ("bytea", "\\xZZ"),
    ("jsonb", "\x00"),
    ("inet", "1\x00"),
]


@pytest.mark.parametrize(("udt", "raw"), TEXT_BAD, ids=[f"{u}:{r!r}" for u, r in TEXT_BAD])
def test_from_text_rejects(udt: str, raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        from_text(col(udt), raw)
    assert caught.value.code == "invalid_value"
    assert caught.value.details == {"column": f"c_{udt}", "type": _TYPE_NAMES[udt]}
    assert f"'c_{udt}'" in caught.value.message and _TYPE_NAMES[udt] in caught.value.message


JSON_OK: list[tuple[str, object, object]] = [
    ("int4", 5, 5),
    ("int4", 5.0, 5),
    ("int8", "9223372036854775807", 2**63 - 1),
    ("float8", 3, 3.0),
    ("float8", 2.5, 2.5),
    ("float8", "1.25", 1.25),
    ("numeric", 0.1, Decimal("0.1")),
    ("numeric", 3, Decimal(3)),
    ("numeric", "123456789012345678901234.5", Decimal("123456789012345678901234.5")),
    ("bool", True, True),
    ("bool", False, False),
    ("text", "héllo", "héllo"),
    ("uuid", str(UID), UID),
    ("timestamptz", "2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("date", "2024-01-02", date(2024, 1, 2)),
    ("jsonb", {"k": [1, None, "x"]}, '{"k":[1,null,"x"]}'),
    ("jsonb", "just a string", '"just a string"'),
    ("json", [1, 2], "[1,2]"),
    ("jsonb", False, "false"),
    ("bytea", "aGVsbG8=", b"hello"),
    ("inet", "10.0.0.1", "10.0.0.1"),
    ("mood", 7, "7"),
    ("mood", True, "true"),
    ("_int4", [1, None, 3], [1, None, 3]),
    ("_int4", [[1, 2], [3, 4]], [[1, 2], [3, 4]]),
    ("_text", [], []),
    ("_jsonb", [{"a": 1}, [2]], ['{"a":1}', "[2]"]),
    ("_inet", ["1.1.1.1", None], ["1.1.1.1", None]),
]


@pytest.mark.parametrize(("udt", "value", "expected"), JSON_OK, ids=[f"{u}:{v!r}" for u, v, _ in JSON_OK])
def test_from_json(udt: str, value: object, expected: object) -> None:
    result = from_json(col(udt), value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("udt", sorted(_TYPE_NAMES))
def test_json_null_is_sql_null_for_every_type(udt: str) -> None:
    assert from_json(col(udt), None) is None


JSON_BAD: list[tuple[str, object]] = [
    ("int4", True),
    ("int4", 1.5),
    ("int4", 2**31),
    ("int4", "x"),
    ("int4", [1]),
    ("float8", False),
    ("float8", {"a": 1}),
    ("numeric", True),
    ("bool", "true"),
    ("bool", 1),
    ("text", 5),
    ("text", {"a": 1}),
    ("text", "nul\x00"),
    ("uuid", 12),
    ("date", 20240102),
    ("bytea", [104, 105]),
    ("jsonb", float("nan")),
    ("mood", {"a": 1}),
    ("_int4", 1),
    ("_int4", ["one"]),
    ("_int4", "{1,2}"),
    ("_inet", [{"a": 1}]),
]


@pytest.mark.parametrize(("udt", "value"), JSON_BAD, ids=[f"{u}:{v!r}" for u, v in JSON_BAD])
def test_from_json_rejects(udt: str, value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        from_json(col(udt), value)
    assert caught.value.code == "invalid_value"
    assert caught.value.details["column"] == f"c_{udt}"


def test_bool_error_from_json_says_true_or_false() -> None:
    with pytest.raises(BadRequest, match=r"expected true or false \(boolean\)"):
        from_json(col("bool"), "yes")


TRANSPORT: list[tuple[str, bool, Transport]] = [
    ("int4", False, "native"),
    ("int4", True, "native"),
    ("jsonb", True, "native"),
    ("citext", False, "native"),
    ("inet", False, "text"),
    ("inet", True, "text"),
    ("mood", True, "text"),
    ("_int4", True, "native"),
    ("_int4", False, "text"),
    ("_inet", True, "text_array"),
    ("_inet", False, "text"),
]


@pytest.mark.parametrize(("udt", "from_body", "expected"), TRANSPORT, ids=[f"{u}-body={b}" for u, b, _ in TRANSPORT])
def test_transport(udt: str, from_body: bool, expected: Transport) -> None:
    assert transport(col(udt), from_body=from_body) == expected


@given(st.text(max_size=30))
def test_int4_text_is_exact_or_rejected(raw: str) -> None:
    try:
        value = from_text(col("int4"), raw)
    except BadRequest:
        return
    assert isinstance(value, int) and -(2**31) <= value < 2**31
    assert value == int(raw)


@given(st.sampled_from(sorted(_TYPE_NAMES)), st.text(max_size=30))
def test_from_text_only_fails_with_invalid_value(udt: str, raw: str) -> None:
    try:
        from_text(col(udt), raw)
    except BadRequest as exc:
        assert exc.code == "invalid_value"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(st.sampled_from(sorted(_TYPE_NAMES)), _json_values)
def test_from_json_only_fails_with_invalid_value(udt: str, value: object) -> None:
    try:
        from_json(col(udt), value)
    except BadRequest as exc:
        assert exc.code == "invalid_value"
