"""Cron jobs through the admin API of a real daemon, against real HTTP targets on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from aiohttp.test_utils import TestServer

from appliance.pg.embedded import EmbeddedPostgres
from appliance.scheduler import safehttp
from tests.fixtures.daemon import RunningDaemon, running_daemon

OK = "http://127.0.0.1:{port}/ok"
PLATFORM = {"name": "x", "type": "platform", "schedule_cron": "@daily"}
REFUSED = "target refused"
SECRET = "Bearer s3cr3t-header-value"
BODY_SECRET = "b0dy-s3cr3t"


@dataclass
class Target:
    port: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


TARGET = web.AppKey("target", Target)


async def _handle(request: web.Request) -> web.StreamResponse:
    target = request.app[TARGET]
    name = request.match_info["name"]
    target.hits[name] = target.hits.get(name, 0) + 1
    if name == "ok":
        return web.Response(text="hello")
    if name == "big":
        return web.Response(text="".join(f"line {i:06d}\n" for i in range(20_000)))
    if name == "error":
        return web.Response(status=500, text="boom")
    if name == "hang":
        await target.release.wait()
        return web.Response(text="late")
    if name == "echo":
        body = await request.json() if request.can_read_body else None
        target.seen.append({"authorization": request.headers.get("Authorization"), "body": body})
        return web.Response(text="echoed")
    if name == "to-metadata":
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
    if name == "to-private":
        raise web.HTTPFound(f"http://10.0.0.7:{target.port}/ok")
    raise web.HTTPNotFound()


class MetadataDns(AbstractResolver):
    """``metadata.test`` answers with the cloud metadata address; everything else resolves normally."""

    def __init__(self) -> None:
        self._real = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == "metadata.test":
            address = "169.254.169.254"
            return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]
        return await self._real.resolve(host, port, family)

    async def close(self) -> None:
        await self._real.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    app = web.Application()
    app[TARGET] = state = Target()
    app.router.add_route("*", "/{name}", _handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    state.port = server.port
    yield state
    state.release.set()
    await server.close()


@pytest.fixture
async def cron(
    tmp_path: Path, pg: EmbeddedPostgres, target: Target, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningDaemon]:
    monkeypatch.setattr(safehttp, "DefaultResolver", MetadataDns)
    # localhost is allowlisted by name on a port whose loopback address is not: the name must not unlock it.
    allow = (f"127.0.0.1:{target.port}", f"localhost:{free_port()}", f"metadata.test:{target.port}")
    async with running_daemon(tmp_path / "state", pg, scheduler={"http_allowlist": allow}) as running:
        yield running


def http_job(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "ping", "type": "http", "schedule_cron": "0 3 * * *", "timezone": "UTC", "http_url": url, **extra}


async def create_job(atlas: RunningDaemon, body: dict[str, Any]) -> dict[str, Any]:
    status, job = await atlas.admin("POST", "/admin/api/cron-jobs", json=body)
    assert status == 201, job
    return job


async def finished_run(atlas: RunningDaemon, job_id: str, run_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await atlas.admin("GET", f"/admin/api/cron-jobs/{job_id}/runs?limit=50")
        assert status == 200, body
        run = next((r for r in body["runs"] if r["id"] == run_id), None)
        if run is not None and run["status"] != "running":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


async def run_now(atlas: RunningDaemon, job_id: str) -> str:
    status, body = await atlas.admin("POST", f"/admin/api/cron-jobs/{job_id}/run")
    assert status == 202, body
    return str(body["run_id"])


# ---------------------------------------------------------------- bad input at creation


@pytest.mark.parametrize(
    ("case", "body", "status", "field"),
    [
        ("invalid cron", http_job(OK, schedule_cron="61 * * * *"), 400, "schedule_cron"),
        ("cron with 7 fields", http_job(OK, schedule_cron="* * * * * * *"), 400, "schedule_cron"),
        ("invalid timezone", http_job(OK, timezone="Mars/Olympus"), 400, "timezone"),
        ("target not allowlisted", http_job("https://example.com/hook"), 400, "http_url"),
        ("metadata address", http_job("http://169.254.169.254/latest/meta-data/"), 400, "http_url"),
        ("allowlisted host, other port", http_job("http://127.0.0.1:1/ok"), 400, "http_url"),
        ("not http", http_job("file:///etc/passwd"), 400, "http_url"),
        ("no url", http_job(None), 400, "http_url"),
        ("bad method", http_job(OK, http_method="TRACE"), 400, "http_method"),
        ("header with newline", http_job(OK, http_headers={"X-A": "a\r\nb"}), 400, "http_headers"),
        ("headers not an object", http_job(OK, http_headers=["x"]), 400, "http_headers"),
        ("retries too many", http_job(OK, retries=11), 400, "retries"),
        ("timeout zero", http_job(OK, timeout_ms=0), 400, "timeout_ms"),
        ("enabled not bool", http_job(OK, enabled="yes"), 400, "enabled"),
        ("bad policy", http_job(OK, missed_run_policy="always"), 400, "missed_run_policy"),
        ("unknown field", http_job(OK, command="rm -rf /"), 400, "command"),
        ("no name", {**http_job(OK), "name": " "}, 400, "name"),
        ("bad type", http_job(OK, type="shell"), 400, "type"),
        ("body too large", http_job(OK, http_body="x" * 70_000), 400, "http_body"),
        ("unknown project", http_job(OK, project_id="nope"), 404, "project_id"),
        ("unknown action", {**PLATFORM, "action": "sh"}, 400, "action"),
        ("platform without action", PLATFORM, 400, "action"),
        ("action args not object", {**PLATFORM, "action": "cleanup_runs", "action_args": [1]}, 400, "action_args"),
    ],
)
async def test_create_refuses_bad_input(
    cron: RunningDaemon, target: Target, case: str, body: dict[str, Any], status: int, field: str
) -> None:
    sent = json.loads(json.dumps(body).replace("{port}", str(target.port)))
    got, answer = await cron.admin("POST", "/admin/api/cron-jobs", json=sent)
    assert (got, answer["error"]["details"]["field"]) == (status, field), (case, answer)
    assert set(answer) == {"error"} and answer["error"]["message"]


@pytest.mark.parametrize(
    ("query", "status", "count", "field"),
    [
        ("cron=*/15+*+*+*+*&timezone=Europe/Helsinki&count=3", 200, 3, None),
        ("cron=*/1+*+*+*+*+*&count=4", 200, 4, None),
        ("cron=@daily&timezone=America/New_York", 200, 5, None),
        ("cron=not+a+cron&timezone=UTC", 400, None, "cron"),
        ("cron=*+*+*+*+*&timezone=Nowhere/City", 400, None, "timezone"),
        ("cron=*+*+*+*+*&count=500", 400, None, "count"),
    ],
)
async def test_preview(cron: RunningDaemon, query: str, status: int, count: int | None, field: str | None) -> None:
    got, body = await cron.admin("GET", f"/admin/api/cron-jobs/preview?{query}")
    assert got == status, body
    if field is None:
        assert len(body["runs"]) == count
        assert all(run.endswith("Z") for run in body["runs"]) and body["runs"] == sorted(body["runs"])
    else:
        assert body["error"]["details"]["field"] == field


# ---------------------------------------------------------------- runs against real targets


@pytest.mark.parametrize(
    ("case", "path", "extra", "status", "http_status", "attempt", "error"),
    [
        ("2xx", "/ok", {}, "success", 200, 1, None),
        ("500 retried with backoff", "/error", {"retries": 2, "retry_backoff_ms": 100}, "fail", 500, 3, "HTTP 500"),
        (
            "hanging target",
            "/hang",
            {"timeout_ms": 300, "retries": 1, "retry_backoff_ms": 10},
            "timeout",
            None,
            2,
            "300 ms",
        ),
        ("name resolving to loopback", "http://localhost:{other}/ok", {"retries": 2}, "fail", None, 1, REFUSED),
        ("name resolving to metadata", "http://metadata.test:{port}/ok", {"retries": 2}, "fail", None, 1, REFUSED),
        ("redirect to metadata", "/to-metadata", {"retries": 2}, "fail", None, 1, REFUSED),
        ("redirect to a private address", "/to-private", {"retries": 2}, "fail", None, 1, REFUSED),
    ],
)
async def test_run_now_records_the_outcome(
    cron: RunningDaemon,
    target: Target,
    case: str,
    path: str,
    extra: dict[str, Any],
    status: str,
    http_status: int | None,
    attempt: int,
    error: str | None,
) -> None:
    other = cron.daemon.config.scheduler.http_allowlist[1].split(":")[1]
    url = path if path.startswith("http") else "http://127.0.0.1:{port}" + path
    job = await create_job(cron, http_job(url.format(port=target.port, other=other), **extra))
    started = time.monotonic()
    run = await finished_run(cron, job["id"], await run_now(cron, job["id"]))
    assert (run["status"], run["http_status"], run["attempt"]) == (status, http_status, attempt), (case, run)
    assert run["finished_at"] and run["duration_ms"] is not None
    if error is None:
        assert run["error_text"] is None and run["log_excerpt"] == "hello"
    else:
        assert error in run["error_text"], (case, run)
    if case == "500 retried with backoff":
        assert target.hits["error"] == 3
        # Two waits of ~100 ms and ~200 ms (up to 10 % jitter) between three attempts.
        assert run["duration_ms"] >= 250 and time.monotonic() - started >= 0.25
    if "redirect" in case:
        assert target.hits[path.rsplit("/", 1)[1]] == 1
    status_code, detail = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}")
    assert status_code == 200 and detail["last_run"]["id"] == run["id"]


async def test_secrets_are_sealed_masked_and_never_logged(
    cron: RunningDaemon, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = http_job(
        f"http://127.0.0.1:{target.port}/echo",
        http_method="POST",
        http_headers={"Authorization": SECRET, "X-Trace": "t-1"},
        http_body={"token": BODY_SECRET},
    )
    job = await create_job(cron, body)
    assert job["http_headers"] == {"Authorization": "••••", "X-Trace": "••••"} and job["http_body"] == "••••"
    # A client sends back what it was shown, changing only one header: the masked ones are kept.
    patch = {"http_headers": {"Authorization": "••••", "X-Trace": "t-2"}, "http_body": "••••", "retries": 1}
    status, patched = await cron.admin("PATCH", f"/admin/api/cron-jobs/{job['id']}", json=patch)
    assert status == 200, patched
    assert patched["http_headers"] == job["http_headers"] and patched["retries"] == 1
    run = await finished_run(cron, job["id"], await run_now(cron, job["id"]))
    assert run["status"] == "success"
    assert target.seen == [{"authorization": SECRET, "body": {"token": BODY_SECRET}}]
    _, listed = await cron.admin("GET", "/admin/api/cron-jobs")
    _, one = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}")
    _, runs = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}/runs")
    _, audit = await cron.admin("GET", "/admin/api/audit")
    for shown in (job, patched, listed, one, runs, audit):
        assert "s3cr3t" not in json.dumps(shown)
    row = await cron.daemon.core.store.fetchone("SELECT * FROM cron_jobs WHERE id = ?", (job["id"],))
    assert row is not None
    assert all("s3cr3t" not in str(value) and "t-2" not in str(value) for value in tuple(row))
    assert caplog.records
    assert all("s3cr3t" not in r.getMessage() and BODY_SECRET not in r.getMessage() for r in caplog.records)
    bad = await cron.admin("PATCH", f"/admin/api/cron-jobs/{job['id']}", json={"http_headers": {"X-New": "••••"}})
    assert bad[0] == 400 and bad[1]["error"]["details"]["field"] == "http_headers"


async def test_crud_pagination_overlap_and_audit(cron: RunningDaemon, target: Target) -> None:
    status, project = await cron.admin("POST", "/admin/api/projects", json={"name": "Cron Owner"})
    assert status == 201, project
    job = await create_job(cron, http_job(f"http://127.0.0.1:{target.port}/hang", project_id=project["id"]))
    assert job["project_id"] == project["id"] and job["next_run_at"] and job["last_run"] is None
    first = await run_now(cron, job["id"])
    second = await run_now(cron, job["id"])  # the first one still hangs
    _, runs = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}/runs")
    by_id = {r["id"]: r for r in runs["runs"]}
    assert by_id[first]["status"] == "running" and by_id[second]["status"] == "skipped"
    target.release.set()
    assert (await finished_run(cron, job["id"], first))["status"] == "success"
    for _ in range(3):
        await finished_run(cron, job["id"], await run_now(cron, job["id"]))
    seen: list[str] = []
    before: str | None = None
    while True:
        query = f"?limit=2&before={before}" if before else "?limit=2"
        status, page = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}/runs{query}")
        assert status == 200 and len(page["runs"]) <= 2
        seen += [r["id"] for r in page["runs"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) == 5 and seen[-2:] == [second, first]

    for scenario in (
        ("GET", f"/admin/api/cron-jobs?project_id={project['id']}", None, 200),
        ("GET", "/admin/api/cron-jobs?project_id=other", None, 200),
        ("PATCH", f"/admin/api/cron-jobs/{job['id']}", {"schedule_cron": "*/5 * * * *", "enabled": False}, 200),
        ("PATCH", f"/admin/api/cron-jobs/{job['id']}", {"timezone": "Nowhere"}, 400),
        ("PATCH", "/admin/api/cron-jobs/cj_missing", {"name": "x"}, 404),
        ("GET", f"/admin/api/cron-jobs/{job['id']}/runs?before=cr_unknown", None, 400),
        ("POST", "/admin/api/cron-jobs/cj_missing/run", None, 404),
    ):
        method, path, payload, expected = scenario
        status, body = await cron.admin(method, path, json=payload)
        assert status == expected, (scenario, body)
    _, mine = await cron.admin("GET", f"/admin/api/cron-jobs?project_id={project['id']}")
    _, others = await cron.admin("GET", "/admin/api/cron-jobs?project_id=other")
    # The project also has its default daily backup job (a platform job made by the backups role).
    http_jobs = [j for j in mine["jobs"] if j["type"] == "http"]
    assert [j["id"] for j in http_jobs] == [job["id"]] and others["jobs"] == []
    mine["jobs"] = http_jobs
    assert mine["jobs"][0]["enabled"] is False and mine["jobs"][0]["next_run_at"] is None
    assert mine["jobs"][0]["last_run"]["status"] == "success"

    status, _ = await cron.admin("DELETE", f"/admin/api/cron-jobs/{job['id']}")
    assert status == 204
    assert (await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}"))[0] == 404
    _, audit = await cron.admin("GET", "/admin/api/audit?limit=50")
    actions = [e["action"] for e in audit["entries"] if e["target"] == job["id"]]
    assert actions.count("cron_job.run") == 5
    assert {"cron_job.create", "cron_job.update", "cron_job.delete"} <= set(actions)
    assert all(e["actor"] == "dev" for e in audit["entries"] if e["target"] == job["id"])


async def test_platform_job_cleans_old_runs(cron: RunningDaemon) -> None:
    job = await create_job(
        cron,
        {**PLATFORM, "name": "prune", "action": "cleanup_runs", "action_args": {"days": 7}},
    )
    assert job["http_url"] is None and job["http_headers"] is None and job["action_args"] == {"days": 7}
    store = cron.daemon.core.store
    await store.execute(
        "INSERT INTO cron_job_runs (id, job_id, started_at, finished_at, status) VALUES ('cr_old', ?, ?, ?, 'success')",
        (job["id"], "2020-01-01T00:00:00.000000Z", "2020-01-01T00:00:01.000000Z"),
    )
    run = await finished_run(cron, job["id"], await run_now(cron, job["id"]))
    assert run["status"] == "success" and run["log_excerpt"] == "removed 1 run(s) older than 7 day(s)"
    _, actions = await cron.admin("GET", "/admin/api/cron-jobs/actions")
    assert "cleanup_runs" in [a["name"] for a in actions["actions"]]


async def test_seconds_schedule_fires_in_real_time(cron: RunningDaemon, target: Target) -> None:
    job = await create_job(cron, http_job(f"http://127.0.0.1:{target.port}/ok", schedule_cron="*/1 * * * * *"))
    deadline = time.monotonic() + 5
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        _, body = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}/runs")
        runs = [r for r in body["runs"] if r["status"] == "success"]
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(runs) >= 2, runs
    assert target.hits["ok"] >= 2
    _, detail = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}")
    assert detail["last_run"] is not None and detail["next_run_at"]


async def test_a_long_answer_keeps_an_excerpt_and_the_full_log(cron: RunningDaemon, target: Target) -> None:
    job = await create_job(cron, http_job(f"http://127.0.0.1:{target.port}/big"))
    run = await finished_run(cron, job["id"], await run_now(cron, job["id"]))
    assert run["status"] == "success" and run["has_full_log"] is True
    assert len(run["log_excerpt"]) == 64 * 1024
    status, full = await cron.admin("GET", f"/admin/api/cron-jobs/{job['id']}/runs/{run['id']}/log")
    assert status == 200
    assert full == "".join(f"line {i:06d}\n" for i in range(20_000)).encode()
    small = await create_job(cron, http_job(f"http://127.0.0.1:{target.port}/ok"))
    small_run = await finished_run(cron, small["id"], await run_now(cron, small["id"]))
    assert small_run["has_full_log"] is False
    status, body = await cron.admin("GET", f"/admin/api/cron-jobs/{small['id']}/runs/{small_run['id']}/log")
    assert (status, body["error"]["code"]) == (404, "log_not_found")
    status, body = await cron.admin("GET", f"/admin/api/cron-jobs/{small['id']}/runs/cr_nope/log")
    assert (status, body["error"]["code"]) == (404, "run_not_found")
