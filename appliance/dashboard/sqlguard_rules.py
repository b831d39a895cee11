"""The SQL guard's policy: what is refused, and the checks of single parse nodes.

Kept apart from parsing and tree walking (:mod:`appliance.dashboard.sqlguard`) so the policy
reads as a list. Function names match on their last name component, lower-cased, as
PostgreSQL resolves ``pg_catalog.pg_read_file``, ``"pg_read_file"`` and ``PG_READ_FILE`` alike;
a user function sharing such a name is refused too, the price of not needing the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from pglast import ast

from appliance.errors import BadRequest

# The editor's row cap; the executor enforces it, the guard only classifies statements.
EDITOR_MAX_ROWS = 5000

# Statement node class name -> (rule, message). Each of these is refused wherever it appears
# in the tree, not only at the top: CREATE SCHEMA, EXPLAIN and SQL function bodies nest
# statements.
DENIED_STATEMENTS: dict[str, tuple[str, str]] = {
    "DoStmt": ("do_block", "DO blocks are not allowed in the SQL editor"),
    "AlterSystemStmt": ("alter_system", "ALTER SYSTEM is not allowed in the SQL editor"),
    "CreatedbStmt": ("database", "CREATE DATABASE is not allowed in the SQL editor"),
    "DropdbStmt": ("database", "DROP DATABASE is not allowed in the SQL editor"),
    "AlterDatabaseStmt": ("database", "ALTER DATABASE is not allowed in the SQL editor"),
    "AlterDatabaseSetStmt": ("database", "ALTER DATABASE is not allowed in the SQL editor"),
    "AlterDatabaseRefreshCollStmt": ("database", "ALTER DATABASE is not allowed in the SQL editor"),
    "CreateRoleStmt": ("role_management", "CREATE ROLE/USER/GROUP is not allowed in the SQL editor"),
    "AlterRoleStmt": ("role_management", "ALTER ROLE/USER/GROUP is not allowed in the SQL editor"),
    "AlterRoleSetStmt": ("role_management", "ALTER ROLE/USER ... SET is not allowed in the SQL editor"),
    "DropRoleStmt": ("role_management", "DROP ROLE/USER/GROUP is not allowed in the SQL editor"),
    "GrantRoleStmt": ("grant_role", "granting or revoking role membership is not allowed in the SQL editor"),
    "AlterOwnerStmt": ("owner_change", "ALTER ... OWNER TO is not allowed in the SQL editor"),
    "ReassignOwnedStmt": ("owner_change", "REASSIGN OWNED is not allowed in the SQL editor"),
    "LoadStmt": ("load", "LOAD is not allowed in the SQL editor"),
    "CheckPointStmt": ("checkpoint", "CHECKPOINT is not allowed in the SQL editor"),
    "CreatePLangStmt": ("language", "CREATE LANGUAGE is not allowed in the SQL editor"),
    "CreateForeignServerStmt": ("cross_database", "CREATE SERVER is not allowed in the SQL editor"),
    "AlterForeignServerStmt": ("cross_database", "ALTER SERVER is not allowed in the SQL editor"),
    "CreateFdwStmt": ("cross_database", "CREATE FOREIGN DATA WRAPPER is not allowed in the SQL editor"),
    "AlterFdwStmt": ("cross_database", "ALTER FOREIGN DATA WRAPPER is not allowed in the SQL editor"),
    "CreateUserMappingStmt": ("cross_database", "CREATE USER MAPPING is not allowed in the SQL editor"),
    "AlterUserMappingStmt": ("cross_database", "ALTER USER MAPPING is not allowed in the SQL editor"),
    "DropUserMappingStmt": ("cross_database", "DROP USER MAPPING is not allowed in the SQL editor"),
    "ImportForeignSchemaStmt": ("cross_database", "IMPORT FOREIGN SCHEMA is not allowed in the SQL editor"),
    "CreateForeignTableStmt": ("cross_database", "CREATE FOREIGN TABLE is not allowed in the SQL editor"),
    "CreateSubscriptionStmt": ("cross_database", "CREATE SUBSCRIPTION is not allowed in the SQL editor"),
    "AlterSubscriptionStmt": ("cross_database", "ALTER SUBSCRIPTION is not allowed in the SQL editor"),
    "DropSubscriptionStmt": ("cross_database", "DROP SUBSCRIPTION is not allowed in the SQL editor"),
    "CreateTableSpaceStmt": ("tablespace", "tablespaces cannot be managed in the SQL editor"),
    "DropTableSpaceStmt": ("tablespace", "tablespaces cannot be managed in the SQL editor"),
    "AlterTableSpaceOptionsStmt": ("tablespace", "tablespaces cannot be managed in the SQL editor"),
    "CreateEventTrigStmt": ("event_trigger", "event triggers are not allowed in the SQL editor"),
    "AlterEventTrigStmt": ("event_trigger", "event triggers are not allowed in the SQL editor"),
    # Each request runs on a pooled connection inside its own transaction: prepared
    # statements and cursors would either vanish or leak into a stranger's request, and
    # DEALLOCATE/DISCARD would break the pool's own statement cache.
    "PrepareStmt": ("session_state", "PREPARE is not available in the SQL editor"),
    "ExecuteStmt": ("session_state", "EXECUTE is not available in the SQL editor"),
    "DeallocateStmt": ("session_state", "DEALLOCATE is not available in the SQL editor"),
    "DiscardStmt": ("session_state", "DISCARD is not available in the SQL editor"),
    "DeclareCursorStmt": ("session_state", "cursors are not available in the SQL editor"),
    "FetchStmt": ("session_state", "cursors are not available in the SQL editor"),
    "ClosePortalStmt": ("session_state", "cursors are not available in the SQL editor"),
}

# DROP <object type> refused, keyed by pglast ObjectType member name.
DENIED_DROPS: dict[str, tuple[str, str]] = {
    "OBJECT_FOREIGN_SERVER": ("cross_database", "DROP SERVER is not allowed in the SQL editor"),
    "OBJECT_FDW": ("cross_database", "DROP FOREIGN DATA WRAPPER is not allowed in the SQL editor"),
    "OBJECT_FOREIGN_TABLE": ("cross_database", "DROP FOREIGN TABLE is not allowed in the SQL editor"),
    "OBJECT_LANGUAGE": ("language", "DROP LANGUAGE is not allowed in the SQL editor"),
}

# RENAME of these object types is refused (ALTER DATABASE/ROLE ... RENAME TO).
DENIED_RENAMES: dict[str, tuple[str, str]] = {
    "OBJECT_DATABASE": ("database", "ALTER DATABASE is not allowed in the SQL editor"),
    "OBJECT_ROLE": ("role_management", "ALTER ROLE/USER/GROUP is not allowed in the SQL editor"),
    "OBJECT_LANGUAGE": ("language", "ALTER LANGUAGE is not allowed in the SQL editor"),
    "OBJECT_FOREIGN_SERVER": ("cross_database", "ALTER SERVER is not allowed in the SQL editor"),
    "OBJECT_FDW": ("cross_database", "ALTER FOREIGN DATA WRAPPER is not allowed in the SQL editor"),
    "OBJECT_TABLESPACE": ("tablespace", "tablespaces cannot be managed in the SQL editor"),
}

# Settings that switch identity; refused in SET/RESET, in CREATE FUNCTION ... SET and through
# set_config().
IDENTITY_SETTINGS = frozenset({"role", "session_authorization"})

# Extensions refused even when extensions are allowed: they reach other databases, the
# server's files, or add untrusted languages.
ALWAYS_DENIED_EXTENSIONS = frozenset(
    {
        "dblink",
        "postgres_fdw",
        "file_fdw",
        "adminpack",
        "plpython3u",
        "plpythonu",
        "plperlu",
        "pltclu",
    }
)

TRUSTED_FUNCTION_LANGUAGES = frozenset({"sql", "plpgsql"})

# Function name -> (rule, why). Matched on the last name component, lower-cased.
_FILE_FUNCTIONS = (
    "pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file pg_ls_logdir pg_ls_waldir pg_ls_tmpdir "
    "pg_ls_archive_statusdir pg_ls_logicalsnapdir pg_ls_logicalmapdir pg_ls_replslotdir "
    "pg_current_logfile lo_import lo_export pg_file_write pg_file_read pg_file_rename "
    "pg_file_unlink pg_file_sync pg_file_length pg_logdir_ls"
)
_PROCESS_FUNCTIONS = (
    "pg_terminate_backend pg_cancel_backend pg_signal_backend pg_reload_conf pg_rotate_logfile "
    "pg_logfile_rotate pg_promote pg_log_backend_memory_contexts pg_switch_wal "
    "pg_create_restore_point pg_backup_start pg_backup_stop pg_start_backup pg_stop_backup "
    "pg_wal_replay_pause pg_wal_replay_resume pg_create_physical_replication_slot "
    "pg_create_logical_replication_slot pg_drop_replication_slot pg_copy_physical_replication_slot "
    "pg_copy_logical_replication_slot pg_replication_slot_advance pg_logical_slot_get_changes "
    "pg_logical_slot_peek_changes pg_logical_slot_get_binary_changes "
    "pg_logical_slot_peek_binary_changes pg_logical_emit_message"
)
# These run a query given as a string, which the guard could not inspect.
_SQL_STRING_FUNCTIONS = "query_to_xml query_to_xmlschema query_to_xml_and_xmlschema ts_stat"

DENIED_FUNCTIONS: dict[str, tuple[str, str]] = {
    **{name: ("server_files", "it touches the server's files") for name in _FILE_FUNCTIONS.split()},
    **{name: ("server_process", "it controls server processes") for name in _PROCESS_FUNCTIONS.split()},
    **{name: ("dynamic_sql", "it runs SQL given as a string") for name in _SQL_STRING_FUNCTIONS.split()},
}
DENIED_FUNCTION_PREFIXES: dict[str, tuple[str, str]] = {
    "dblink": ("cross_database", "it reaches other databases"),
    "postgres_fdw": ("cross_database", "it reaches other databases"),
    "pg_file_": ("server_files", "it touches the server's files"),
    "pg_ls_": ("server_files", "it touches the server's files"),
}
SLEEP_FUNCTIONS = frozenset({"pg_sleep", "pg_sleep_for", "pg_sleep_until"})


def denied_function(name: str) -> tuple[str, str] | None:
    """(rule, why) if calling a function called ``name`` (last component) is refused."""
    lowered = name.lower()
    if lowered in DENIED_FUNCTIONS:
        return DENIED_FUNCTIONS[lowered]
    for prefix, verdict in DENIED_FUNCTION_PREFIXES.items():
        if lowered.startswith(prefix):
            return verdict
    if lowered in SLEEP_FUNCTIONS:
        return ("sleep", "it sleeps")
    return None


# Words that make a PL/pgSQL body suspect when its structure cannot be analysed.
PLPGSQL_SUSPECT_WORDS = re.compile(
    r"\b(execute|set_config|role|session_authorization|session\s+authorization)\b", re.IGNORECASE
)
_WORD = re.compile(r"[a-z_][a-z0-9_$]*", re.IGNORECASE)


def mentioned_denied_function(text: str) -> str | None:
    """The first denied function name that appears as a word in ``text``, if any."""
    for match in _WORD.finditer(text):
        if denied_function(match.group(0)) is not None:
            return match.group(0).lower()
    return None


_INTERVAL_UNITS = {
    **dict.fromkeys(("microsecond", "us"), 1e-6),
    **dict.fromkeys(("millisecond", "ms"), 1e-3),
    **dict.fromkeys(("second", "sec", "s"), 1.0),
    **dict.fromkeys(("minute", "min", "m"), 60.0),
    **dict.fromkeys(("hour", "hr", "h"), 3600.0),
    **dict.fromkeys(("day", "d"), 86400.0),
    **dict.fromkeys(("week", "w"), 604800.0),
    **dict.fromkeys(("month", "mon"), 2592000.0),
    **dict.fromkeys(("year", "y"), 31536000.0),
}
_INTERVAL_PART = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
_CLOCK = re.compile(r"\s*(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?\s*")


def interval_seconds(text: str) -> float | None:
    """Seconds in a simple interval literal ('5 seconds', '1 min 3 s', '00:00:05'), else None.

    Only the forms people actually type are understood; anything else returns None and the
    caller refuses it, which is the safe direction.
    """
    clock = _CLOCK.fullmatch(text)
    if clock:
        hours, minutes, seconds = clock.group(1), clock.group(2), clock.group(3) or "0"
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    total, pos = 0.0, 0
    while pos < len(text):
        part = _INTERVAL_PART.match(text, pos)
        if part is None or part.end() == pos:
            return None
        unit = part.group(2).lower()
        unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _INTERVAL_UNITS else unit
        if unit not in _INTERVAL_UNITS:
            return None
        total += float(part.group(1)) * _INTERVAL_UNITS[unit]
        pos = part.end()
    return total if text.strip() else None


# ------------------------------------------------------------ checks of single parse nodes


@dataclass(frozen=True)
class Context:
    timeout_s: float
    allow_extensions: bool
    text: str  # text of the statement being checked (function bodies: their own text)
    location: int  # where that statement starts, for nodes that carry no location
    fixed_position: int | None = None  # inside a function body: point at the body itself

    def position(self, node: object) -> int:
        if self.fixed_position is not None:
            return self.fixed_position
        location = getattr(node, "location", None)
        return location if isinstance(location, int) and location >= 0 else self.location


def reject(rule: str, message: str, position: int | None) -> NoReturn:
    """``position`` is the parser's 0-based offset; clients get 1-based, as PostgreSQL reports."""
    shown = position + 1 if position is not None else None
    raise BadRequest(message, code="sql_rejected", details={"rule": rule, "position": shown})


def last_name(names: object) -> str | None:
    if isinstance(names, (tuple, list)) and names and isinstance(names[-1], ast.String):
        return str(names[-1].sval)
    return None


def _enum_name(value: object) -> str:
    return str(getattr(value, "name", value))


def _constant(node: object) -> object:
    """The Python value of a literal (possibly cast), or None when it is not a constant."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        for attr in ("ival", "fval", "sval", "boolval"):
            if hasattr(node.val, attr):
                return getattr(node.val, attr)
    return None


def check_function_name(name: str, node: object, ctx: Context, how: str = "") -> None:
    verdict = denied_function(name)
    if verdict is not None:
        rule, why = verdict
        reject(rule, f"function {name.lower()}() is not allowed in the SQL editor{how}: {why}", ctx.position(node))


def _check_func_call(node: ast.FuncCall, ctx: Context) -> None:
    name = (last_name(node.funcname) or "").lower()
    args = tuple(node.args or ())
    if name in SLEEP_FUNCTIONS:
        _check_sleep(name, args, node, ctx)
    elif name == "set_config":
        setting = _constant(args[0]) if args else None
        if not isinstance(setting, str):
            reject("set_role", "set_config() needs a constant setting name in the SQL editor", ctx.position(node))
        if setting.strip().lower() in IDENTITY_SETTINGS:
            reject("set_role", "changing the role is not allowed in the SQL editor", ctx.position(node))
    elif name == "ts_rewrite" and len(args) == 2:
        reject("dynamic_sql", "ts_rewrite() with a query string is not allowed in the SQL editor", ctx.position(node))
    else:
        check_function_name(name, node, ctx)


def _check_sleep(name: str, args: tuple[object, ...], node: ast.FuncCall, ctx: Context) -> None:
    value = _constant(args[0]) if len(args) == 1 else None
    seconds: float | None = None
    if name == "pg_sleep" and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
    elif name == "pg_sleep_for" and isinstance(value, str):
        seconds = interval_seconds(value)
    # pg_sleep_until names a wall-clock time the guard cannot compare without a clock.
    if seconds is None or seconds != seconds:  # NaN is unequal to itself
        reject("sleep", f"{name}() needs a constant duration within the {ctx.timeout_s:g}s timeout", ctx.position(node))
    if seconds > ctx.timeout_s:
        reject(
            "sleep", f"{name}() for {seconds:g}s exceeds the {ctx.timeout_s:g}s statement timeout", ctx.position(node)
        )


def check_field_notation(node: ast.ColumnRef | ast.A_Indirection, ctx: Context) -> None:
    # PostgreSQL accepts f(x) written as x.f (functional notation), so a trailing field name
    # may really be a function call.
    fields = node.fields if isinstance(node, ast.ColumnRef) else node.indirection
    names = [str(f.sval) for f in fields or () if isinstance(f, ast.String)]
    for name in names[1:] if isinstance(node, ast.ColumnRef) else names:
        check_function_name(name, node, ctx, " (called with field notation)")


def _check_copy(node: ast.CopyStmt, ctx: Context) -> NoReturn:
    if node.is_program:
        reject("copy_program", "COPY ... PROGRAM is not allowed in the SQL editor", ctx.position(node))
    if node.filename:
        reject("copy_file", "COPY to or from a server file is not allowed in the SQL editor", ctx.position(node))
    message = "COPY ... TO STDOUT / FROM STDIN cannot be used through the SQL editor; use SELECT or INSERT"
    reject("copy_stdio", message, ctx.position(node))


def _check_extension(names: list[str], action: str, node: ast.Node, ctx: Context) -> None:
    for name in names:
        if name.lower() in ALWAYS_DENIED_EXTENSIONS:
            reject("extension_denied", f"the extension {name!r} is never allowed in the SQL editor", ctx.position(node))
    if not ctx.allow_extensions:
        reject("extension", f"{action} EXTENSION is disabled in the SQL editor", ctx.position(node))


def _check_drop(node: ast.DropStmt, ctx: Context) -> None:
    kind = _enum_name(node.removeType)
    if kind == "OBJECT_EXTENSION":
        _check_extension([str(getattr(o, "sval", o)) for o in node.objects or ()], "DROP", node, ctx)
    if kind in DENIED_DROPS:
        reject(*DENIED_DROPS[kind], ctx.position(node))


def _check_transaction(node: ast.TransactionStmt, ctx: Context) -> NoReturn:
    if _enum_name(node.kind).endswith(("_PREPARE", "_PREPARED")):
        reject("prepare_transaction", "two-phase commit is not allowed in the SQL editor", ctx.position(node))
    message = (
        "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) is not allowed: each request is its own transaction"
    )
    reject("transaction_control", message, ctx.position(node))


def check_function_options(options: object, node: ast.Node, ctx: Context) -> None:
    for option in options if isinstance(options, (tuple, list)) else ():
        if isinstance(option, ast.DefElem) and option.defname == "security":
            if isinstance(option.arg, ast.Boolean) and option.arg.boolval:
                message = "SECURITY DEFINER functions are not allowed in the SQL editor"
                reject("security_definer", message, ctx.position(node))


def _check_define(node: ast.DefineStmt, ctx: Context) -> None:
    # CREATE AGGREGATE/OPERATOR name their support functions (SFUNC = ..., FUNCTION = ...).
    for option in node.definition or ():
        arg = getattr(option, "arg", None)
        name = last_name(arg.names) if isinstance(arg, ast.TypeName) else last_name(arg)
        name = name or (str(arg.sval) if isinstance(arg, ast.String) else None)
        if name:
            check_function_name(name, node, ctx)


def check_node(node: ast.Node, ctx: Context) -> None:
    """Refuse ``node`` if it breaks an editor rule; CREATE FUNCTION bodies are the caller's."""
    kind = type(node).__name__
    if kind in DENIED_STATEMENTS:
        reject(*DENIED_STATEMENTS[kind], ctx.position(node))
    if isinstance(node, ast.FuncCall):
        _check_func_call(node, ctx)
    elif isinstance(node, (ast.ColumnRef, ast.A_Indirection)):
        check_field_notation(node, ctx)
    elif isinstance(node, ast.ObjectWithArgs):
        check_function_name(last_name(node.objname) or "", node, ctx)
    elif isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() in IDENTITY_SETTINGS:
        reject("set_role", "SET ROLE / SESSION AUTHORIZATION is not allowed in the SQL editor", ctx.position(node))
    elif isinstance(node, ast.CopyStmt):
        _check_copy(node, ctx)
    elif isinstance(node, ast.CreateExtensionStmt):
        _check_extension([str(node.extname)], "CREATE", node, ctx)
    elif isinstance(node, (ast.AlterExtensionStmt, ast.AlterExtensionContentsStmt)):
        _check_extension([str(node.extname)], "ALTER", node, ctx)
    elif isinstance(node, ast.DropStmt):
        _check_drop(node, ctx)
    elif isinstance(node, ast.RenameStmt) and _enum_name(node.renameType) in DENIED_RENAMES:
        reject(*DENIED_RENAMES[_enum_name(node.renameType)], ctx.position(node))
    elif isinstance(node, ast.TransactionStmt):
        _check_transaction(node, ctx)
    elif isinstance(node, ast.AlterTableCmd) and _enum_name(node.subtype) == "AT_ChangeOwner":
        reject("owner_change", "ALTER ... OWNER TO is not allowed in the SQL editor", ctx.position(node))
    elif isinstance(node, ast.CreateSchemaStmt) and node.authrole is not None:
        reject("owner_change", "CREATE SCHEMA ... AUTHORIZATION is not allowed in the SQL editor", ctx.position(node))
    elif isinstance(node, ast.AlterFunctionStmt):
        check_function_options(node.actions, node, ctx)
    elif isinstance(node, ast.DefineStmt):
        _check_define(node, ctx)
    elif isinstance(node, ast.UpdateStmt) and node.relation is not None:
        # pg_settings has an update rule that calls set_config(): another way to SET ROLE.
        if str(node.relation.relname).lower() == "pg_settings":
            reject("set_role", "updating pg_settings is not allowed in the SQL editor", ctx.position(node))
