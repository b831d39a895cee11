"""The master's view of its workers: heartbeats recorded, missing ones noticed.

A worker is ``healthy`` after a heartbeat and ``unhealthy`` once ``MISSED_BEATS`` intervals
pass without one (also when it never sent any since it joined). ``unknown`` in between.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

from appliance.control.store import utcnow
from appliance.errors import Forbidden
from appliance.mesh.envelope import VerifiedMessage
from appliance.mesh.join import _json_object
from appliance.mesh.peers import Mesh

log = logging.getLogger(__name__)

MISSED_BEATS = 3
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _parse(value: str) -> datetime:
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


class HealthTracker:
    def __init__(self, mesh: Mesh, heartbeat_seconds: float) -> None:
        self.mesh = mesh
        self.interval = heartbeat_seconds

    async def record(self, message: VerifiedMessage) -> None:
        """Store one heartbeat (the ``heartbeat`` receiver of the agent server)."""
        if self.mesh.role != "master":
            raise Forbidden("only the master takes heartbeats", code="not_master")
        body = _json_object(message.body)
        version = body.get("version") if isinstance(body.get("version"), str) else None
        changed = await self.mesh.store.fetchone("SELECT status FROM nodes WHERE id = ?", (message.sender,))
        await self.mesh.store.execute(
            "UPDATE nodes SET status = 'healthy', last_heartbeat_at = ?, version = coalesce(?, version),"
            " health_json = ? WHERE id = ? AND removed_at IS NULL",
            (utcnow(), version, json.dumps(body)[:65536], message.sender),
        )
        if changed is not None and changed["status"] != "healthy":
            log.info("node %s is healthy (was %s)", message.sender, changed["status"])

    async def sweep(self, now: datetime | None = None) -> list[str]:
        """Mark workers unhealthy after MISSED_BEATS silent intervals; return the ids marked now."""
        now = now or datetime.now(UTC)
        limit = now - timedelta(seconds=self.interval * MISSED_BEATS)
        marked = []
        for node in await self.mesh.all():
            if node.id == self.mesh.self_id or node.status == "unhealthy":
                continue
            last = node.last_heartbeat_at or node.created_at
            if _parse(last) < limit:
                await self.mesh.set_status(node.id, "unhealthy")
                log.warning("node %s (%s) missed %d heartbeats: unhealthy", node.id, node.name, MISSED_BEATS)
                marked.append(node.id)
        return marked

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.interval / 2))
            try:
                await self.sweep()
            except Exception:
                log.exception("health sweep failed")
