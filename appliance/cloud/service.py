"""``core.service(CloudService)``: runs provisioning and decommissioning in the daemon.

Each run is a task owned by this service; ``aclose()`` (called by ``Core.close()``) cancels
them, and a cancelled provisioning cleans up before it ends. A run left unfinished by a crash
is cleaned up the next time a provisioning starts (``recover()``). Tests may replace
``client_factory`` and the timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from appliance.cloud.decommission import Decommissioner
from appliance.cloud.hetzner import DEFAULT_API_URL, HetznerClient, HetznerError
from appliance.cloud.provision import ClientFactory, Provisioner, default_client
from appliance.cloud.runs import CloudContext, Runs
from appliance.cloud.settings import (
    CloudSettings,
    ProviderSettings,
    check_api_url,
    check_ssh_key,
    check_token_text,
)
from appliance.errors import BadRequest, Conflict

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)
SHUTDOWN_SECONDS = 30.0
BACKUP_TIMEOUT = 1800.0


class CloudService:
    def __init__(self, core: Core) -> None:
        from appliance.mesh.peers import Mesh

        self.core = core
        # Built first, so that Core.close() (newest first) stops our runs before the mesh.
        self.mesh = core.service(Mesh)
        self.client_factory: ClientFactory = default_client
        self.action_timeout = 300.0
        self.join_timeout = 900.0
        self.poll_interval = 2.0
        self.settings = CloudSettings(core.store, core.box)
        self.runs = Runs(core.store)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._recovered = False

    def context(self) -> CloudContext:
        async def remove_node(node_id: str) -> None:
            await self.mesh.remove(node_id)

        return CloudContext(
            self.core.store, self.core.box, self.core.node_id, self.core.config, remove_node, self.drain
        )

    def provisioner(self) -> Provisioner:
        return Provisioner(
            self.context(),
            client_factory=self.client_factory,
            action_timeout=self.action_timeout,
            join_timeout=self.join_timeout,
            poll_interval=self.poll_interval,
        )

    def client(self, settings: ProviderSettings) -> HetznerClient:
        return self.client_factory(settings)

    async def drain(self, node_id: str, projects: list[str]) -> dict[str, str]:
        """Back up each project on its node (the worker's ``backup_project`` command)."""
        from appliance.mesh.commands import Commands

        commands = self.core.service(Commands)
        outcome: dict[str, str] = {}
        for project_id in projects:
            try:
                result = await commands.send(
                    node_id, "backup_project", {"project_id": project_id}, timeout=BACKUP_TIMEOUT
                )
                outcome[project_id] = f"backed up ({result.get('backup_id', '?')})"
            except Exception as exc:
                outcome[project_id] = f"failed: {getattr(exc, 'message', type(exc).__name__)}"
        return outcome

    async def provision(self, body: dict[str, Any]) -> str:
        await self.recover()
        provisioner = self.provisioner()
        run_id = await provisioner.start(body)
        key = body.get("ssh_public_key")
        self._spawn(run_id, provisioner.run(run_id, key.strip() if isinstance(key, str) else None))
        return run_id

    async def decommission(self, body: dict[str, Any]) -> str:
        decommissioner = Decommissioner(self.provisioner())
        run_id = await decommissioner.start(body)
        self._spawn(run_id, decommissioner.run(run_id))
        return run_id

    async def cleanup(self, run_id: str) -> dict[str, Any]:
        run = await self.runs.get(run_id)
        if run_id in self._tasks or run["kind"] != "provision" or run["state"] == "done":
            raise Conflict("only a failed provisioning is cleaned up", code="run_not_failed")
        return await self.provisioner().cleanup(run_id)

    async def recover(self) -> None:
        """Clean up provisionings a previous process left unfinished. Idempotent."""
        if self._recovered:
            return
        self._recovered = True
        for run in await self.runs.unfinished():
            if run["id"] in self._tasks:
                continue
            if run["kind"] == "provision":
                await self.runs.update(run["id"], error=run["error"] or "interrupted (the daemon stopped)")
                try:
                    await self.provisioner().cleanup(run["id"])
                except Exception as exc:
                    log.error("cleanup of interrupted run %s failed: %r", run["id"], exc)
            else:
                await self.runs.update(run["id"], state="failed", error="interrupted (the daemon stopped)")

    def _spawn(self, run_id: str, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"cloud-run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda t: self._done(run_id, t))

    def _done(self, run_id: str, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(run_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("cloud run %s ended with %r", run_id, task.exception())

    async def wait(self, run_id: str) -> None:
        """Tests and the CLI: until the run's task has finished."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
            if pending:
                log.error("%d cloud run(s) did not finish cleaning up; they are cleaned up at next start", len(pending))

    async def set_token(self, provider: str, body: dict[str, Any]) -> dict[str, Any]:
        """Check the token with one cheap API call, then store it sealed. Returns what may be shown."""
        token = check_token_text(body.get("token"))
        api_url = check_api_url(body.get("api_url") or DEFAULT_API_URL)
        key = body.get("ssh_public_key")
        ssh_key = check_ssh_key(key) if key is not None else None
        async with self.client_factory(ProviderSettings(provider, token, api_url, ssh_key)) as api:
            try:
                await api.request("GET", "/servers", params={"per_page": 1})
            except HetznerError as exc:
                if exc.http_status in (401, 403):
                    raise BadRequest("Hetzner Cloud refused the token", code="cloud_token_invalid") from None
                raise
        await self.settings.save(provider, token, api_url, ssh_key)
        return await self.settings.describe(provider)
