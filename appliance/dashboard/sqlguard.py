"""Understand SQL typed by a person before it runs: the SQL editor and analytics views.

Pure: parses with pglast (PostgreSQL's own parser) and walks the whole tree, never string
matching on the raw text, so comments, dollar quoting, ``;`` inside strings, quoted and
schema-qualified names and case variations are seen exactly as the server will see them.

The guard is one layer: the editor also runs as the project's owner role (not a superuser),
inside one transaction with ``statement_timeout``. The policy, and the checks of single
parse nodes, live in :mod:`appliance.dashboard.sqlguard_rules`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast

from appliance.dashboard import sqlguard_rules as rules
from appliance.dashboard.sqlguard_rules import Context, reject
from appliance.errors import BadRequest

__all__ = ["EditorStatement", "ReadonlySelect", "check_editor_sql", "check_readonly_select"]


@dataclass(frozen=True)
class EditorStatement:
    sql: str  # the statement as typed, without the trailing semicolon
    kind: str  # pglast node name, e.g. "SelectStmt"
    returns_rows: bool
    is_select: bool


@dataclass(frozen=True)
class ReadonlySelect:
    sql: str
    relations: frozenset[tuple[str, str]]  # (schema, table) pairs; CTE names are not tables


_PARSE_FAILURES = (pglast.parser.ParseError, RecursionError, MemoryError, ValueError)


def _parse(sql: str, what: str = "") -> tuple[ast.RawStmt, ...]:
    try:
        return tuple(pglast.parse_sql(sql))
    except pglast.parser.ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        message = f"{what}{exc.args[0] if exc.args else exc}"
        # 1-based, like PostgreSQL's own error positions (the parser counts from 0).
        position = location + 1 if location is not None else None
        raise BadRequest(message, code="sql_syntax_error", details={"position": position}) from None
    except _PARSE_FAILURES as exc:
        # Pathological nesting or bytes the C parser cannot take: refuse, never crash.
        raise BadRequest("the SQL could not be parsed", code="sql_syntax_error") from exc


def _parse_one(sql: str) -> tuple[ast.Node, str, int]:
    """The single statement in ``sql``: (node, its text, its offset)."""
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest("the SQL is empty", code="sql_empty")
    statements = _parse(sql)
    if not statements:
        raise BadRequest("the SQL is empty (only comments or semicolons)", code="sql_empty")
    if len(statements) > 1:
        message = "only one statement can be run at a time in the SQL editor"
        reject("multiple_statements", message, statements[1].stmt_location)
    raw = statements[0]
    if raw.stmt is None:
        raise BadRequest("the SQL is empty", code="sql_empty")
    return raw.stmt, _statement_text(sql, raw), raw.stmt_location or 0


def _statement_text(source: str, raw: ast.RawStmt) -> str:
    # The parser's own span of the statement: it excludes the terminating semicolon and any
    # comment after it; stmt_len 0 means "to the end of the input".
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(source)
    return source[start:end].strip()


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    if cls not in _SLOTS:
        names = [n for k in cls.__mro__ for n in getattr(k, "__slots__", ()) if n != "ancestors"]
        _SLOTS[cls] = tuple(dict.fromkeys(names))
    return _SLOTS[cls]


def _walk(root: object) -> Iterator[ast.Node]:
    """Every node under ``root``, pre-order; iterative so deep expressions cannot overflow."""
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(reversed([getattr(item, name, None) for name in _slots(type(item))]))
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))


# ------------------------------------------------------------------------ the SQL editor


def check_editor_sql(sql: str, *, timeout_s: float = 5.0, allow_extensions: bool = False) -> EditorStatement:
    """Accept one statement for the SQL editor, or raise BadRequest naming the broken rule.

    Codes: ``sql_empty``, ``sql_syntax_error`` (parser message and position), ``sql_rejected``
    (details ``{"rule", "position"}``, position a 1-based character offset into ``sql``). The row cap
    (``rules.EDITOR_MAX_ROWS``) and the timeout itself are the executor's to enforce.
    """
    stmt, text, location = _parse_one(sql)
    _check_tree(stmt, Context(timeout_s, allow_extensions, text, location))
    is_select = isinstance(stmt, ast.SelectStmt) and stmt.intoClause is None
    return EditorStatement(text, type(stmt).__name__, _returns_rows(stmt), is_select)


def _returns_rows(stmt: ast.Node) -> bool:
    if isinstance(stmt, ast.SelectStmt):
        return stmt.intoClause is None  # SELECT INTO creates a table and returns nothing
    if isinstance(stmt, (ast.VariableShowStmt, ast.ExplainStmt)):
        return True
    # DML with RETURNING; pglast 8 (PostgreSQL 18 grammar) calls it returningClause.
    returning = getattr(stmt, "returningClause", None)
    return bool(getattr(returning, "exprs", None) or getattr(stmt, "returningList", None))


def _check_tree(root: ast.Node, ctx: Context) -> None:
    for node in _walk(root):
        rules.check_node(node, ctx)
        if isinstance(node, ast.CreateFunctionStmt):
            _check_create_function(node, ctx)


def _check_create_function(node: ast.CreateFunctionStmt, ctx: Context) -> None:
    rules.check_function_options(node.options, node, ctx)
    options = {o.defname: o for o in node.options or () if isinstance(o, ast.DefElem)}
    language = "sql"  # BEGIN ATOMIC / RETURN bodies need no LANGUAGE clause
    if "language" in options:
        language = str(getattr(options["language"].arg, "sval", "")).lower()
    if language not in rules.TRUSTED_FUNCTION_LANGUAGES:
        message = f"functions in language {language!r} are not allowed; use sql or plpgsql"
        reject("untrusted_language", message, ctx.position(node))
    body_option = options.get("as")
    parts = body_option.arg if body_option is not None else None
    if not isinstance(parts, (tuple, list)) or not parts:
        return  # BEGIN ATOMIC / RETURN bodies are part of the tree and are walked with it
    body = str(getattr(parts[0], "sval", ""))
    position = ctx.fixed_position
    if position is None:
        position = getattr(body_option, "arg_location", None) or ctx.position(node)
    if language == "sql":
        for raw in _parse(body, "syntax error in the function body: "):
            if raw.stmt is not None:
                body_ctx = Context(ctx.timeout_s, ctx.allow_extensions, _statement_text(body, raw), 0, position)
                _check_tree(raw.stmt, body_ctx)
    else:
        _check_plpgsql(ctx.text, body, Context(ctx.timeout_s, ctx.allow_extensions, body, 0, position))


def _check_plpgsql(create_sql: str, body: str, ctx: Context) -> None:
    """Check a PL/pgSQL body.

    Conservative by design, because PL/pgSQL is not SQL: first, any *mention* of a denied
    function name anywhere in the body (even in a comment or a string) refuses it. Then the
    body is compiled with libpg_query's PL/pgSQL parser: any EXECUTE (dynamic SQL, whose text
    cannot be known in advance) is refused, and every embedded statement and expression is
    parsed and checked with the editor's rules. When that parser cannot compile the body (it
    has no catalog), the body is refused only if it mentions EXECUTE, set_config or a role.
    """
    mentioned = rules.mentioned_denied_function(body)
    if mentioned is not None:
        rule, why = rules.denied_function(mentioned) or ("function", "")
        reject(rule, f"the PL/pgSQL body mentions {mentioned}(), which is not allowed: {why}", ctx.position(None))
    try:
        tree = pglast.parse_plpgsql(create_sql)
    except (*_PARSE_FAILURES, json.JSONDecodeError):
        if rules.PLPGSQL_SUSPECT_WORDS.search(body):
            reject("plpgsql_unverifiable", "this PL/pgSQL body could not be verified as safe", ctx.position(None))
        return
    for key, value in _json_items(tree):
        if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "dynquery"):
            message = "EXECUTE of dynamic SQL in PL/pgSQL is not allowed in the SQL editor"
            reject("dynamic_sql", message, ctx.position(None))
        if key == "PLpgSQL_expr" and isinstance(value, dict):
            _check_plpgsql_expr(str(value.get("query", "")), int(value.get("parseMode", 0)), ctx)


def _json_items(value: Any) -> Iterator[tuple[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _check_plpgsql_expr(query: str, mode: int, ctx: Context) -> None:
    # parseMode 0 is a whole statement, 2 an expression, 3-5 an assignment "target := expr".
    if mode >= 3:
        target_end = query.find(":=")
        query = query[target_end + 2 :] if target_end >= 0 else query.partition("=")[2]
    text = query if mode == 0 else f"SELECT {query}"
    try:
        statements = pglast.parse_sql(text)
    except _PARSE_FAILURES:
        if rules.PLPGSQL_SUSPECT_WORDS.search(query):
            reject("plpgsql_unverifiable", "this PL/pgSQL body could not be verified as safe", ctx.position(None))
        return
    for raw in statements:
        if raw.stmt is not None:
            _check_tree(raw.stmt, Context(ctx.timeout_s, ctx.allow_extensions, text, 0, ctx.fixed_position))


# ------------------------------------------------------------- read-only analytics SELECT

# Functions a read-only analytics SELECT may call. Chosen because they compute from their
# arguments alone: no table access by name, no side effects, no sleeping, no server state.
# Set-returning generators (generate_series) are left out because they manufacture rows.
READONLY_FUNCTIONS = frozenset(
    (
        # aggregates
        "count sum avg min max bool_and bool_or every array_agg string_agg json_agg jsonb_agg "
        "json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp "
        "percentile_cont percentile_disc mode corr covar_pop covar_samp regr_slope regr_intercept "
        # window functions
        "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value "
        "nth_value "
        # conditional
        "coalesce nullif greatest least "
        # date/time
        "now current_date current_time current_timestamp localtime localtimestamp clock_timestamp "
        "statement_timestamp transaction_timestamp date_trunc date_part extract age date_bin "
        "make_date make_time make_timestamp make_timestamptz make_interval to_timestamp to_date "
        "to_char justify_days justify_hours justify_interval isfinite timezone "
        # string
        "lower upper initcap length char_length character_length octet_length bit_length "
        "substr substring trim btrim ltrim rtrim replace concat concat_ws left right "
        "position strpos split_part reverse md5 starts_with format regexp_replace "
        "regexp_match regexp_matches regexp_split_to_array translate to_hex ascii chr quote_literal "
        "quote_ident "
        # math
        "abs ceil ceiling floor round trunc sign sqrt cbrt power pow exp ln log log10 mod div "
        "pi degrees radians width_bucket "
        # json / jsonb
        "to_json to_jsonb row_to_json array_to_json json_build_object jsonb_build_object "
        "json_build_array jsonb_build_array json_extract_path json_extract_path_text "
        "jsonb_extract_path jsonb_extract_path_text json_array_length jsonb_array_length "
        "json_typeof jsonb_typeof jsonb_pretty jsonb_set jsonb_insert jsonb_strip_nulls "
        "json_strip_nulls jsonb_path_exists jsonb_path_match jsonb_path_query_first "
        "json_array_elements json_array_elements_text jsonb_array_elements "
        "jsonb_array_elements_text json_each json_each_text jsonb_each jsonb_each_text "
        "json_object_keys jsonb_object_keys "
        # arrays and casts
        "array_length array_position array_to_string cardinality unnest cast"
    ).split()
)


def check_readonly_select(sql: str, *, allowed_schemas: frozenset[str] = frozenset({"public"})) -> ReadonlySelect:
    """Accept exactly one side-effect-free SELECT over tables in ``allowed_schemas``.

    Refuses data-modifying CTEs, SELECT INTO, FOR UPDATE/SHARE and any function outside
    ``READONLY_FUNCTIONS``. Unqualified names mean ``public``, except ``pg_*`` names, which
    PostgreSQL resolves in pg_catalog first. The guard cannot see user-defined operators or
    casts, nor tell a column from a function written as ``row.func``: run the query in a
    READ ONLY transaction with ``search_path`` set to the allowed schemas.
    """
    stmt, text, location = _parse_one(sql)
    ctx = Context(0.0, False, text, location)
    if not isinstance(stmt, ast.SelectStmt):
        reject("not_select", "only a SELECT statement is allowed here", ctx.position(stmt))
    for node in _walk(stmt):
        _check_readonly_node(node, ctx)
    return ReadonlySelect(text, frozenset(_relations(stmt, allowed_schemas, ctx)))


def _check_readonly_node(node: ast.Node, ctx: Context) -> None:
    if type(node).__name__.endswith("Stmt") and not isinstance(node, ast.SelectStmt):
        reject("data_modifying", "only plain SELECT is allowed here (no data-modifying CTEs)", ctx.position(node))
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        reject("select_into", "SELECT INTO is not allowed here", ctx.position(node))
    if isinstance(node, ast.SelectStmt) and node.lockingClause:
        reject("locking", "FOR UPDATE/SHARE is not allowed here", ctx.position(node))
    if isinstance(node, ast.FuncCall):
        names = [str(getattr(n, "sval", "")) for n in node.funcname or ()]
        if not names or names[-1].lower() not in READONLY_FUNCTIONS or names[:-1] not in ([], ["pg_catalog"]):
            reject("function_not_allowed", f"function {'.'.join(names)}() is not allowed here", ctx.position(node))
    elif isinstance(node, (ast.ColumnRef, ast.A_Indirection)):
        rules.check_field_notation(node, ctx)


def _relations(stmt: ast.SelectStmt, allowed: frozenset[str], ctx: Context) -> set[tuple[str, str]]:
    """(schema, table) of every relation read, honouring CTE scoping.

    A CTE name hides a table only inside the query that defines it; in a non-recursive WITH a
    CTE sees only the CTEs before it (so ``WITH t AS (SELECT * FROM t)`` reads the table t).
    """
    found: set[tuple[str, str]] = set()
    stack: list[tuple[object, frozenset[str]]] = [(stmt, frozenset())]
    while stack:
        item, scope = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend((child, scope) for child in item)
        elif isinstance(item, ast.RangeVar):
            relation = _relation(item, scope, allowed, ctx)
            if relation is not None:
                found.add(relation)
        elif isinstance(item, ast.SelectStmt) and item.withClause is not None:
            ctes = [c for c in item.withClause.ctes or () if isinstance(c, ast.CommonTableExpr)]
            names = [str(c.ctename) for c in ctes]
            for index, cte in enumerate(ctes):
                visible = names if item.withClause.recursive else names[:index]
                stack.append((cte.ctequery, scope | frozenset(visible)))
            inner = scope | frozenset(names)
            stack.extend((getattr(item, n, None), inner) for n in _slots(type(item)) if n != "withClause")
        elif isinstance(item, ast.Node):
            stack.extend((getattr(item, n, None), scope) for n in _slots(type(item)))
    return found


def _relation(
    node: ast.RangeVar, scope: frozenset[str], allowed: frozenset[str], ctx: Context
) -> tuple[str, str] | None:
    if node.catalogname:
        reject("relation_not_allowed", "references to other databases are not allowed", ctx.position(node))
    name, schema = str(node.relname), node.schemaname
    if schema is None and name in scope:
        return None  # a CTE, not a table
    if schema is None and name.startswith("pg_"):
        schema = "pg_catalog"  # pg_catalog is searched before public for unqualified names
    schema = schema or "public"
    if schema not in allowed:
        message = f"relation {schema}.{name} is outside the allowed schemas"
        reject("relation_not_allowed", message, ctx.position(node))
    return (schema, name)
