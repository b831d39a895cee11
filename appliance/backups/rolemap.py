"""The statements of a dump that name roles, rewritten for another project's roles.

A project backup names the source project's roles (``proj_<old>_owner``, ``_app``, ``_anon``,
``_authenticated``, ``_analytics``) in four kinds of statement: ``… OWNER TO``, ``GRANT``/``REVOKE``,
``ALTER DEFAULT PRIVILEGES`` and ``CREATE POLICY … TO``. A clone restores everything else with
``pg_restore --no-owner --no-acl`` (policies left out), then runs these, picked out of the dump's
schema script with PostgreSQL's own parser (pglast) and rewritten role by role, never as text.

Which role a name becomes:

- a role of the source project → the same kind of role of the new project;
- ``PUBLIC``, ``CURRENT_USER`` and the like, and roles of the server that belong to no project
  (the platform's superuser, ``pg_database_owner``, …) → unchanged;
- any other role (another project's, or one that no longer exists) → left out of the statement.
  A statement left without a role is not run: an object stays owned by the platform, a grant is
  not made, a permissive policy is not created (access narrows). A restrictive policy left
  without a role would widen access if dropped, so it makes the clone fail instead.

Pure: no I/O, tested with plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

from appliance.errors import AtlasError
from appliance.projects.model import ProjectNames

ANY_PROJECT_ROLE = re.compile(r"^proj_[a-z][a-z0-9]{11}_")
_CSTRING = enums.RoleSpecType.ROLESPEC_CSTRING
_CHANGE_OWNER = enums.AlterTableType.AT_ChangeOwner


class RoleMappingFailed(AtlasError):
    status = 422
    code = "clone_role_mapping_failed"


@dataclass
class MappedStatements:
    statements: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per statement not run, for the job result


def role_mapping(source: ProjectNames, target: ProjectNames) -> dict[str, str]:
    kinds = ("owner", "app", "anon", "authenticated", "analytics")
    return {source.role(kind): target.role(kind) for kind in kinds}


def server_role_filter(existing: Iterable[str]) -> Callable[[str], bool]:
    """Roles kept as they are: ones that exist on this server and belong to no project."""
    kept = frozenset(r for r in existing if not ANY_PROJECT_ROLE.match(r))
    return kept.__contains__


def strip_meta_commands(script: str) -> str:
    """pg_restore's script may carry psql meta-commands (``\\restrict``): they are not SQL."""
    return "\n".join(line for line in script.splitlines() if not line.startswith("\\"))


class _Mapper:
    def __init__(self, mapping: dict[str, str], keep: Callable[[str], bool]) -> None:
        self.mapping = mapping
        self.keep = keep

    def role(self, spec: ast.RoleSpec | None) -> ast.RoleSpec | None:
        if spec is None or spec.roletype != _CSTRING:
            return spec
        name = spec.rolename or ""
        if name in self.mapping:
            spec.rolename = self.mapping[name]
            return spec
        return spec if self.keep(name) else None

    def roles(self, specs: Iterable[ast.RoleSpec] | None) -> tuple[ast.RoleSpec, ...]:
        return tuple(mapped for spec in specs or () if (mapped := self.role(spec)) is not None)


def _rewrite(stmt: ast.Node, mapper: _Mapper) -> bool:
    """Rewrite the roles of ``stmt`` in place; False when it is left without one."""
    if isinstance(stmt, ast.AlterOwnerStmt):
        return mapper.role(stmt.newowner) is not None
    if isinstance(stmt, ast.AlterTableStmt):
        return all(mapper.role(cmd.newowner) is not None for cmd in stmt.cmds or ())
    if isinstance(stmt, ast.GrantStmt):
        stmt.grantees = mapper.roles(stmt.grantees)
        if stmt.grantor is not None:
            stmt.grantor = mapper.role(stmt.grantor)
        return bool(stmt.grantees)
    if isinstance(stmt, ast.AlterDefaultPrivilegesStmt):
        for option in stmt.options or ():
            if option.defname == "roles":
                option.arg = mapper.roles(option.arg)
                if not option.arg:
                    return False
        action = stmt.action
        if action is None:
            return False
        action.grantees = mapper.roles(action.grantees)
        return bool(action.grantees)
    if isinstance(stmt, ast.CreatePolicyStmt):
        before = len(stmt.roles or ())
        stmt.roles = mapper.roles(stmt.roles)
        if before and not stmt.roles:
            if not stmt.permissive:
                raise RoleMappingFailed(
                    f"restrictive policy {stmt.policy_name} applies only to roles that do not exist here;"
                    " dropping it would widen access"
                )
            return False
        return True
    raise TypeError(type(stmt).__name__)


def _names_roles(stmt: ast.Node) -> bool:
    if isinstance(stmt, ast.AlterTableStmt):
        return bool(stmt.cmds) and all(getattr(cmd, "subtype", None) == _CHANGE_OWNER for cmd in stmt.cmds or ())
    if isinstance(stmt, ast.AlterOwnerStmt):
        return stmt.newowner is not None
    return isinstance(stmt, ast.GrantStmt | ast.AlterDefaultPrivilegesStmt | ast.CreatePolicyStmt)


def map_role_statements(script: str, mapping: dict[str, str], keep: Callable[[str], bool]) -> MappedStatements:
    """The role-naming statements of a schema script, in script order, rewritten by ``mapping``."""
    out = MappedStatements()
    mapper = _Mapper(mapping, keep)
    for raw in parse_sql(strip_meta_commands(script)):
        stmt = raw.stmt
        if stmt is None or not _names_roles(stmt):
            continue
        original = RawStream()(stmt)
        if _rewrite(stmt, mapper):
            out.statements.append(RawStream()(stmt))
        else:
            out.skipped.append(original[:300])
    return out
