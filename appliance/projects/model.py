"""What a project is, and the names of everything that belongs to it."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

from appliance.errors import BadRequest

_ID_ALPHABET = string.ascii_lowercase + string.digits
PROJECT_ID = re.compile(r"^[a-z][a-z0-9]{11}$")
MAX_NAME = 64


def new_project_id() -> str:
    """12 characters, a letter first: valid in database, role and S3 bucket names alike."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ID_ALPHABET) for _ in range(11))


def validate_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadRequest("name must be a string", code="invalid_name", details={"field": "name"})
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise BadRequest("name must not be empty", code="invalid_name", details={"field": "name"})
    if len(name) > MAX_NAME:
        raise BadRequest(f"name must be at most {MAX_NAME} characters", code="invalid_name", details={"field": "name"})
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise BadRequest(
            "name must not contain control or invisible characters", code="invalid_name", details={"field": "name"}
        )
    return name


@dataclass(frozen=True)
class ProjectNames:
    """Every PostgreSQL and storage name of one project, derived from its id (never from user input)."""

    project_id: str

    def __post_init__(self) -> None:
        if not PROJECT_ID.match(self.project_id):
            raise ValueError("invalid project id")

    @property
    def database(self) -> str:
        return f"proj_{self.project_id}"

    def role(self, kind: str) -> str:
        return f"proj_{self.project_id}_{kind}"

    @property
    def owner(self) -> str:
        return self.role("owner")

    @property
    def app(self) -> str:
        return self.role("app")

    @property
    def anon(self) -> str:
        return self.role("anon")

    @property
    def authenticated(self) -> str:
        return self.role("authenticated")

    @property
    def analytics(self) -> str:
        return self.role("analytics")

    @property
    def bucket(self) -> str:
        return f"proj-{self.project_id}"

    @property
    def all_roles(self) -> tuple[str, ...]:
        return (self.anon, self.authenticated, self.app, self.analytics, self.owner)


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    db_name: str
    node_id: str | None
    status: str
    created_at: str
    settings: dict[str, Any]

    @property
    def names(self) -> ProjectNames:
        return ProjectNames(self.id)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Project:
        return cls(
            id=row["id"],
            name=row["name"],
            db_name=row["db_name"],
            node_id=row["node_id"],
            status=row["status"],
            created_at=row["created_at"],
            settings=json.loads(row["settings_json"] or "{}"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "db_name": self.db_name,
            "node_id": self.node_id,
            "status": self.status,
            "created_at": self.created_at,
        }
