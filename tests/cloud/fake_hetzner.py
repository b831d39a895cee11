"""A local Hetzner Cloud API: the subset AtlasHub calls, with the published JSON shapes.

Servers (create/get/list/delete), actions, SSH keys and firewalls (+ apply_to_resources),
Bearer auth, ``meta.pagination``, ``label_selector`` and ``name``/``fingerprint`` filters,
errors as ``{"error": {"code", "message", "details"}}`` and 429 ``rate_limit_exceeded`` with
``RateLimit-*`` headers. Failures are injected per operation through ``fail``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Json = dict[str, Any]


def error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "details": details or {}}}, status=status)


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@dataclass
class FakeHetzner:
    token: str = "hz-test-token-0123456789abcdef"
    servers: dict[int, Json] = field(default_factory=dict)
    actions: dict[int, Json] = field(default_factory=dict)
    ssh_keys: dict[int, Json] = field(default_factory=dict)
    firewalls: dict[int, Json] = field(default_factory=dict)
    # operation name -> (HTTP status, error code); consumed once unless sticky.
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    rate_limit_next: int = 0
    action_polls: int = 1  # GETs an action stays "running"
    action_error: str | None = None  # make create_server's action end in error with this code
    firewall_busy_deletes: int = 0  # DELETE /firewalls answers resource_in_use this many times
    on_server_created: Callable[[Json], Awaitable[None]] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    # -- plumbing ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_post("/v1/servers", self.create_server)
        r.add_get("/v1/servers", self.list_servers)
        r.add_get("/v1/servers/{id}", self.get_server)
        r.add_delete("/v1/servers/{id}", self.delete_server)
        r.add_get("/v1/actions/{id}", self.get_action)
        r.add_post("/v1/ssh_keys", self.create_ssh_key)
        r.add_get("/v1/ssh_keys", self.list_ssh_keys)
        r.add_delete("/v1/ssh_keys/{id}", self.delete_ssh_key)
        r.add_post("/v1/firewalls", self.create_firewall)
        r.add_get("/v1/firewalls", self.list_firewalls)
        r.add_delete("/v1/firewalls/{id}", self.delete_firewall)
        r.add_post("/v1/firewalls/{id}/actions/apply_to_resources", self.apply_firewall)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return error(401, "unauthorized", "unable to authenticate")
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            reset = str(int(time.time()))  # "now": the client waits its minimum
            headers = {"RateLimit-Limit": "3600", "RateLimit-Remaining": "0", "RateLimit-Reset": reset}
            response = error(429, "rate_limit_exceeded", "limit of 3600 requests per hour reached")
            response.headers.update(headers)
            return response
        return await handler(request)

    def _injected(self, operation: str) -> web.Response | None:
        if operation in self.fail:
            status, code = self.fail.pop(operation)
            return error(status, code, f"injected {code} for {operation}")
        return None

    def _action(self, command: str, resources: list[Json], *, error_code: str | None = None) -> Json:
        action_id = next(self._ids)
        action = {
            "id": action_id,
            "command": command,
            "status": "running",
            "progress": 0,
            "started": "2026-01-01T00:00:00+00:00",
            "finished": None,
            "resources": resources,
            "error": None,
            "_polls": self.action_polls,
            "_error": error_code,
        }
        self.actions[action_id] = action
        return self._public(action)

    @staticmethod
    def _public(item: Json) -> Json:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _page(self, request: web.Request, key: str, items: list[Json]) -> web.Response:
        page = int(request.query.get("page", 1))
        per_page = int(request.query.get("per_page", 25))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        pagination = {
            "page": page,
            "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": len(items),
        }
        return web.json_response({key: [self._public(i) for i in chunk], "meta": {"pagination": pagination}})

    @staticmethod
    def _filter(request: web.Request, items: list[Json], *fields: str) -> list[Json]:
        out = [i for i in items if matches(i.get("labels", {}), request.query.get("label_selector"))]
        for name in fields:
            if name in request.query:
                out = [i for i in out if i.get(name) == request.query[name]]
        return out

    # -- actions ----------------------------------------------------------------------------

    async def get_action(self, request: web.Request) -> web.Response:
        action = self.actions.get(int(request.match_info["id"]))
        if action is None:
            return error(404, "not_found", "action not found")
        if action["status"] == "running":
            if action["_polls"] > 0:
                action["_polls"] -= 1
            else:
                self._finish(action)
        return web.json_response({"action": self._public(action)})

    def _finish(self, action: Json) -> None:
        action["progress"] = 100
        action["finished"] = "2026-01-01T00:01:00+00:00"
        if action["_error"]:
            action["status"] = "error"
            action["error"] = {"code": action["_error"], "message": "injected action failure"}
            return
        action["status"] = "success"
        if action["command"] == "delete_server":
            server_id = action["resources"][0]["id"]
            self.servers.pop(server_id, None)
            for firewall in self.firewalls.values():
                firewall["applied_to"] = [a for a in firewall["applied_to"] if a["server"]["id"] != server_id]

    # -- servers ----------------------------------------------------------------------------

    async def create_server(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (injected := self._injected("create_server")) is not None:
            return injected
        for required in ("name", "server_type", "image"):
            if not body.get(required):
                return error(422, "invalid_input", f"invalid input in field '{required}'", {"fields": [required]})
        if any(s["name"] == body["name"] for s in self.servers.values()):
            return error(422, "uniqueness_error", "server name is already used", {"fields": ["name"]})
        for key_id in body.get("ssh_keys", []):
            if key_id not in self.ssh_keys:
                return error(404, "not_found", f"ssh key {key_id} not found")
        server_id = next(self._ids)
        server = {
            "id": server_id,
            "name": body["name"],
            "status": "initializing",
            "created": "2026-01-01T00:00:00+00:00",
            "public_net": {"ipv4": {"ip": f"203.0.113.{server_id % 250}", "blocked": False}, "ipv6": None},
            "server_type": {"name": body["server_type"]},
            "datacenter": {"location": {"name": body.get("location") or "fsn1"}},
            "image": {"name": body["image"]},
            "labels": body.get("labels", {}),
            "_user_data": body.get("user_data", ""),
            "_ssh_keys": body.get("ssh_keys", []),
        }
        self.servers[server_id] = server
        for ref in body.get("firewalls", []):
            firewall = self.firewalls.get(ref["firewall"])
            if firewall is None:
                return error(404, "not_found", "firewall not found")
            firewall["applied_to"].append({"type": "server", "server": {"id": server_id}})
        action = self._action("create_server", [{"id": server_id, "type": "server"}], error_code=self.action_error)
        if self.on_server_created is not None:
            await self.on_server_created(server)
        answer = {"server": self._public(server), "action": action, "next_actions": [], "root_password": None}
        return web.json_response(answer, status=201)

    async def list_servers(self, request: web.Request) -> web.Response:
        return self._page(request, "servers", self._filter(request, list(self.servers.values()), "name"))

    async def get_server(self, request: web.Request) -> web.Response:
        server = self.servers.get(int(request.match_info["id"]))
        if server is None:
            return error(404, "not_found", "server not found")
        return web.json_response({"server": self._public(server)})

    async def delete_server(self, request: web.Request) -> web.Response:
        if (injected := self._injected("delete_server")) is not None:
            return injected
        server_id = int(request.match_info["id"])
        if server_id not in self.servers:
            return error(404, "not_found", "server not found")
        self.servers[server_id]["status"] = "deleting"
        return web.json_response({"action": self._action("delete_server", [{"id": server_id, "type": "server"}])})

    # -- SSH keys -----------------------------------------------------------------------------

    async def create_ssh_key(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (injected := self._injected("create_ssh_key")) is not None:
            return injected
        fp = fingerprint(body["public_key"])
        if any(k["name"] == body["name"] or k["fingerprint"] == fp for k in self.ssh_keys.values()):
            return error(422, "uniqueness_error", "SSH key with the same fingerprint already exists")
        key_id = next(self._ids)
        key = {"id": key_id, "name": body["name"], "fingerprint": fp, "public_key": body["public_key"]}
        self.ssh_keys[key_id] = {**key, "labels": body.get("labels", {}), "created": "2026-01-01T00:00:00+00:00"}
        return web.json_response({"ssh_key": self.ssh_keys[key_id]}, status=201)

    async def list_ssh_keys(self, request: web.Request) -> web.Response:
        items = self._filter(request, list(self.ssh_keys.values()), "name", "fingerprint")
        return self._page(request, "ssh_keys", items)

    async def delete_ssh_key(self, request: web.Request) -> web.Response:
        if self.ssh_keys.pop(int(request.match_info["id"]), None) is None:
            return error(404, "not_found", "ssh key not found")
        return web.Response(status=204)

    # -- firewalls ----------------------------------------------------------------------------

    async def create_firewall(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (injected := self._injected("create_firewall")) is not None:
            return injected
        if any(f["name"] == body["name"] for f in self.firewalls.values()):
            return error(422, "uniqueness_error", "firewall name is already used")
        firewall_id = next(self._ids)
        firewall = {
            "id": firewall_id,
            "name": body["name"],
            "labels": body.get("labels", {}),
            "rules": body.get("rules", []),
            "applied_to": [],
            "created": "2026-01-01T00:00:00+00:00",
        }
        self.firewalls[firewall_id] = firewall
        return web.json_response({"firewall": firewall, "actions": []}, status=201)

    async def list_firewalls(self, request: web.Request) -> web.Response:
        return self._page(request, "firewalls", self._filter(request, list(self.firewalls.values()), "name"))

    async def delete_firewall(self, request: web.Request) -> web.Response:
        firewall = self.firewalls.get(int(request.match_info["id"]))
        if firewall is None:
            return error(404, "not_found", "firewall not found")
        if firewall["applied_to"] or self.firewall_busy_deletes > 0:
            self.firewall_busy_deletes = max(0, self.firewall_busy_deletes - 1)
            return error(422, "resource_in_use", "firewall is still applied to resources")
        del self.firewalls[firewall["id"]]
        return web.Response(status=204)

    async def apply_firewall(self, request: web.Request) -> web.Response:
        firewall = self.firewalls.get(int(request.match_info["id"]))
        if firewall is None:
            return error(404, "not_found", "firewall not found")
        body = await request.json()
        actions = []
        for target in body.get("apply_to", []):
            server_id = target["server"]["id"]
            if server_id not in self.servers:
                return error(404, "not_found", "server not found")
            firewall["applied_to"].append({"type": "server", "server": {"id": server_id}})
            actions.append(self._action("apply_firewall", [{"id": firewall["id"], "type": "firewall"}]))
        return web.json_response({"actions": actions}, status=201)
