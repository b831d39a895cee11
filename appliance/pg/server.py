"""How this node reaches its PostgreSQL server as the platform's administrator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from appliance.config import PostgresConfig
from appliance.errors import StartupError


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str | None
    database: str = "postgres"
    project_host: str = ""
    pool_host: str = ""

    @classmethod
    def from_config(cls, cfg: PostgresConfig) -> PgServer:
        password = None
        if cfg.password_file:
            try:
                password = Path(cfg.password_file).read_text().strip()
            except OSError as exc:
                raise StartupError(f"postgres.password_file {cfg.password_file}: {exc.strerror}") from None
        project_host = cfg.project_host or cfg.host
        return cls(cfg.host, cfg.port, cfg.user, password, cfg.database, project_host, cfg.pool_host or project_host)

    def connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": database or self.database,
        }

    async def connect(self, database: str | None = None, timeout: float = 10) -> asyncpg.Connection:
        return await asyncpg.connect(**self.connect_kwargs(database), timeout=timeout)

    async def ping(self, timeout: float = 2.0) -> bool:
        try:
            conn = await asyncio.wait_for(self.connect(timeout=timeout), timeout)
        except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=timeout)
            return True
        except (asyncpg.PostgresError, TimeoutError):
            return False
        finally:
            await conn.close()
