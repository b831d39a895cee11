"""SQL builder of /v1/db: exact shapes, errors, PostgreSQL-validity (pglast) and injection properties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pglast.parser import parse_sql_json

from appliance.errors import AtlasError, BadRequest, NotFound
from appliance.gateway.query import FILTER_OPS, Filter, Order, ReadQuery, parse_filters, parse_read
from appliance.gateway.schema import ColumnInfo, SchemaSnapshot, TableInfo
from appliance.gateway.sqlgen import (
    MAX_PLANS_PER_TABLE,
    Statement,
    build_count,
    build_delete,
    build_insert,
    build_select,
    build_update,
)

EVIL = "Robert'); DROP TABLE students;--"


def c(name: str, type_name: str, udt: str, *, pk: bool = False, default: bool = False) -> ColumnInfo:
    return ColumnInfo(name, type_name, udt, nullable=not pk, has_default=default, is_pk=pk)


ITEMS = TableInfo(
    "public",
    "items",
    "table",
    (
        c("id", "integer", "int4", pk=True, default=True),
        c("name", "text", "text"),
        c("age", "integer", "int4"),
        c("ip", "inet", "inet"),
        c("tags", "text[]", "_text"),
        c('we"ird', "text", "text"),
        c(EVIL, "text", "text"),
        c("_r", "integer", "int4"),
    ),
)
VIEW = TableInfo("app", "Active View", "view", (c("id", "bigint", "int8"), c("label", "text", "text")))
ALL_ITEMS = '"id", "name", "age", "ip", "tags", "we""ird", "Robert\'); DROP TABLE students;--", "_r"'


def read(*pairs: tuple[str, str]) -> ReadQuery:
    return parse_read(list(pairs))


def assert_valid(statement: Statement) -> dict[str, Any]:
    """PostgreSQL's parser accepts it as ONE statement whose $n are exactly 1..len(params)."""
    tree = json.loads(parse_sql_json(statement.sql))
    assert len(tree["stmts"]) == 1
    numbers = {node["number"] for node in _nodes(tree, "ParamRef")}
    assert numbers == set(range(1, len(statement.params) + 1))
    return dict(tree)


def _nodes(tree: object, kind: str) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == kind:
                yield value
            yield from _nodes(value, kind)
    elif isinstance(tree, list):
        for item in tree:
            yield from _nodes(item, kind)


_NAME_KEYS = {"sval", "relname", "schemaname", "aliasname", "ctename", "name", "colname"}


def _names(tree: object) -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in _NAME_KEYS and isinstance(value, str):
                yield value
            yield from _names(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _names(item)


_SQL_WORDS = {"_r", "_w", "coalesce", "json_agg", "count", "text", "json", "pg_catalog", "[]", "inet"}
_SQL_WORDS |= {"=", "<>", "<", "<=", ">", ">=", "~~", "~~*"}
_BUILDER_LITERALS = [{"sval": {"sval": "[]"}}, {"ival": {"ival": 1}}]


def assert_no_client_text(statement: Statement, table: TableInfo) -> None:
    """Every name in the parse tree is a column/table of the snapshot or the builder's own word,
    and the only literals are the builder's ('[]', RETURNING 1): client text is only in parameters."""
    tree = assert_valid(statement)
    allowed = {col.name for col in table.columns} | {table.schema, table.name} | _SQL_WORDS
    assert set(_names(tree)) <= allowed
    for const in _nodes(tree, "A_Const"):
        literal = {key: value for key, value in const.items() if key != "location"}
        assert literal in _BUILDER_LITERALS, const


# --- exact shapes -----------------------------------------------------------------------------

SELECT_CASES: list[tuple[str, ReadQuery, str, tuple[object, ...]]] = [
    (
        "star-default-order",
        read(),
        f'SELECT {ALL_ITEMS} FROM "public"."items" ORDER BY "id" ASC LIMIT $1 OFFSET $2',
        (100, 0),
    ),
    (
        "columns-order-paging",
        read(("select", "name,age"), ("order", "age.desc"), ("limit", "10"), ("offset", "20")),
        'SELECT "name", "age" FROM "public"."items" ORDER BY "age" DESC, "id" ASC LIMIT $1 OFFSET $2',
        (10, 20),
    ),
    (
        "order-by-pk-not-repeated",
        read(("select", "id"), ("order", "id.desc")),
        'SELECT "id" FROM "public"."items" ORDER BY "id" DESC LIMIT $1 OFFSET $2',
        (100, 0),
    ),
    *[
        (
            f"op-{op}",
            read(("select", "id"), (f"{op}.age", "5")),
            f'SELECT "id" FROM "public"."items" WHERE "age" {sql} $1 ORDER BY "id" ASC LIMIT $2 OFFSET $3',
            (5, 100, 0),
        )
        for op, sql in [("eq", "="), ("neq", "<>"), ("lt", "<"), ("lte", "<="), ("gt", ">"), ("gte", ">=")]
    ],
    *[
        (
            f"op-{op}",
            read(("select", "id"), (f"{op}.age", "1%")),
            f'SELECT "id" FROM "public"."items" WHERE "age"::text {op.upper()} $1 ORDER BY "id" ASC LIMIT $2 OFFSET $3',
            ("1%", 100, 0),
        )
        for op in ("like", "ilike")
    ],
    (
        "op-in",
        read(("select", "id"), ("in.age", "1,2,3")),
        'SELECT "id" FROM "public"."items" WHERE "age" = ANY($1) ORDER BY "id" ASC LIMIT $2 OFFSET $3',
        ([1, 2, 3], 100, 0),
    ),
    (
        "unknown-type-as-text",
        read(("select", "id"), ("eq.ip", "10.0.0.1"), ("in.ip", "1.1.1.1,2.2.2.2")),
        'SELECT "id" FROM "public"."items" WHERE "ip" = $1::text::inet AND "ip" = ANY($2::text[]::inet[]) '
        'ORDER BY "id" ASC LIMIT $3 OFFSET $4',
        ("10.0.0.1", ["1.1.1.1", "2.2.2.2"], 100, 0),
    ),
    (
        "array-literal-filter",
        read(("select", "id"), ("eq.tags", "{a,b}")),
        'SELECT "id" FROM "public"."items" WHERE "tags" = $1::text::text[] ORDER BY "id" ASC LIMIT $2 OFFSET $3',
        ("{a,b}", 100, 0),
    ),
    (
        "range-and-weird-names",
        read(("select", 'we"ird'), ("gt.age", "1"), ("lt.age", "9"), (f"eq.{EVIL}", EVIL)),
        'SELECT "we""ird" FROM "public"."items" WHERE "age" > $1 AND "age" < $2 AND '
        '"Robert\'); DROP TABLE students;--" = $3 ORDER BY "id" ASC LIMIT $4 OFFSET $5',
        (1, 9, EVIL, 100, 0),
    ),
]


@pytest.mark.parametrize(("query", "inner", "params"), [s[1:] for s in SELECT_CASES], ids=[s[0] for s in SELECT_CASES])
def test_build_select(query: ReadQuery, inner: str, params: tuple[object, ...]) -> None:
    statement = build_select(ITEMS, query)
    assert statement.sql == f"SELECT coalesce(json_agg(_r.*), '[]'::json)::text FROM ({inner}) _r"
    assert statement.params == params
    assert_no_client_text(statement, ITEMS)


def test_select_on_keyless_view_has_no_default_order() -> None:
    statement = build_select(VIEW, read(("order", "label")))
    assert statement.sql == (
        "SELECT coalesce(json_agg(_r.*), '[]'::json)::text FROM "
        '(SELECT "id", "label" FROM "app"."Active View" ORDER BY "label" ASC LIMIT $1 OFFSET $2) _r'
    )
    assert_valid(statement)


def test_build_count() -> None:
    statement = build_count(ITEMS, read(("gte.age", "18"), ("like.name", "a%")).filters)
    assert statement == Statement(
        'SELECT count(*) FROM "public"."items" WHERE "age" >= $1 AND "name"::text LIKE $2', (18, "a%")
    )
    assert build_count(ITEMS, ()).sql == 'SELECT count(*) FROM "public"."items"'
    assert_no_client_text(statement, ITEMS)


SELECT_ERRORS: list[tuple[str, ReadQuery, str]] = [
    ("unknown-select", read(("select", "id,nope")), "nope"),
    ("unknown-filter", read(("eq.nope", "1")), "nope"),
    ("unknown-order", read(("order", "nope.desc")), "nope"),
    ("case-matters", read(("select", "ID")), "ID"),
    ("stale-dotted", read(("eq.items.id", "1")), "items.id"),
]


@pytest.mark.parametrize(("query", "column"), [s[1:] for s in SELECT_ERRORS], ids=[s[0] for s in SELECT_ERRORS])
def test_select_unknown_column(query: ReadQuery, column: str) -> None:
    with pytest.raises(BadRequest) as caught:
        build_select(ITEMS, query)
    assert caught.value.code == "unknown_column"
    assert caught.value.details == {"column": column, "table": "items"}
    assert f"column '{column}' does not exist on table 'items'" == caught.value.message


FILTER_ERRORS: list[tuple[str, Filter, str]] = [
    ("bad-int", Filter("eq", "age", "abc"), "invalid_value"),
    ("bad-int-in-list", Filter("in", "age", ("1", "x")), "invalid_value"),
    ("in-on-array", Filter("in", "tags", ("a",)), "unsupported_filter"),
    ("nul-in-like", Filter("like", "name", "a\x00"), "invalid_value"),
]


@pytest.mark.parametrize(("f", "code"), [s[1:] for s in FILTER_ERRORS], ids=[s[0] for s in FILTER_ERRORS])
def test_filter_errors(f: Filter, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        build_select(ITEMS, ReadQuery(columns=None, filters=(f,)))
    assert caught.value.code == code


def test_same_shape_gives_byte_identical_sql() -> None:
    def shape(age: str, names: str, limit: str) -> Statement:
        return build_select(ITEMS, read(("gt.age", age), ("in.name", names), ("limit", limit)))

    first, second = shape("1", "a", "5"), shape("99", '"x,y",z,w', "500")
    assert first.sql == second.sql
    assert first.params != second.params


def test_a_shape_is_planned_once_per_table_snapshot() -> None:
    table = TableInfo("public", "t", "table", (c("id", "integer", "int4", pk=True), c("n", "text", "text")))
    first = build_select(table, read(("eq.id", "1")))
    second = build_select(table, read(("eq.id", "2")))
    assert second.sql is first.sql and len(table.plans) == 1
    assert (first.params, second.params) == ((1, 100, 0), (2, 100, 0))
    with pytest.raises(BadRequest) as caught:  # values are still checked on a known shape
        build_select(table, read(("eq.id", "two")))
    assert caught.value.code == "invalid_value"
    # The next snapshot (the column was dropped) starts without plans: the shape is refused.
    without_n = TableInfo("public", "t", "table", (c("id", "integer", "int4", pk=True),))
    build_select(table, read(("eq.n", "x")))
    with pytest.raises(BadRequest) as caught:
        build_select(without_n, read(("eq.n", "x")))
    assert caught.value.code == "unknown_column"


def test_plans_per_table_are_bounded() -> None:
    table = TableInfo("public", "t", "table", (c("id", "integer", "int4", pk=True),))
    for limit_filters in range(MAX_PLANS_PER_TABLE + 10):
        build_select(table, read(*[("gte.id", "1")] * (limit_filters + 1)))
    assert 0 < len(table.plans) <= MAX_PLANS_PER_TABLE


@pytest.mark.parametrize(
    "type_name",
    ["inet; DROP TABLE t", "inet -- swallow the rest", "inet) OR (true", "inet, 1", "int4 /*", "", "(SELECT 1)"],
)
def test_unusable_type_name_fails_loudly(type_name: str) -> None:
    table = TableInfo("public", "t", "table", (c("x", type_name, "inet"),))
    with pytest.raises(AtlasError) as caught:
        build_select(table, read(("eq.x", "1")))
    assert caught.value.status == 500 and caught.value.code == "schema_error"


@pytest.mark.parametrize("type_name", ["numeric(10,2)[]", 'public."My Type"', "character varying(20)", "bit(3)"])
def test_catalog_type_names_are_accepted(type_name: str) -> None:
    table = TableInfo("public", "t", "table", (c("x", type_name, "opaque"),))
    statement = build_select(table, read(("eq.x", "v")))
    assert f'"x" = $1::text::{type_name}' in statement.sql
    assert_valid(statement)


# --- insert -----------------------------------------------------------------------------------

RETURN_ITEMS = f"RETURNING {ALL_ITEMS}) SELECT coalesce(json_agg(_w.*), '[]'::json)::text FROM _w"


def test_insert_heterogeneous_rows_use_default() -> None:
    rows: list[object] = [{"age": 3, "name": "a"}, {"ip": "10.0.0.1"}, {}]
    [statement] = build_insert(ITEMS, rows, returning=True)
    assert statement.sql == (
        'WITH _w AS (INSERT INTO "public"."items" ("name", "age", "ip") VALUES ($1, $2, DEFAULT), '
        f"(DEFAULT, DEFAULT, $3::text::inet), (DEFAULT, DEFAULT, DEFAULT) {RETURN_ITEMS}"
    )
    assert statement.params == ("a", 3, "10.0.0.1")
    assert_no_client_text(statement, ITEMS)


def test_insert_without_returning_counts() -> None:
    [statement] = build_insert(ITEMS, [{"tags": ["a", EVIL]}], returning=False)
    assert statement == Statement(
        'WITH _w AS (INSERT INTO "public"."items" ("tags") VALUES ($1) RETURNING 1) SELECT count(*) FROM _w',
        (["a", EVIL],),
    )
    assert_no_client_text(statement, ITEMS)


def test_insert_all_empty_rows_default_first_column() -> None:
    [statement] = build_insert(ITEMS, [{}, {}], returning=False)
    assert statement.sql.startswith('WITH _w AS (INSERT INTO "public"."items" ("id") VALUES (DEFAULT), (DEFAULT) ')
    assert statement.params == ()
    assert_valid(statement)


def test_insert_splits_at_parameter_limit() -> None:
    rows: list[object] = [{"name": str(i), "age": i} for i in range(5)]
    statements = build_insert(ITEMS, rows, returning=False, max_params=4)
    assert [s.params for s in statements] == [("0", 0, "1", 1), ("2", 2, "3", 3), ("4", 4)]
    assert statements[0].sql == statements[1].sql
    for statement in statements:
        assert_valid(statement)


def test_insert_default_split_stays_under_postgres_limit() -> None:
    rows: list[object] = [{"name": "n", "age": 1, "_r": 2} for _ in range(1000)]
    statements = build_insert(ITEMS, rows, returning=True, max_rows=1000, max_params=32767)
    assert len(statements) == 1 and len(statements[0].params) == 3000
    split = build_insert(ITEMS, rows, returning=True, max_params=1000)
    assert [len(s.params) for s in split] == [999, 999, 999, 3]


INSERT_ERRORS: list[tuple[str, object, str]] = [
    ("not-a-list", {"name": "a"}, "invalid_body"),
    ("empty", [], "invalid_body"),
    ("row-not-object", [{"name": "a"}, ["a"]], "invalid_body"),
    ("unknown-key", [{"name": "a"}, {"nope": 1}], "unknown_column"),
    ("bad-value", [{"age": "old"}], "invalid_value"),
    ("too-many", [{}] * 1001, "too_many_rows"),
]


@pytest.mark.parametrize(("rows", "code"), [s[1:] for s in INSERT_ERRORS], ids=[s[0] for s in INSERT_ERRORS])
def test_insert_rejects(rows: object, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        build_insert(ITEMS, rows, returning=False)
    assert caught.value.code == code


def test_insert_unknown_key_names_row() -> None:
    with pytest.raises(BadRequest) as caught:
        build_insert(ITEMS, [{"name": "a"}, {"nope": 1}], returning=False)
    assert caught.value.details == {"column": "nope", "table": "items", "row": 1}


def test_insert_max_rows_is_configurable() -> None:
    with pytest.raises(BadRequest, match="at most 2 rows"):
        build_insert(ITEMS, [{}, {}, {}], returning=False, max_rows=2)


# --- update / delete --------------------------------------------------------------------------


def test_update_sets_in_table_order_then_filters() -> None:
    statement = build_update(
        ITEMS, {"ip": "1.1.1.1", "name": None}, parse_filters([("eq.id", "7"), ("return", "minimal")]), returning=True
    )
    assert statement.sql == (
        f'WITH _w AS (UPDATE "public"."items" SET "name" = $1, "ip" = $2::text::inet WHERE "id" = $3 {RETURN_ITEMS}'
    )
    assert statement.params == (None, "1.1.1.1", 7)
    assert_no_client_text(statement, ITEMS)


def test_delete_shapes() -> None:
    filters = parse_filters([("in.id", "1,2"), ("neq.name", EVIL)])
    counted = build_delete(ITEMS, filters, returning=False)
    assert counted == Statement(
        'WITH _w AS (DELETE FROM "public"."items" WHERE "id" = ANY($1) AND "name" <> $2 RETURNING 1) '
        "SELECT count(*) FROM _w",
        ([1, 2], EVIL),
    )
    rows = build_delete(ITEMS, filters, returning=True)
    assert rows.sql == f'WITH _w AS (DELETE FROM "public"."items" WHERE "id" = ANY($1) AND "name" <> $2 {RETURN_ITEMS}'
    for statement in (counted, rows):
        assert_no_client_text(statement, ITEMS)


WRITE_ERRORS: list[tuple[str, str, object, tuple[Filter, ...], str]] = [
    ("update-no-filter", "update", {"name": "a"}, (), "filter_required"),
    ("delete-no-filter", "delete", None, (), "filter_required"),
    ("update-empty-values", "update", {}, (Filter("eq", "id", "1"),), "invalid_body"),
    ("update-values-not-object", "update", ["a"], (Filter("eq", "id", "1"),), "invalid_body"),
    ("update-unknown-column", "update", {"nope": 1}, (Filter("eq", "id", "1"),), "unknown_column"),
    ("update-bad-value", "update", {"age": "x"}, (Filter("eq", "id", "1"),), "invalid_value"),
    ("delete-unknown-filter", "delete", None, (Filter("eq", "nope", "1"),), "unknown_column"),
]


@pytest.mark.parametrize(
    ("action", "values", "filters", "code"), [s[1:] for s in WRITE_ERRORS], ids=[s[0] for s in WRITE_ERRORS]
)
def test_write_rejects(action: str, values: object, filters: tuple[Filter, ...], code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        if action == "update":
            build_update(ITEMS, values, filters, returning=False)
        else:
            build_delete(ITEMS, filters, returning=False)
    assert caught.value.code == code


# --- schema snapshot --------------------------------------------------------------------------


def test_snapshot_lookup_and_public_dict() -> None:
    source = {"items": ITEMS, "Active View": VIEW}
    snapshot = SchemaSnapshot(source)
    source.clear()  # the snapshot keeps its own copy
    assert snapshot.table("items") is ITEMS
    with pytest.raises(NotFound) as caught:
        snapshot.table("nope")
    assert (caught.value.status, caught.value.code, caught.value.details) == (404, "table_not_found", {"table": "nope"})
    public = snapshot.to_public_dict()
    assert [t["name"] for t in public["tables"]] == ["Active View", "items"]
    assert public["tables"][1]["primaryKey"] == ["id"]
    assert public["tables"][1]["columns"][0] == {
        "name": "id",
        "type": "integer",
        "nullable": False,
        "primaryKey": True,
        "hasDefault": True,
    }
    assert public["tables"][0] == {
        "name": "Active View",
        "kind": "view",
        "columns": [
            {"name": "id", "type": "bigint", "nullable": True, "primaryKey": False, "hasDefault": False},
            {"name": "label", "type": "text", "nullable": True, "primaryKey": False, "hasDefault": False},
        ],
        "primaryKey": [],
    }


def test_table_info_refuses_duplicate_columns() -> None:
    with pytest.raises(ValueError, match="twice"):
        TableInfo("public", "t", "table", (c("a", "text", "text"), c("a", "text", "text")))


def test_table_column_lookup() -> None:
    assert ITEMS.column("age") == c("age", "integer", "int4")
    assert ITEMS.column("AGE") is None
    assert ITEMS.primary_key == ("id",)


# --- properties: no client text outside parameters --------------------------------------------

INJECTIONS = ["'; DROP TABLE x;--", '"', "\x00", "💥", "$1", "1) OR (1=1", "*/", "/*", "\\", "''", '";--', EVIL]
_column_names = st.sampled_from([col.name for col in ITEMS.columns]) | st.sampled_from(INJECTIONS) | st.text()
_values = st.sampled_from(INJECTIONS) | st.text() | st.integers().map(str) | st.sampled_from(["1,2", '"a,b",c'])
_keys = (
    st.sampled_from(["select", "limit", "offset", "order", "count"])
    | st.builds(lambda op, name: f"{op}.{name}", st.sampled_from(sorted(FILTER_OPS)), _column_names)
    | st.text()
)
_select_values = st.lists(_column_names, min_size=1, max_size=3).map(",".join)
_order_values = st.lists(
    st.builds(lambda n, d: n + d, _column_names, st.sampled_from(["", ".asc", ".desc"])), min_size=1, max_size=2
).map(",".join)
_pair = st.one_of(
    st.tuples(_keys, _values),
    st.tuples(st.just("select"), _select_values),
    st.tuples(st.just("order"), _order_values),
)


@settings(max_examples=300)
@given(st.lists(_pair, max_size=6))
def test_any_query_string_is_rejected_or_parameterised(params: list[tuple[str, str]]) -> None:
    try:
        query = parse_read(params)
        statements = [build_select(ITEMS, query), build_count(ITEMS, query.filters)]
    except (BadRequest, NotFound):
        return
    for statement in statements:
        assert_no_client_text(statement, ITEMS)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.sampled_from(INJECTIONS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=6,
)
_body_objects = st.dictionaries(_column_names, _json, max_size=4)


@settings(max_examples=200)
@given(st.lists(_body_objects, max_size=4), st.booleans())
def test_any_insert_body_is_rejected_or_parameterised(rows: list[dict[str, object]], returning: bool) -> None:
    try:
        statements = build_insert(ITEMS, rows, returning=returning)
    except BadRequest:
        return
    for statement in statements:
        assert_no_client_text(statement, ITEMS)


@settings(max_examples=200)
@given(_body_objects, st.lists(st.tuples(_keys, _values), max_size=4), st.booleans())
def test_any_update_or_delete_is_rejected_or_parameterised(
    values: dict[str, object], params: list[tuple[str, str]], returning: bool
) -> None:
    for build in (
        lambda filters: build_update(ITEMS, values, filters, returning=returning),
        lambda filters: build_delete(ITEMS, filters, returning=returning),
    ):
        try:
            statement = build(parse_filters(params))
        except BadRequest:
            continue
        assert_no_client_text(statement, ITEMS)


@given(st.lists(st.tuples(st.sampled_from(["eq", "gt", "in"]), st.integers(0, 10**6)), min_size=1, max_size=4))
def test_sql_depends_on_shape_not_values(shape: list[tuple[str, int]]) -> None:
    def build(offset: int) -> Statement:
        filters = tuple(
            Filter(op, "age", (str(v + offset),) * 2 if op == "in" else str(v + offset))  # type: ignore[arg-type]
            for op, v in shape
        )
        return build_select(ITEMS, ReadQuery(columns=None, filters=filters, order=(Order("name"),), limit=offset))

    assert build(0).sql == build(7).sql


# Valid shapes over text columns with hostile values: these must all BUILD, so the property
# above cannot pass merely because random input is rejected early.
_TEXT_COLUMNS = st.sampled_from(["name", 'we"ird', EVIL])
_hostile = st.sampled_from([i for i in INJECTIONS if "\x00" not in i]) | st.text(
    alphabet=st.characters(blacklist_characters="\x00")
)
_scalar_filter = st.builds(
    lambda op, name, value: (f"{op}.{name}", value),
    st.sampled_from(sorted(FILTER_OPS - {"in"})),
    _TEXT_COLUMNS,
    _hostile,
)
_in_filter = st.builds(
    lambda name, items: (
        f"in.{name}",
        ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items),
    ),
    _TEXT_COLUMNS,
    st.lists(_hostile, min_size=1, max_size=3),
)
_valid_extras = st.lists(
    st.sampled_from(
        [("select", f'name,we"ird,{EVIL}'), ("order", f"{EVIL}.desc,age"), ("limit", "7"), ("count", "exact")]
    ),
    unique=True,
)


@settings(max_examples=300)
@given(st.lists(_scalar_filter | _in_filter, min_size=1, max_size=5), _valid_extras)
def test_hostile_values_on_valid_shapes_are_parameters(
    filters: list[tuple[str, str]], extras: list[tuple[str, str]]
) -> None:
    query = parse_read([*extras, *filters])
    for statement in (build_select(ITEMS, query), build_count(ITEMS, query.filters)):
        assert_no_client_text(statement, ITEMS)
        for f in query.filters:
            assert (list(f.value) if f.op == "in" else f.value) in statement.params
    for statement in (
        build_update(ITEMS, {"name": filters[0][1]}, query.filters, returning=True),
        build_delete(ITEMS, query.filters, returning=False),
        *build_insert(ITEMS, [{"name": v, EVIL: v} for _, v in filters], returning=True),
    ):
        assert_no_client_text(statement, ITEMS)
