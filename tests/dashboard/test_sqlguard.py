"""The SQL guard: what the editor accepts, what it refuses (with the tricks people try), and the
read-only SELECT check used by analytics views."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.dashboard.sqlguard import EditorStatement, check_editor_sql, check_readonly_select
from appliance.errors import BadRequest, StartupError

# (id, sql, kind, returns_rows, is_select)
ALLOWED: list[tuple[str, str, str, bool, bool]] = [
    ("select-semicolon-in-string", "SELECT 'a;b' AS x;", "SelectStmt", True, True),
    ("select-semicolon-in-quoted-ident", 'SELECT 1 AS "a;b"', "SelectStmt", True, True),
    ("dollar-quoted-do", "SELECT $q$DO $$ BEGIN PERFORM 1; END $$$q$ AS s", "SelectStmt", True, True),
    ("comment-drop-database", "/* DROP DATABASE x; */ SELECT 1 -- DROP DATABASE y;", "SelectStmt", True, True),
    ("denied-name-in-string", "SELECT 'pg_read_file(''/etc/passwd'')' AS s", "SelectStmt", True, True),
    ("column-named-role", "SELECT role, t.name FROM t", "SelectStmt", True, True),
    ("values", "VALUES (1, 'a'), (2, 'b')", "SelectStmt", True, True),
    ("table", "TABLE t", "SelectStmt", True, True),
    ("select-into", "SELECT * INTO t_copy FROM t", "SelectStmt", False, False),
    ("pg-sleep-within-timeout", "SELECT pg_sleep(1)", "SelectStmt", True, True),
    ("pg-sleep-for-within-timeout", "SELECT pg_sleep_for('2 seconds')", "SelectStmt", True, True),
    (
        "create-table",
        "CREATE TABLE notes (id bigserial PRIMARY KEY, body text DEFAULT now()::text)",
        "CreateStmt",
        False,
        False,
    ),
    ("insert-returning", "INSERT INTO t (id, name) VALUES (1, 'x') RETURNING id", "InsertStmt", True, False),
    ("update-returning", "UPDATE t SET name = 'y' WHERE id = 1 RETURNING *", "UpdateStmt", True, False),
    ("delete", "DELETE FROM t WHERE id = 1", "DeleteStmt", False, False),
    (
        "create-policy",
        "CREATE POLICY own ON t FOR SELECT USING (name = current_user)",
        "CreatePolicyStmt",
        False,
        False,
    ),
    ("enable-rls", "ALTER TABLE t ENABLE ROW LEVEL SECURITY", "AlterTableStmt", False, False),
    ("create-view", "CREATE VIEW v AS SELECT id, upper(name) AS n FROM t", "ViewStmt", False, False),
    (
        "create-function-plpgsql-trigger",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  NEW.name := lower(NEW.name);\n  IF NEW.id < 0 THEN RAISE EXCEPTION 'bad id %', NEW.id; END IF;\n"
        "  RETURN NEW;\nEND $$",
        "CreateFunctionStmt",
        False,
        False,
    ),
    (
        "create-function-sql",
        "CREATE FUNCTION two() RETURNS int LANGUAGE sql AS 'SELECT 1; SELECT 2'",
        "CreateFunctionStmt",
        False,
        False,
    ),
    (
        "create-function-atomic",
        "CREATE FUNCTION three() RETURNS int LANGUAGE sql RETURN 3",
        "CreateFunctionStmt",
        False,
        False,
    ),
    ("create-index", "CREATE INDEX ON t (lower(name))", "IndexStmt", False, False),
    ("explain-select", "EXPLAIN SELECT * FROM t", "ExplainStmt", True, False),
    ("show", "SHOW search_path", "VariableShowStmt", True, False),
    ("vacuum", "VACUUM t", "VacuumStmt", False, False),
    ("vacuum-full", "VACUUM FULL t", "VacuumStmt", False, False),
    ("grant-select", "GRANT SELECT ON t TO anon", "GrantStmt", False, False),
    ("listen", "LISTEN changes", "ListenStmt", False, False),
    ("notify", "NOTIFY changes, 'hello'", "NotifyStmt", False, False),
    ("set-search-path", "SET search_path TO public", "VariableSetStmt", False, False),
    ("call", "CALL p()", "CallStmt", False, False),
    ("comment-on", "COMMENT ON TABLE t IS 'DROP DATABASE; pg_read_file'", "CommentStmt", False, False),
]


@pytest.mark.parametrize(
    ("sql", "kind", "returns_rows", "is_select"), [a[1:] for a in ALLOWED], ids=[a[0] for a in ALLOWED]
)
def test_allowed(sql: str, kind: str, returns_rows: bool, is_select: bool) -> None:
    result = check_editor_sql(sql)
    assert (result.kind, result.returns_rows, result.is_select) == (kind, returns_rows, is_select)


FN = "CREATE FUNCTION f() RETURNS int LANGUAGE"
PLPGSQL = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN {} RETURN 1; END $$"

# (id, sql, rule)
DENIED: list[tuple[str, str, str]] = [
    ("two-statements", "SELECT 1; SELECT 2", "multiple_statements"),
    ("stacked-drop", "SELECT 'a;b'; DROP TABLE t", "multiple_statements"),
    ("after-comment", "SELECT 1; -- c\nDELETE FROM t", "multiple_statements"),
    ("copy-to-program", "COPY t TO PROGRAM 'curl http://x'", "copy_program"),
    ("copy-from-program", "copy t from program 'cat /etc/passwd'", "copy_program"),
    ("copy-query-to-program", "COPY (SELECT 1) TO PROGRAM 'sh'", "copy_program"),
    ("copy-program-in-sql-body", f"{FN} sql AS $$ COPY t TO PROGRAM 'sh' $$", "copy_program"),
    ("copy-program-in-plpgsql", PLPGSQL.format("COPY t TO PROGRAM 'sh';"), "copy_program"),
    ("copy-from-file", "COPY t FROM '/etc/passwd'", "copy_file"),
    ("copy-to-file", "COPY t TO '/tmp/out.csv' WITH (FORMAT csv)", "copy_file"),
    ("copy-to-stdout", "COPY t TO STDOUT", "copy_stdio"),
    ("copy-from-stdin", "COPY t FROM STDIN", "copy_stdio"),
    ("do-block", "DO $$ BEGIN PERFORM 1; END $$", "do_block"),
    ("do-string", "do 'begin null; end'", "do_block"),
    ("do-after-comment", "/* harmless */ Do $x$ BEGIN END $x$", "do_block"),
    ("do-language", "DO LANGUAGE plpgsql $$ BEGIN END $$", "do_block"),
    ("create-extension", "CREATE EXTENSION pgcrypto", "extension"),
    ("create-extension-quoted", 'create extension if not exists "uuid-ossp"', "extension"),
    ("alter-extension", "ALTER EXTENSION pgcrypto UPDATE", "extension"),
    ("drop-extension", "DROP EXTENSION pgcrypto", "extension"),
    ("alter-system", "ALTER SYSTEM SET work_mem = '1GB'", "alter_system"),
    ("alter-system-reset", "alter system reset all", "alter_system"),
    ("set-role", "SET ROLE postgres", "set_role"),
    ("set-role-quoted", 'SET "role" TO postgres', "set_role"),
    ("set-local-role", "SET LOCAL ROLE postgres", "set_role"),
    ("set-session-role", "set session role postgres", "set_role"),
    ("reset-role", "RESET ROLE", "set_role"),
    ("session-authorization", "SET SESSION AUTHORIZATION postgres", "set_role"),
    ("reset-session-authorization", "RESET SESSION AUTHORIZATION", "set_role"),
    ("set-config-role", "SELECT set_config('role', 'postgres', false)", "set_role"),
    ("set-config-qualified-upper", "SELECT PG_CATALOG.SET_CONFIG('ROLE', 'x', true)", "set_role"),
    ("set-config-in-where", "SELECT 1 FROM t WHERE set_config('session_authorization', 'x', true) IS NULL", "set_role"),
    ("set-config-dynamic-name", "SELECT set_config(name, 'x', true) FROM t", "set_role"),
    ("function-set-role", f"{FN} sql SET role = postgres AS 'SELECT 1'", "set_role"),
    ("alter-function-set-role", "ALTER FUNCTION f() SET role = postgres", "set_role"),
    ("plpgsql-static-set-role", PLPGSQL.format("SET ROLE postgres;"), "set_role"),
    ("plpgsql-set-config-role", PLPGSQL.format("PERFORM set_config('role', 'postgres', true);"), "set_role"),
    ("update-pg-settings", "UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'", "set_role"),
    ("pg-read-file", "SELECT pg_read_file('/etc/passwd')", "server_files"),
    ("schema-qualified", "SELECT pg_catalog.pg_read_file('/etc/passwd')", "server_files"),
    ("quoted-ident", "SELECT \"pg_read_file\"('/etc/passwd')", "server_files"),
    ("upper-case", "SELECT PG_READ_FILE('/etc/passwd')", "server_files"),
    ("comment-inside-call", "SELECT pg_read_file/* x */('/etc/passwd')", "server_files"),
    ("read-binary-file", "SELECT pg_read_binary_file('/etc/passwd')", "server_files"),
    ("ls-dir", "SELECT * FROM pg_ls_dir('.')", "server_files"),
    ("ls-waldir", "SELECT * FROM pg_ls_waldir()", "server_files"),
    ("stat-file", "SELECT pg_stat_file('postgresql.conf')", "server_files"),
    ("lo-import", "SELECT lo_import('/etc/passwd')", "server_files"),
    ("lo-export", "SELECT lo_export(16400, '/tmp/x')", "server_files"),
    ("in-subquery", "SELECT * FROM (SELECT pg_read_file('/etc/passwd')) AS s", "server_files"),
    ("in-cte", "WITH x AS (SELECT pg_read_file('/etc/passwd') AS f) SELECT f FROM x", "server_files"),
    ("in-where-exists", "SELECT 1 WHERE EXISTS (SELECT pg_ls_dir('.'))", "server_files"),
    ("in-default", "CREATE TABLE x (f text DEFAULT pg_read_file('/etc/passwd'))", "server_files"),
    ("in-check", "CREATE TABLE x (f text CHECK (pg_read_file(f) <> ''))", "server_files"),
    ("in-view", "CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')", "server_files"),
    ("in-schema-element", "CREATE SCHEMA s CREATE VIEW v AS SELECT pg_read_file('x')", "server_files"),
    ("in-sql-function-body", f"{FN} sql AS $$ SELECT length(pg_read_file('/etc/passwd')) $$", "server_files"),
    ("in-sql-body-quoted", f"{FN} sql AS 'SELECT 1; SELECT length(\"pg_read_file\"(''x''))'", "server_files"),
    ("in-atomic-body", f"{FN} sql BEGIN ATOMIC SELECT length(pg_read_file('x')); END", "server_files"),
    ("in-plpgsql-body", PLPGSQL.format("PERFORM pg_read_file('/etc/passwd');"), "server_files"),
    ("in-plpgsql-comment", PLPGSQL.format("-- pg_read_file\n"), "server_files"),
    ("explain-analyze", "EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')", "server_files"),
    ("field-notation", "SELECT ('/etc/passwd'::text).pg_read_file", "server_files"),
    ("aggregate-sfunc", "CREATE AGGREGATE a(boolean) (SFUNC = pg_read_file, STYPE = text)", "server_files"),
    ("cast-with-function", "CREATE CAST (text AS int) WITH FUNCTION pg_read_file(text)", "server_files"),
    ("terminate-backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "server_process"),
    ("cancel-backend", "SELECT pg_cancel_backend(1)", "server_process"),
    ("reload-conf", "SELECT pg_reload_conf()", "server_process"),
    ("rotate-logfile", "select pg_rotate_logfile()", "server_process"),
    ("promote", "SELECT pg_promote()", "server_process"),
    ("dblink", "SELECT * FROM dblink('dbname=control', 'SELECT 1') AS r(x int)", "cross_database"),
    ("dblink-exec", "SELECT dblink_exec('dbname=control', 'DROP TABLE x')", "cross_database"),
    ("postgres-fdw", "SELECT postgres_fdw_disconnect_all()", "cross_database"),
    ("create-server", "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'control')", "cross_database"),
    ("create-fdw", "CREATE FOREIGN DATA WRAPPER w", "cross_database"),
    ("user-mapping", "CREATE USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (user 'postgres')", "cross_database"),
    ("import-foreign-schema", "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO public", "cross_database"),
    ("foreign-table", "CREATE FOREIGN TABLE ft (x int) SERVER s", "cross_database"),
    ("drop-server", "DROP SERVER s", "cross_database"),
    ("subscription", "CREATE SUBSCRIPTION s CONNECTION 'dbname=control' PUBLICATION p", "cross_database"),
    ("pg-sleep-long", "SELECT pg_sleep(10)", "sleep"),
    ("pg-sleep-fraction", "SELECT pg_sleep(5.5)", "sleep"),
    ("pg-sleep-string", "SELECT pg_sleep('60')", "sleep"),
    ("pg-sleep-cast", "SELECT pg_sleep(600::float8)", "sleep"),
    ("pg-sleep-qualified-upper", "SELECT PG_CATALOG.PG_SLEEP(100)", "sleep"),
    ("pg-sleep-column", "SELECT pg_sleep(id) FROM t", "sleep"),
    ("pg-sleep-expression", "SELECT pg_sleep(1 + 1)", "sleep"),
    ("pg-sleep-in-cte", "WITH s AS (SELECT pg_sleep(30)) SELECT * FROM s", "sleep"),
    ("pg-sleep-for-long", "SELECT pg_sleep_for('1 minute')", "sleep"),
    ("pg-sleep-for-typed", "SELECT pg_sleep_for(interval '00:00:10')", "sleep"),
    ("pg-sleep-for-unknown-form", "SELECT pg_sleep_for('P1D')", "sleep"),
    ("pg-sleep-until", "SELECT pg_sleep_until('2099-01-01')", "sleep"),
    ("pg-sleep-in-sql-body", f"{FN} sql AS 'SELECT pg_sleep(100)'", "sleep"),
    ("pg-sleep-field-notation", "SELECT (100).pg_sleep", "sleep"),
    ("query-to-xml", "SELECT query_to_xml('SELECT 1', true, false, '')", "dynamic_sql"),
    ("ts-stat", "SELECT * FROM ts_stat('SELECT v FROM t')", "dynamic_sql"),
    ("ts-rewrite-query", "SELECT ts_rewrite('a'::tsquery, 'SELECT q, r FROM aliases')", "dynamic_sql"),
    ("plpgsql-execute", PLPGSQL.format("EXECUTE 'DROP TABLE t';"), "dynamic_sql"),
    ("plpgsql-execute-format", PLPGSQL.format("EXECUTE format('SELECT %s', 1);"), "dynamic_sql"),
    (
        "plpgsql-for-in-execute",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE r record; "
        "BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; RETURN 1; END $$",
        "dynamic_sql",
    ),
    ("create-database", "CREATE DATABASE other", "database"),
    ("drop-database", "DROP DATABASE IF EXISTS control", "database"),
    ("alter-database", "ALTER DATABASE app SET work_mem = '1GB'", "database"),
    ("rename-database", "ALTER DATABASE app RENAME TO other", "database"),
    ("create-role", "CREATE ROLE r LOGIN PASSWORD 'x'", "role_management"),
    ("create-user", "CREATE USER u", "role_management"),
    ("create-group", "CREATE GROUP g", "role_management"),
    ("alter-role", "ALTER ROLE anon WITH SUPERUSER", "role_management"),
    ("alter-user-set", "ALTER USER anon SET search_path = x", "role_management"),
    ("rename-role", "ALTER ROLE anon RENAME TO x", "role_management"),
    ("drop-role", "DROP ROLE anon", "role_management"),
    ("drop-user", "DROP USER IF EXISTS anon", "role_management"),
    ("grant-role", "GRANT postgres TO anon", "grant_role"),
    ("grant-server-files", "GRANT pg_read_server_files TO CURRENT_USER", "grant_role"),
    ("revoke-role", "REVOKE postgres FROM anon", "grant_role"),
    ("alter-table-owner", "ALTER TABLE t OWNER TO anon", "owner_change"),
    ("alter-schema-owner", "ALTER SCHEMA public OWNER TO anon", "owner_change"),
    ("alter-function-owner", "ALTER FUNCTION f() OWNER TO anon", "owner_change"),
    ("reassign-owned", "REASSIGN OWNED BY a TO b", "owner_change"),
    ("schema-authorization", "CREATE SCHEMA s AUTHORIZATION anon", "owner_change"),
    ("load", "LOAD 'plpython3'", "load"),
    ("checkpoint", "CHECKPOINT", "checkpoint"),
    ("begin", "BEGIN", "transaction_control"),
    ("start-transaction", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "transaction_control"),
    ("commit", "COMMIT", "transaction_control"),
    ("end", "END", "transaction_control"),
    ("rollback", "ROLLBACK", "transaction_control"),
    ("abort", "abort", "transaction_control"),
    ("savepoint", "SAVEPOINT a", "transaction_control"),
    ("release", "RELEASE SAVEPOINT a", "transaction_control"),
    ("rollback-to", "ROLLBACK TO SAVEPOINT a", "transaction_control"),
    ("prepare-transaction", "PREPARE TRANSACTION 'x'", "prepare_transaction"),
    ("commit-prepared", "COMMIT PREPARED 'x'", "prepare_transaction"),
    ("create-language", "CREATE LANGUAGE mylang HANDLER plpgsql_call_handler", "language"),
    ("create-trusted-language", "CREATE TRUSTED PROCEDURAL LANGUAGE x HANDLER h", "language"),
    ("drop-language", "DROP LANGUAGE plpgsql", "language"),
    ("function-language-c", f"{FN} c AS 'libc.so.6', 'system'", "untrusted_language"),
    ("function-internal", f"{FN} internal AS 'int4in'", "untrusted_language"),
    ("function-plpython", f"{FN} plpython3u AS $$ import os $$", "untrusted_language"),
    ("procedure-plperlu", "CREATE PROCEDURE p() LANGUAGE plperlu AS $$ system('id') $$", "untrusted_language"),
    ("security-definer", f"{FN} sql SECURITY DEFINER AS 'SELECT 1'", "security_definer"),
    ("external-security-definer", f"{FN} sql EXTERNAL SECURITY DEFINER AS 'SELECT 1'", "security_definer"),
    ("alter-security-definer", "ALTER FUNCTION f() SECURITY DEFINER", "security_definer"),
    ("prepare", "PREPARE q AS SELECT 1", "session_state"),
    ("execute", "EXECUTE q", "session_state"),
    ("deallocate", "DEALLOCATE ALL", "session_state"),
    ("discard", "DISCARD ALL", "session_state"),
    ("declare-cursor", "DECLARE c CURSOR FOR SELECT 1", "session_state"),
    ("tablespace", "CREATE TABLESPACE x LOCATION '/tmp'", "tablespace"),
    ("event-trigger", "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", "event_trigger"),
    (
        "plpgsql-uncompilable-set-config",
        PLPGSQL.format("unknown_var.x := 1; PERFORM set_config('a', 'b', true);"),
        "plpgsql_unverifiable",
    ),
]


@pytest.mark.parametrize(("sql", "rule"), [d[1:] for d in DENIED], ids=[d[0] for d in DENIED])
def test_denied(sql: str, rule: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_editor_sql(sql)
    error = caught.value
    assert (error.status, error.code, error.details["rule"]) == (400, "sql_rejected", rule), error.message
    assert isinstance(error.details["position"], int)


def test_extensions_can_be_allowed_but_not_the_dangerous_ones() -> None:
    assert check_editor_sql("CREATE EXTENSION pgcrypto", allow_extensions=True).kind == "CreateExtensionStmt"
    assert check_editor_sql("DROP EXTENSION pgcrypto", allow_extensions=True).kind == "DropStmt"
    for name in ("dblink", "postgres_fdw", "file_fdw", "plpython3u"):
        with pytest.raises(BadRequest) as caught:
            check_editor_sql(f"CREATE EXTENSION {name}", allow_extensions=True)
        assert caught.value.details["rule"] == "extension_denied"


def test_sleep_limit_follows_the_timeout() -> None:
    check_editor_sql("SELECT pg_sleep(8)", timeout_s=10)
    with pytest.raises(BadRequest):
        check_editor_sql("SELECT pg_sleep(3)", timeout_s=2)


def test_position_points_at_the_offending_call() -> None:
    sql = "/* é */ SELECT id, PG_READ_FILE('x') FROM t"
    with pytest.raises(BadRequest) as caught:
        check_editor_sql(sql)
    assert caught.value.details["position"] == sql.index("PG_READ_FILE") + 1


def test_sql_keeps_the_text_without_trailing_semicolon() -> None:
    result = check_editor_sql("  SELECT 'x;' ;  -- done\n")
    assert result == EditorStatement("SELECT 'x;'", "SelectStmt", True, True)


@pytest.mark.parametrize("sql", ["", "   \n", "-- only a comment", ";;", "/* c */ ;"])
def test_empty_sql_is_a_bad_request(sql: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_editor_sql(sql)
    assert (caught.value.status, caught.value.code) == (400, "sql_empty")


def test_syntax_error_carries_parser_message_and_position() -> None:
    with pytest.raises(BadRequest) as caught:
        check_editor_sql("SELECT 'é' FORM t")
    assert caught.value.code == "sql_syntax_error"
    assert 'syntax error at or near "t"' in caught.value.message
    assert caught.value.details == {"position": 17}


def test_syntax_error_in_sql_function_body() -> None:
    with pytest.raises(BadRequest) as caught:
        check_editor_sql("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELEC 1'")
    assert caught.value.code == "sql_syntax_error"


SQLISH = st.sampled_from(
    [
        "SELECT", "pg_read_file", "(", ")", "'x'", "$$", "$a$", ";", "--", "/*", "*/", "DO", "COPY", "FROM",
        "PROGRAM", "CREATE", "FUNCTION", "f()", "RETURNS", "int", "LANGUAGE", "plpgsql", "sql", "AS", "BEGIN",
        "END", "WITH", "x", ",", ".", "pg_sleep", "1e400", "'nan'", "\"role\"", "SET", "ROLE", "EXECUTE", "\x00",
    ]
)  # fmt: skip


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(SQLISH, max_size=30).map(" ".join)))
def test_random_text_only_ever_raises_bad_request(sql: str) -> None:
    for check in (check_editor_sql, check_readonly_select):
        try:
            check(sql)
        except BadRequest:
            pass


# ------------------------------------------------------------- read-only analytics SELECT

# (id, sql, relations)
READONLY_OK: list[tuple[str, str, set[tuple[str, str]]]] = [
    ("plain", "SELECT id, lower(email) FROM users WHERE created_at > now() - interval '1 day'", {("public", "users")}),
    (
        "qualified",
        "SELECT count(*) FROM public.orders o JOIN users u ON u.id = o.user_id",
        {("public", "orders"), ("public", "users")},
    ),
    ("cte-not-a-table", "WITH recent AS (SELECT * FROM orders) SELECT sum(total) FROM recent", {("public", "orders")}),
    ("cte-shadows-only-inside", "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders", {("public", "orders")}),
    (
        "recursive-cte",
        "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
        set(),
    ),
    (
        "subquery-and-union",
        "SELECT id FROM a UNION SELECT id FROM (SELECT id FROM b) s",
        {("public", "a"), ("public", "b")},
    ),
    (
        "json",
        "SELECT data->>'k', jsonb_array_length(data->'a'), coalesce(x, 0)::text FROM events",
        {("public", "events")},
    ),
    ("window", "SELECT date_trunc('day', at), row_number() OVER (ORDER BY at) FROM events", {("public", "events")}),
]


@pytest.mark.parametrize(("sql", "relations"), [r[1:] for r in READONLY_OK], ids=[r[0] for r in READONLY_OK])
def test_readonly_select_allowed(sql: str, relations: set[tuple[str, str]]) -> None:
    assert check_readonly_select(sql).relations == relations


# (id, sql, rule)
READONLY_DENIED: list[tuple[str, str, str]] = [
    ("insert", "INSERT INTO t VALUES (1)", "not_select"),
    ("two-statements", "SELECT 1; SELECT 2", "multiple_statements"),
    ("modifying-cte", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "data_modifying"),
    ("select-into", "SELECT * INTO x FROM t", "select_into"),
    ("for-update", "SELECT * FROM t FOR UPDATE", "locking"),
    ("for-share-in-subquery", "SELECT * FROM (SELECT * FROM t FOR SHARE) s", "locking"),
    ("nextval", "SELECT nextval('s')", "function_not_allowed"),
    ("pg-sleep", "SELECT pg_sleep(1)", "function_not_allowed"),
    ("user-function", "SELECT my_func(id) FROM t", "function_not_allowed"),
    ("qualified-builtin-elsewhere", "SELECT public.lower(name) FROM t", "function_not_allowed"),
    ("other-schema", "SELECT * FROM private.secrets", "relation_not_allowed"),
    ("catalog", "SELECT * FROM pg_catalog.pg_authid", "relation_not_allowed"),
    ("unqualified-catalog", "SELECT * FROM pg_shadow", "relation_not_allowed"),
    ("cross-database", "SELECT * FROM control.public.keys", "relation_not_allowed"),
    ("field-notation", "SELECT ('/etc/passwd'::text).pg_read_file", "server_files"),
]


@pytest.mark.parametrize(("sql", "rule"), [d[1:] for d in READONLY_DENIED], ids=[d[0] for d in READONLY_DENIED])
def test_readonly_select_denied(sql: str, rule: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_readonly_select(sql)
    assert (caught.value.code, caught.value.details["rule"]) == ("sql_rejected", rule)


def test_readonly_allowed_schemas_are_configurable() -> None:
    result = check_readonly_select("SELECT * FROM analytics.daily", allowed_schemas=frozenset({"analytics"}))
    assert result.relations == {("analytics", "daily")}
    with pytest.raises(BadRequest):
        check_readonly_select("SELECT * FROM daily", allowed_schemas=frozenset({"analytics"}))


# ------------------------------------------- classification checked against real PostgreSQL

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, name text, role text);
CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';
CREATE ROLE anon;
"""


@pytest.fixture(scope="module")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from appliance.pg.embedded import EmbeddedPostgres

    base: Path = tmp_path_factory.mktemp("sqlguard-pg")
    try:
        server = EmbeddedPostgres(base / "data", base / "pw")
        server.ensure_initialized()
        port = server.start()
    except (StartupError, OSError) as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    dsn = f"postgresql://postgres:{server.password}@127.0.0.1:{port}/postgres"
    asyncio.run(_run_setup(dsn))
    try:
        yield dsn
    finally:
        server.stop()


async def _run_setup(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
    finally:
        await conn.close()


@pytest.mark.parametrize("sql", [a[1] for a in ALLOWED], ids=[a[0] for a in ALLOWED])
async def test_returns_rows_matches_postgres(pg_dsn: str, sql: str) -> None:
    """PostgreSQL describes a prepared statement's result columns: rows come back iff it has any."""
    import asyncpg

    conn: Any = await asyncpg.connect(pg_dsn)
    try:
        statement = await conn.prepare(sql)
        assert check_editor_sql(sql).returns_rows == bool(statement.get_attributes())
    finally:
        await conn.close()
