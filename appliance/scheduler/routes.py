"""Admin API for cron jobs, served by the dashboard role under /admin/api/cron-jobs.

Handlers parse, call the job store or the scheduler, and render. Audit entries name the job,
never its headers or body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from appliance.core import Core
from appliance.dashboard.adminauth import audit_admin
from appliance.errors import BadRequest, NotFound, ServiceUnavailable
from appliance.scheduler import platform_jobs
from appliance.scheduler.cronspec import validate_schedule
from appliance.scheduler.jobs import Job, JobStore
from appliance.scheduler.loop import Scheduler, SchedulerSlot, job_store
from appliance.scheduler.runs import LOG_BUCKET, RunLog
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int, read_json_object

routes = web.RouteTableDef()
BASE = "/admin/api/cron-jobs"


def _store(core: Core) -> tuple[JobStore, Scheduler | None]:
    return job_store(core), core.service(SchedulerSlot).scheduler


async def _render(core: Core, job: Job) -> dict[str, Any]:
    last = await RunLog(core.store).last_runs([job.id])
    return job.view(last.get(job.id))


async def _audit(request: web.Request, action: str, job: Job, **details: Any) -> None:
    await audit_admin(
        request,
        action,
        target=job.id,
        project_id=job.project_id,
        details={"name": job.name, "type": job.type, **details},
    )


@routes.get(f"{BASE}/preview")
async def preview(request: web.Request) -> web.Response:
    count = query_int(request, "count", 5, minimum=1, maximum=50)
    try:
        schedule = validate_schedule(request.query.get("cron", ""), request.query.get("timezone") or "UTC")
    except BadRequest as exc:
        # Name the query parameter the caller sent.
        exc.details = {"field": "cron" if exc.code == "invalid_cron" else "timezone"}
        raise
    runs = schedule.preview(count, datetime.now(UTC))
    return json_response({"runs": [run.isoformat().replace("+00:00", "Z") for run in runs]})


@routes.get(f"{BASE}/actions")
async def actions(request: web.Request) -> web.Response:
    listed = [
        {"name": a.name, "needs_project": a.needs_project, "description": a.description}
        for a in platform_jobs.available_actions()
    ]
    return json_response({"actions": listed})


@routes.get(BASE)
async def list_jobs(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    found = await jobs.list_jobs(request.query.get("project_id") or None)
    last = await RunLog(core.store).last_runs([job.id for job in found])
    return json_response({"jobs": [job.view(last.get(job.id)) for job in found]})


@routes.post(BASE)
async def create_job(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    job = await jobs.create(await read_json_object(request))
    await _audit(request, "cron_job.create", job)
    return json_response(job.view(), status=201)


@routes.get(BASE + "/{id}")
async def get_job(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    return json_response(await _render(core, await jobs.get(request.match_info["id"])))


@routes.patch(BASE + "/{id}")
async def update_job(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    patch = await read_json_object(request)
    job = await jobs.update(request.match_info["id"], patch)
    await _audit(request, "cron_job.update", job, fields=sorted(patch))
    return json_response(await _render(core, job))


@routes.delete(BASE + "/{id}")
async def delete_job(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    job = await jobs.delete(request.match_info["id"])
    await _audit(request, "cron_job.delete", job)
    return web.Response(status=204)


@routes.post(BASE + "/{id}/run")
async def run_job(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, scheduler = _store(core)
    job = await jobs.get(request.match_info["id"])
    if scheduler is None:
        raise ServiceUnavailable("the scheduler role is not enabled on this node", code="scheduler_inactive")
    started = await scheduler.run_now(job.id)
    await _audit(request, "cron_job.run", job, run_id=started["run_id"])
    return json_response(started, status=202)


@routes.get(BASE + "/{id}/runs")
async def list_runs(request: web.Request) -> web.Response:
    core = request.app[CORE]
    jobs, _ = _store(core)
    job = await jobs.get(request.match_info["id"])
    limit = query_int(request, "limit", 25, minimum=1, maximum=200)
    runs, next_before = await RunLog(core.store).page(job.id, limit=limit, before=request.query.get("before") or None)
    return json_response({"runs": runs, "next_before": next_before})


@routes.get(BASE + "/{id}/runs/{run_id}/log")
async def full_log(request: web.Request) -> web.StreamResponse:
    """The whole answer of a run whose answer was longer than its excerpt, streamed."""
    core = request.app[CORE]
    jobs, _ = _store(core)
    job = await jobs.get(request.match_info["id"])
    key = await RunLog(core.store).log_object_key(job.id, request.match_info["run_id"])
    if key is None:
        raise NotFound("this run kept no full log (its answer fit in the excerpt)", code="log_not_found")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    async for chunk in core.storage.get_stream(LOG_BUCKET, key):
        await response.write(chunk)
    await response.write_eof()
    return response
