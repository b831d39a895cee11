"""The introspected shape of a project database, as the public DB API sees it.

A snapshot is the whitelist of the ``/v1/db`` API: only tables and columns found here ever
reach generated SQL. It is built by introspection (elsewhere) and never mutated; a schema
change means a new snapshot. Column order is the table's attribute order, and everything
derived from it (``select=*``, the primary key, insert column lists) follows that order so
generated SQL is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from appliance.errors import NotFound
from appliance.sqlident import quote_qualified

TableKind = Literal["table", "view"]


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column.

    ``type_name`` is PostgreSQL's ``format_type()`` output ('integer', 'numeric(10,2)',
    'text[]', '"MyEnum"'); ``udt_name`` the underlying type's internal name ('int4', '_text'),
    with domains reduced to their base type. Coercion keys off ``udt_name``; ``type_name`` is
    only written into SQL for types the gateway passes as text (see ``coerce.transport``).
    """

    name: str
    type_name: str
    udt_name: str
    nullable: bool
    has_default: bool
    is_pk: bool


@dataclass(frozen=True, slots=True)
class TableInfo:
    schema: str
    name: str
    kind: TableKind
    columns: tuple[ColumnInfo, ...]
    _by_name: Mapping[str, ColumnInfo] = field(init=False, repr=False, compare=False)
    # SQL built for this snapshot of the table, by query shape (``sqlgen.build_select``): the
    # one mutable part, a cache that dies with the snapshot when the schema changes.
    plans: dict[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError(f"table {self.name!r} lists a column twice")
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))
        object.__setattr__(self, "plans", {})

    def column(self, name: str) -> ColumnInfo | None:
        return self._by_name.get(name)

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Primary-key column names in attribute order (empty for views and keyless tables)."""
        return tuple(c.name for c in self.columns if c.is_pk)

    @property
    def qualified_name(self) -> str:
        """The quoted ``"schema"."name"`` to write into SQL."""
        return quote_qualified(self.schema, self.name)

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "columns": [
                {
                    "name": c.name,
                    "type": c.type_name,
                    "nullable": c.nullable,
                    "primaryKey": c.is_pk,
                    "hasDefault": c.has_default,
                }
                for c in self.columns
            ],
            "primaryKey": list(self.primary_key),
        }


@dataclass(frozen=True, slots=True)
class SchemaSnapshot:
    """Tables exposed by the API, keyed by the name clients use in ``/v1/db/:table``."""

    tables: Mapping[str, TableInfo]

    def __post_init__(self) -> None:
        # A private read-only copy: the caller's dict cannot change what was whitelisted.
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))

    def table(self, name: str) -> TableInfo:
        found = self.tables.get(name)
        if found is None:
            raise NotFound(
                f"table '{name}' does not exist or is not exposed",
                code="table_not_found",
                details={"table": name},
            )
        return found

    def to_public_dict(self) -> dict[str, Any]:
        """Body of ``GET /v1/db/tables``, tables sorted by name."""
        return {"tables": [self.tables[name].to_public_dict() for name in sorted(self.tables)]}
