"""Provisioning a worker on Hetzner Cloud, step by step, with rollback.

Steps (each recorded in ``provisioning_runs.step`` before it starts): ``ssh_key`` (reuse the
key with the same fingerprint or create one) → ``firewall`` (reuse ``atlashub-workers`` or
create it) → ``join_token`` → ``server`` (with the first-boot user data and the firewall
attached) → ``server_action`` (wait for Hetzner's create action) → ``join`` (wait until the
token is consumed by the new node) → ``done``.

Any failure, timeout or cancellation deletes what the run created, in reverse: the joined node
(removed from the cluster), the unused join token, the server (also any server labelled with
the run id, in case the create answer was lost), the firewall and the SSH key if this run
created them. The run ends ``failed`` with the step that failed in ``step``; what cleanup did
is in ``cleanup``. Ids of resources that could not be deleted stay in the row, and
:meth:`Provisioner.cleanup` can be called again. A second attempt starts from nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from appliance.cloud.cloudinit import WorkerBoot, firewall_rules, render_user_data, valid_name
from appliance.cloud.hetzner import HetznerClient, HetznerError
from appliance.cloud.runs import CloudContext, Runs
from appliance.cloud.settings import HETZNER, CloudSettings, ProviderSettings, check_ssh_key, ssh_fingerprint
from appliance.errors import AtlasError, BadRequest, Conflict, Forbidden
from appliance.mesh.tokens import MAX_TTL_SECONDS, JoinTokens

log = logging.getLogger(__name__)

IMAGE = "debian-12"
FIREWALL_NAME = "atlashub-workers"
LABELS = {"managed-by": "atlashub"}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.-]{0,39}$")

ClientFactory = Callable[[ProviderSettings], HetznerClient]


def default_client(settings: ProviderSettings) -> HetznerClient:
    return HetznerClient(settings.token, settings.api_url)


def _slug(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise BadRequest(f"{field} must be a Hetzner {field} name", code="invalid_parameter", details={"field": field})
    return value


class Provisioner:
    def __init__(
        self,
        ctx: CloudContext,
        *,
        client_factory: ClientFactory = default_client,
        action_timeout: float = 300.0,
        join_timeout: float = 900.0,
        poll_interval: float = 2.0,
    ) -> None:
        self.ctx = ctx
        self.runs = Runs(ctx.store)
        self.settings = CloudSettings(ctx.store, ctx.box)
        self.client_factory = client_factory
        self.action_timeout = action_timeout
        self.join_timeout = join_timeout
        self.poll_interval = poll_interval

    def master_url(self) -> str:
        config = self.ctx.config
        if config.mesh.role != "master":
            raise Forbidden("workers are provisioned from the master", code="not_master")
        url = config.gateway.public_url
        if not url:
            raise Conflict("set gateway.public_url: new workers join the master there", code="master_url_missing")
        return url

    async def start(self, body: dict[str, Any]) -> str:
        """Check the request and record a run; ``run(run_id)`` then does the work."""
        name = body.get("name")
        if not isinstance(name, str) or not valid_name(name):
            raise BadRequest(
                "name must be a host name (a-z, 0-9, -)", code="invalid_parameter", details={"field": "name"}
            )
        server_type = _slug(body.get("server_type"), "server_type")
        location = _slug(body.get("location"), "location")
        self.master_url()
        settings = await self.settings.load(HETZNER)
        if body.get("ssh_public_key") is not None:
            check_ssh_key(body["ssh_public_key"])
        elif not settings.ssh_public_key:
            raise Conflict("no SSH public key is set for new servers", code="ssh_key_missing")
        taken = await self.ctx.store.fetchone(
            "SELECT 1 FROM nodes WHERE name = ? AND removed_at IS NULL", (name,)
        ) or await self.ctx.store.fetchone(
            "SELECT 1 FROM provisioning_runs WHERE name = ? AND kind = 'provision' AND state NOT IN ('done', 'failed')",
            (name,),
        )
        if taken:
            raise Conflict(f"a node or a running provisioning is named {name!r}", code="name_taken")
        return await self.runs.create("provision", HETZNER, name, server_type=server_type, location=location)

    async def run(self, run_id: str, ssh_public_key: str | None = None) -> dict[str, Any]:
        """Every step; on any failure (or cancellation) clean up, then return the run as recorded."""
        run = await self.runs.get(run_id)
        settings = await self.settings.load(HETZNER)
        key = ssh_public_key or settings.ssh_public_key or ""
        api = self.client_factory(settings)
        try:
            await self._steps(api, run, key)
        except BaseException as exc:
            reason = _reason(exc)
            log.warning("provisioning %s failed at step %s: %s", run_id, (await self.runs.get(run_id))["step"], reason)
            await self.runs.update(run_id, state="cleaning_up", error=reason)
            await self._cleanup(api, run_id)
            if not isinstance(exc, Exception):
                raise
        finally:
            await api.close()
        return await self.runs.get(run_id)

    async def _steps(self, api: HetznerClient, run: dict[str, Any], public_key: str) -> None:
        run_id, name = run["id"], run["name"]
        step = self._stepper(run_id)

        await step("ssh_key")
        fingerprint = ssh_fingerprint(public_key)
        found = await api.find_ssh_keys(fingerprint=fingerprint)
        if found:
            ssh_key_id = int(found[0]["id"])
        else:
            label = fingerprint.replace(":", "")[:12]
            created = await api.create_ssh_key(f"atlashub-{label}", public_key, LABELS)
            ssh_key_id = int(created["id"])
            await self.runs.update(run_id, ssh_key_id=ssh_key_id)

        await step("firewall")
        wg_port = self.ctx.config.mesh.wg_listen_port
        firewalls = await api.find_firewalls(name=FIREWALL_NAME)
        if firewalls:
            firewall_id = int(firewalls[0]["id"])
        else:
            firewall = await api.create_firewall(FIREWALL_NAME, firewall_rules(wg_port), LABELS)
            firewall_id = int(firewall["id"])
            await self.runs.update(run_id, firewall_id=firewall_id)

        await step("join_token")
        ttl = int(min(MAX_TTL_SECONDS, max(600, self.action_timeout + self.join_timeout + 300)))
        issued = await JoinTokens(self.ctx.store, self.ctx.master_id).create(ttl)
        await self.runs.update(run_id, token_id=issued.id)

        await step("server")
        boot = WorkerBoot(
            name=name,
            master_url=self.master_url(),
            join_token=issued.token,
            ssh_public_key=public_key,
            wg_port=wg_port,
            wg_interface=self.ctx.config.mesh.wg_interface,
            **({"apt_url": self.ctx.config.mesh.worker_apt_url} if self.ctx.config.mesh.worker_apt_url else {}),
        )
        spec = {
            "name": name,
            "server_type": run["server_type"],
            "location": run["location"],
            "image": IMAGE,
            "ssh_keys": [ssh_key_id],
            "user_data": render_user_data(boot),
            "labels": {**LABELS, "atlashub-run": run_id},
            "firewalls": [{"firewall": firewall_id}],
            "start_after_create": True,
        }
        server, action = await api.create_server(spec)
        ipv4 = ((server.get("public_net") or {}).get("ipv4") or {}).get("ip")
        await self.runs.update(run_id, server_id=int(server["id"]), server_ip=ipv4)

        await step("server_action")
        await api.wait_action(action, timeout=self.action_timeout, interval=self.poll_interval)

        await step("join")
        node_id = await self._wait_for_join(issued.id)
        await self.runs.update(run_id, node_id=node_id, state="done", step="done")
        log.info("provisioned %s: server %s joined as node %s", name, server["id"], node_id)

    def _stepper(self, run_id: str) -> Callable[[str], Any]:
        async def step(name: str) -> None:
            await self.runs.update(run_id, step=name)
            log.info("provisioning %s: %s", run_id, name)

        return step

    async def _wait_for_join(self, token_id: str) -> str:
        deadline = time.monotonic() + self.join_timeout
        while True:
            row = await self.ctx.store.fetchone(
                "SELECT t.used_by FROM join_tokens t JOIN nodes n ON n.id = t.used_by"
                " WHERE t.id = ? AND n.removed_at IS NULL",
                (token_id,),
            )
            if row is not None:
                return str(row["used_by"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"the new server did not join the cluster within {self.join_timeout:.0f} s")
            await asyncio.sleep(self.poll_interval)

    # -- cleanup -----------------------------------------------------------------------------

    async def cleanup(self, run_id: str) -> dict[str, Any]:
        """Delete what a failed or interrupted run left behind. Idempotent."""
        settings = await self.settings.load(HETZNER)
        api = self.client_factory(settings)
        try:
            await self.runs.update(run_id, state="cleaning_up")
            await self._cleanup(api, run_id)
        finally:
            await api.close()
        return await self.runs.get(run_id)

    async def _cleanup(self, api: HetznerClient, run_id: str) -> None:
        run = await self.runs.get(run_id)
        report: dict[str, str] = dict(run.get("cleanup") or {})
        cleared: dict[str, Any] = {}

        async def attempt(what: str, column: str | None, action: Any) -> None:
            try:
                report[what] = await action() or "deleted"
                if column:
                    cleared[column] = None
            except Exception as exc:
                report[what] = f"failed: {_reason(exc)}"
                log.error("cleanup of %s for run %s failed: %s", what, run_id, _reason(exc))

        if run["token_id"]:
            await attempt("node", "node_id", lambda: self._remove_joined(run["token_id"]))
            await attempt("join_token", "token_id", lambda: self._delete_token(run["token_id"]))
        await attempt("server", "server_id", lambda: self._delete_servers(api, run_id, run["server_id"]))
        if run["firewall_id"]:
            await attempt(
                "firewall", "firewall_id", lambda: _delete_firewall(api, int(run["firewall_id"]), self.poll_interval)
            )
        if run["ssh_key_id"]:
            await attempt("ssh_key", "ssh_key_id", lambda: _delete_missing_ok(api.delete_ssh_key, run["ssh_key_id"]))
        complete = all(not v.startswith("failed") for v in report.values())
        error = run["error"] or "cancelled"
        if not complete:
            error += "; cleanup incomplete (see cleanup), retry it with POST /admin/api/cloud/runs/{id}/cleanup"
        await self.runs.update(run_id, state="failed", error=error, cleanup_json=report, **cleared)

    async def _remove_joined(self, token_id: str) -> str:
        row = await self.ctx.store.fetchone(
            "SELECT n.id FROM join_tokens t JOIN nodes n ON n.id = t.used_by WHERE t.id = ? AND n.removed_at IS NULL",
            (token_id,),
        )
        if row is None:
            return "not joined"
        await self.ctx.remove_node(str(row["id"]))
        return f"removed {row['id']}"

    async def _delete_token(self, token_id: str) -> str:
        deleted = await self.ctx.store.execute("DELETE FROM join_tokens WHERE id = ? AND used_at IS NULL", (token_id,))
        return "deleted" if deleted else "already used"

    async def _delete_servers(self, api: HetznerClient, run_id: str, server_id: int | None) -> str:
        ids = {int(server_id)} if server_id else set()
        # A create whose answer was lost still carries the run's label.
        ids |= {int(s["id"]) for s in await api.find_servers(label_selector=f"atlashub-run={run_id}")}
        if not ids:
            return "none"
        for sid in sorted(ids):
            await delete_server(api, sid, timeout=self.action_timeout, interval=self.poll_interval)
        return "deleted " + ", ".join(str(i) for i in sorted(ids))


async def delete_server(api: HetznerClient, server_id: int, *, timeout: float, interval: float) -> str:
    try:
        action = await api.delete_server(server_id)
    except HetznerError as exc:
        if exc.code == "not_found":
            return "already gone"
        raise
    if action:
        await api.wait_action(action, timeout=timeout, interval=interval)
    return "deleted"


async def _delete_missing_ok(delete: Callable[[int], Any], resource_id: int) -> str:
    try:
        await delete(int(resource_id))
    except HetznerError as exc:
        if exc.code == "not_found":
            return "already gone"
        raise
    return "deleted"


async def _delete_firewall(api: HetznerClient, firewall_id: int, base_delay: float, attempts: int = 8) -> str:
    """A firewall stays ``resource_in_use`` for a moment after its server is deleted: retry."""
    for attempt in range(attempts):
        try:
            return await _delete_missing_ok(api.delete_firewall, firewall_id)
        except HetznerError as exc:
            if exc.code != "resource_in_use" or attempt == attempts - 1:
                raise
            await asyncio.sleep(min(5.0, base_delay * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted (the daemon stopped)"
    if isinstance(exc, AtlasError):
        return f"{exc.message} ({exc.code})"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return f"unexpected error ({type(exc).__name__})"
