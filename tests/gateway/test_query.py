"""The /v1/db query-string grammar: table-driven cases plus properties over arbitrary input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BadRequest
from appliance.gateway.query import (
    FILTER_OPS,
    Filter,
    Order,
    ReadQuery,
    WriteQuery,
    parse_filters,
    parse_read,
    parse_write,
)

Params = list[tuple[str, str]]

READ_CASES: list[tuple[str, Params, ReadQuery]] = [
    ("empty", [], ReadQuery(columns=None)),
    ("select-star", [("select", "*")], ReadQuery(columns=None)),
    ("select-list", [("select", "id,name")], ReadQuery(columns=("id", "name"))),
    ("select-blanks-trimmed", [("select", " id , name ")], ReadQuery(columns=("id", "name"))),
    ("select-duplicates-once", [("select", "id,name,id")], ReadQuery(columns=("id", "name"))),
    ("limit-offset", [("limit", "50"), ("offset", "10")], ReadQuery(columns=None, limit=50, offset=10)),
    ("limit-zero", [("limit", "0")], ReadQuery(columns=None, limit=0)),
    ("limit-at-max", [("limit", "1000")], ReadQuery(columns=None, limit=1000)),
    ("limit-leading-zeros", [("limit", "007")], ReadQuery(columns=None, limit=7)),
    ("order-bare-is-asc", [("order", "name")], ReadQuery(columns=None, order=(Order("name"),))),
    ("order-desc", [("order", "created_at.desc")], ReadQuery(columns=None, order=(Order("created_at", True),))),
    (
        "order-several",
        [("order", "a.asc,b.desc,c")],
        ReadQuery(columns=None, order=(Order("a"), Order("b", True), Order("c"))),
    ),
    ("order-dotted-column", [("order", "a.b.desc")], ReadQuery(columns=None, order=(Order("a.b", True),))),
    ("count-exact", [("count", "exact")], ReadQuery(columns=None, count_exact=True)),
    *[
        (f"filter-{op}", [(f"{op}.age", "5")], ReadQuery(columns=None, filters=(Filter(op, "age", "5"),)))
        for op in ("eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike")
    ],
    ("filter-in", [("in.id", "1,2,3")], ReadQuery(columns=None, filters=(Filter("in", "id", ("1", "2", "3")),))),
    (
        "filter-value-kept-raw",
        [("eq.name", " a b ")],
        ReadQuery(columns=None, filters=(Filter("eq", "name", " a b "),)),
    ),
    ("filter-empty-value", [("eq.name", "")], ReadQuery(columns=None, filters=(Filter("eq", "name", ""),))),
    ("filter-column-with-dot", [("eq.a.b", "1")], ReadQuery(columns=None, filters=(Filter("eq", "a.b", "1"),))),
    (
        "filter-range-same-column",
        [("gt.age", "1"), ("lt.age", "9")],
        ReadQuery(columns=None, filters=(Filter("gt", "age", "1"), Filter("lt", "age", "9"))),
    ),
    (
        "everything",
        [("select", "id"), ("eq.id", "123"), ("order", "id.desc"), ("limit", "5"), ("offset", "0")],
        ReadQuery(columns=("id",), filters=(Filter("eq", "id", "123"),), order=(Order("id", True),), limit=5),
    ),
]


@pytest.mark.parametrize(("params", "expected"), [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES])
def test_parse_read(params: Params, expected: ReadQuery) -> None:
    assert parse_read(params) == expected


def test_default_limit_is_configurable() -> None:
    assert parse_read([], default_limit=25).limit == 25


READ_ERRORS: list[tuple[str, Params, str, str]] = [
    ("unknown-param", [("foo", "1")], "unknown_parameter", "unknown parameter 'foo'"),
    ("return-on-read", [("return", "minimal")], "unknown_parameter", "'return'"),
    ("unknown-op", [("equals.id", "1")], "unknown_operator", "unknown filter operator 'equals'"),
    ("op-case-sensitive", [("EQ.id", "1")], "unknown_operator", "'EQ'"),
    ("empty-op", [(".id", "1")], "unknown_operator", "operator ''"),
    ("empty-filter-column", [("eq.", "1")], "invalid_parameter", "names no column"),
    ("limit-over-max", [("limit", "1001")], "limit_too_large", "maximum of 1000"),
    ("limit-negative", [("limit", "-1")], "invalid_parameter", "non-negative integer"),
    ("limit-not-int", [("limit", "ten")], "invalid_parameter", "non-negative integer"),
    ("limit-float", [("limit", "1.5")], "invalid_parameter", "non-negative integer"),
    ("limit-plus-sign", [("limit", "+5")], "invalid_parameter", "non-negative integer"),
    ("limit-blank", [("limit", "")], "invalid_parameter", "non-negative integer"),
    ("limit-underscore", [("limit", "1_0")], "invalid_parameter", "non-negative integer"),
    ("limit-unicode-digit", [("limit", "\u0665")], "invalid_parameter", "non-negative integer"),
    ("offset-negative", [("offset", "-3")], "invalid_parameter", "offset must be"),
    ("offset-beyond-int8", [("offset", "9223372036854775808")], "invalid_parameter", "offset must be"),
    ("limit-twice", [("limit", "1"), ("limit", "2")], "invalid_parameter", "more than once"),
    ("select-empty", [("select", "")], "invalid_parameter", "empty column name"),
    ("select-empty-item", [("select", "a,,b")], "invalid_parameter", "empty column name"),
    ("select-star-and-cols", [("select", "*,a")], "invalid_parameter", "cannot be combined"),
    ("order-bad-direction", [("order", "a.up")], "invalid_parameter", "a.up"),
    ("order-empty", [("order", "")], "invalid_parameter", "empty column name"),
    ("order-empty-column", [("order", ".desc")], "invalid_parameter", "empty column name"),
    ("count-other", [("count", "planned")], "invalid_parameter", "only 'exact'"),
    ("in-empty", [("in.id", "")], "invalid_parameter", "at least one value"),
    ("in-unterminated", [("in.id", '"a,b')], "invalid_parameter", "unterminated"),
    ("in-junk-after-quote", [("in.id", '"a"b')], "invalid_parameter", "followed by a comma"),
    ("in-stray-quote", [("in.id", 'a"b')], "invalid_parameter", "quote the whole item"),
]


@pytest.mark.parametrize(("params", "code", "fragment"), [c[1:] for c in READ_ERRORS], ids=[c[0] for c in READ_ERRORS])
def test_parse_read_rejects(params: Params, code: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_read(params)
    assert caught.value.code == code
    assert fragment in caught.value.message
    assert caught.value.status == 400


def test_limit_error_names_the_configured_max() -> None:
    with pytest.raises(BadRequest, match="maximum of 50") as caught:
        parse_read([("limit", "51")], max_limit=50)
    assert caught.value.details == {"parameter": "limit", "max": 50}


IN_CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("single", "a", ("a",)),
    ("plain", "a,b,c", ("a", "b", "c")),
    ("quoted-comma", '"a,b",c', ("a,b", "c")),
    ("quoted-last", 'c,"a,b"', ("c", "a,b")),
    ("escaped-quote", r'"say \"hi\""', ('say "hi"',)),
    ("escaped-backslash", r'"a\\b"', ("a\\b",)),
    ("quoted-empty", '""', ("",)),
    ("empty-middle", "a,,b", ("a", "", "b")),
    ("trailing-comma", "a,", ("a", "")),
    ("spaces-are-data", " a , b ", (" a ", " b ")),
    ("injection-is-data", "1); DROP TABLE t;--", ("1); DROP TABLE t;--",)),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in IN_CASES], ids=[c[0] for c in IN_CASES])
def test_in_list_items(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_read([("in.name", raw)]).filters == (Filter("in", "name", expected),)


WRITE_CASES: list[tuple[str, Params, bool, WriteQuery]] = [
    ("default-minimal", [("eq.id", "1")], True, WriteQuery((Filter("eq", "id", "1"),), returning=False)),
    ("representation", [("return", "representation")], True, WriteQuery((), returning=True)),
    ("minimal", [("return", "minimal")], False, WriteQuery((), returning=False)),
    ("insert-no-filters", [], False, WriteQuery((), returning=False)),
]


@pytest.mark.parametrize(
    ("params", "allow_filters", "expected"), [c[1:] for c in WRITE_CASES], ids=[c[0] for c in WRITE_CASES]
)
def test_parse_write(params: Params, allow_filters: bool, expected: WriteQuery) -> None:
    assert parse_write(params, allow_filters=allow_filters) == expected


WRITE_ERRORS: list[tuple[str, Params, bool, str]] = [
    ("read-param", [("limit", "1")], True, "unknown_parameter"),
    ("select-param", [("select", "*")], True, "unknown_parameter"),
    ("bad-return", [("return", "all")], True, "invalid_parameter"),
    ("filter-on-insert", [("eq.id", "1")], False, "unknown_parameter"),
    ("return-twice", [("return", "minimal"), ("return", "minimal")], True, "invalid_parameter"),
]


@pytest.mark.parametrize(
    ("params", "allow_filters", "code"), [c[1:] for c in WRITE_ERRORS], ids=[c[0] for c in WRITE_ERRORS]
)
def test_parse_write_rejects(params: Params, allow_filters: bool, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_write(params, allow_filters=allow_filters)
    assert caught.value.code == code


def test_parse_filters_keeps_order_and_allows_return() -> None:
    params = [("gte.age", "18"), ("return", "representation"), ("in.id", '1,"2"')]
    assert parse_filters(params) == (Filter("gte", "age", "18"), Filter("in", "id", ("1", "2")))


# --- properties -------------------------------------------------------------------------------

_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["select", "limit", "offset", "order", "count", "return"]),
    st.builds(lambda op, col: f"{op}.{col}", st.sampled_from(sorted(FILTER_OPS)), st.text(max_size=8)),
)
_pairs = st.lists(st.tuples(_keys, st.text(max_size=20)), max_size=6)


@given(_pairs)
def test_parse_read_only_fails_with_bad_request(params: Params) -> None:
    try:
        parsed = parse_read(params)
    except BadRequest as exc:
        assert exc.status == 400 and exc.message
        return
    assert 0 <= parsed.limit <= 1000
    assert all(f.column and f.op in FILTER_OPS for f in parsed.filters)
    assert all(isinstance(f.value, tuple) == (f.op == "in") for f in parsed.filters)


@given(_pairs)
def test_parse_filters_only_fails_with_bad_request(params: Params) -> None:
    try:
        parse_filters(params)
    except BadRequest:
        pass


def _quote_item(item: str) -> str:
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(st.text(max_size=10), min_size=1, max_size=6))
def test_quoted_in_items_round_trip(items: list[str]) -> None:
    raw = ",".join(_quote_item(i) for i in items)
    assert parse_read([("in.c", raw)]).filters[0].value == tuple(items)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=',"'), max_size=10), min_size=1, max_size=6))
def test_unquoted_in_items_split_on_commas(items: list[str]) -> None:
    raw = ",".join(items)
    if raw == "":
        return  # an empty value is rejected, covered above
    assert parse_read([("in.c", raw)]).filters[0].value == tuple(items)
