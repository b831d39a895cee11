"""A small async client for the parts of the Hetzner Cloud API that provisioning uses.

Servers, actions, SSH keys and firewalls (https://docs.hetzner.cloud/). Bearer auth; errors
come back as ``{"error": {"code", "message", "details"}}`` and are raised as
:class:`HetznerError` with that code; ``429 rate_limit_exceeded`` is retried after the
``RateLimit-Reset`` time (bounded backoff). The token is held by the session headers only and
never appears in a message, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from appliance.errors import AtlasError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.hetzner.cloud/v1"
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 30.0
REQUEST_TIMEOUT = 30.0


class HetznerError(AtlasError):
    """The API refused or failed a call. ``code`` is Hetzner's (``uniqueness_error``, …)."""

    status = 502

    def __init__(self, code: str, message: str, *, http_status: int, details: Any = None) -> None:
        super().__init__(f"Hetzner Cloud: {message}", code=code, details=details)
        self.http_status = http_status
        # Token problems are the operator's to fix; everything else is the upstream's failure.
        if http_status in (401, 403):
            self.status = 400
        elif http_status == 404:
            self.status = 404
        elif 400 <= http_status < 500:
            self.status = 409 if code in ("uniqueness_error", "conflict", "resource_in_use") else 422


class ActionFailed(HetznerError):
    def __init__(self, action: dict[str, Any]) -> None:
        error = action.get("error") or {}
        super().__init__(
            str(error.get("code") or "action_failed"),
            f"action {action.get('command', '?')} ({action.get('id')}) failed: {error.get('message', 'no reason')}",
            http_status=200,
        )
        self.status = 502


def reset_delay(headers: Any, attempt: int, now: float | None = None) -> float:
    """Seconds to wait after a 429: until ``RateLimit-Reset`` (a UNIX time), else exponential."""
    fallback = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
    raw = headers.get("RateLimit-Reset") or headers.get("Retry-After")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return fallback
    # RateLimit-Reset is an absolute UNIX timestamp; small values are a Retry-After in seconds.
    delay = value - (now if now is not None else time.time()) if value > 10**9 else value
    return max(0.05, min(MAX_BACKOFF_SECONDS, delay))


class HetznerClient:
    """One session per client; ``async with HetznerClient(token) as api: ...``. Idempotent close."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *, max_retries: int = MAX_RETRIES) -> None:
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._max_retries = max_retries
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HetznerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            )
        return self._session

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url = self._base + path
        for attempt in range(self._max_retries + 1):
            try:
                async with self._http().request(method, url, json=json, params=params) as resp:
                    if resp.status == 429 and attempt < self._max_retries:
                        delay = reset_delay(resp.headers, attempt)
                        log.info("Hetzner rate limit on %s %s; retrying in %.1f s", method, path, delay)
                        await asyncio.sleep(delay)
                        continue
                    if resp.status == 204:
                        return {}
                    try:
                        body = await resp.json(content_type=None)
                    except ValueError:
                        body = None
                    if resp.status >= 400:
                        raise _error(resp.status, body)
                    return body if isinstance(body, dict) else {}
            except aiohttp.ClientError as exc:
                raise HetznerError(
                    "unreachable", f"the API is unreachable ({type(exc).__name__})", http_status=503
                ) from None
            except TimeoutError:
                raise HetznerError("timeout", f"{method} {path} timed out", http_status=504) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def paginate(self, path: str, key: str, params: dict[str, Any] | None = None) -> AsyncIterator[dict]:
        """Every item of a list endpoint, following ``meta.pagination.next_page``."""
        page: int | None = 1
        while page is not None:
            body = await self.request("GET", path, params={**(params or {}), "page": page, "per_page": 50})
            for item in body.get(key, []):
                yield item
            pagination = (body.get("meta") or {}).get("pagination") or {}
            page = pagination.get("next_page")

    # -- servers and actions ------------------------------------------------------------

    async def create_server(self, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        body = await self.request("POST", "/servers", json=spec)
        return body["server"], body["action"]

    async def get_server(self, server_id: int) -> dict[str, Any]:
        return (await self.request("GET", f"/servers/{server_id}"))["server"]

    async def delete_server(self, server_id: int) -> dict[str, Any] | None:
        return (await self.request("DELETE", f"/servers/{server_id}")).get("action")

    async def find_servers(self, **filters: str) -> list[dict[str, Any]]:
        return [s async for s in self.paginate("/servers", "servers", filters)]

    async def get_action(self, action_id: int) -> dict[str, Any]:
        return (await self.request("GET", f"/actions/{action_id}"))["action"]

    async def wait_action(self, action: dict[str, Any], *, timeout: float = 300.0, interval: float = 1.0) -> dict:
        """Poll an action until ``success``; raise :class:`ActionFailed` on ``error``, TimeoutError after timeout."""
        deadline = time.monotonic() + timeout
        while action.get("status") == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"action {action.get('id')} still running after {timeout:.0f} s")
            await asyncio.sleep(interval)
            action = await self.get_action(int(action["id"]))
        if action.get("status") != "success":
            raise ActionFailed(action)
        return action

    # -- SSH keys ---------------------------------------------------------------------------

    async def find_ssh_keys(self, **filters: str) -> list[dict[str, Any]]:
        return [k async for k in self.paginate("/ssh_keys", "ssh_keys", filters)]

    async def create_ssh_key(self, name: str, public_key: str, labels: dict[str, str]) -> dict[str, Any]:
        body = {"name": name, "public_key": public_key, "labels": labels}
        return (await self.request("POST", "/ssh_keys", json=body))["ssh_key"]

    async def delete_ssh_key(self, key_id: int) -> None:
        await self.request("DELETE", f"/ssh_keys/{key_id}")

    # -- firewalls --------------------------------------------------------------------------

    async def find_firewalls(self, **filters: str) -> list[dict[str, Any]]:
        return [f async for f in self.paginate("/firewalls", "firewalls", filters)]

    async def create_firewall(self, name: str, rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
        body = {"name": name, "rules": rules, "labels": labels}
        return (await self.request("POST", "/firewalls", json=body))["firewall"]

    async def apply_firewall(self, firewall_id: int, server_id: int) -> list[dict[str, Any]]:
        body = {"apply_to": [{"type": "server", "server": {"id": server_id}}]}
        answer = await self.request("POST", f"/firewalls/{firewall_id}/actions/apply_to_resources", json=body)
        return list(answer.get("actions", []))

    async def delete_firewall(self, firewall_id: int) -> None:
        await self.request("DELETE", f"/firewalls/{firewall_id}")


def _error(status: int, body: Any) -> HetznerError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return HetznerError(
            str(error.get("code") or "error"),
            str(error.get("message") or f"HTTP {status}"),
            http_status=status,
            details=error.get("details"),
        )
    return HetznerError("http_error", f"HTTP {status}", http_status=status)
