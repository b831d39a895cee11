"""Admin API: backups, jobs, restore and undo, clone, signed download links, table import/export,
whole-database SQL export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.backups import importexport, links
from appliance.backups.clone import CloneService, start_clone_job
from appliance.backups.jobs import JobManager, JobProgress
from appliance.backups.restore import RestoreService, start_restore_job
from appliance.backups.service import BackupService
from appliance.dashboard.adminauth import audit_admin
from appliance.errors import BadRequest
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()
LINK_PURPOSE = "backup-download"


async def _audit(
    request: web.Request,
    action: str,
    *,
    project_id: str | None,
    target: str | None = None,
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    await audit_admin(
        request,
        action,
        target=target or project_id,
        project_id=project_id,
        outcome=outcome,
        details=details,
        actor=actor,
    )


@routes.post("/admin/api/projects/{project_id}/backups")
async def create_backup(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    service = core.service(BackupService)

    async def run(progress: JobProgress) -> dict[str, Any]:
        return await service.create_backup(project.id, progress, job_id=progress.job_id)

    job_id = await core.service(JobManager).start("backup", project.id, run)
    await _audit(request, "backup.create", project_id=project.id, details={"job_id": job_id})
    return json_response({"job_id": job_id}, status=202)


@routes.get("/admin/api/projects/{project_id}/backups")
async def list_backups(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    rows = await core.service(BackupService).list_backups(project.id)
    keys = ("id", "created_at", "size", "sha256", "status", "verified_at", "error")
    return json_response({"backups": [{k: r[k] for k in keys} for r in rows]})


@routes.get("/admin/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    job = await request.app[CORE].service(JobManager).get(request.match_info["job_id"], reveal=True)
    return json_response(
        {k: job[k] for k in ("id", "kind", "project_id", "state", "phase", "progress", "result", "error")}
    )


@routes.post("/admin/api/backups/{backup_id}/verify")
async def verify_backup(request: web.Request) -> web.Response:
    core = request.app[CORE]
    service = core.service(BackupService)
    backup = await service.get(request.match_info["backup_id"])

    async def run(progress: JobProgress) -> dict[str, Any]:
        async with service.lock(backup["project_id"]):
            done = await service.verify(backup["id"], progress)
        return {"id": done["id"], "status": done["status"], "verified_at": done["verified_at"]}

    job_id = await core.service(JobManager).start("verify", backup["project_id"], run)
    return json_response({"job_id": job_id}, status=202)


async def _stream_backup(request: web.Request, backup_id: str, *, actor: str | None = None) -> web.StreamResponse:
    core = request.app[CORE]
    service = core.service(BackupService)
    backup = await service.get(backup_id)
    stream = service.decrypted(backup["id"])
    first = await anext(stream)  # fails here (with a clean error) when the file is missing or damaged at once
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{backup["project_id"] or "control"}-{backup["id"]}.dump"',
            "Cache-Control": "no-store",
        }
    )
    await _audit(request, "backup.download", project_id=backup["project_id"], target=backup["id"], actor=actor)
    await response.prepare(request)
    await response.write(first)
    # A chunk that fails authentication later raises here: the connection is cut, never completed.
    async for chunk in stream:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/admin/api/backups/{backup_id}/download")
async def download_backup(request: web.Request) -> web.StreamResponse:
    return await _stream_backup(request, request.match_info["backup_id"])


@routes.post("/admin/api/backups/{backup_id}/download-url")
async def download_url(request: web.Request) -> web.Response:
    core = request.app[CORE]
    backup = await core.service(BackupService).get(request.match_info["backup_id"])
    body = await read_json_object(request) if request.can_read_body else {}
    ttl = links.ttl_from(body.get("expires_in"))
    path = links.signed_path(core.box.derive(LINK_PURPOSE), backup["id"], ttl)
    await _audit(request, "backup.download_url", project_id=backup["project_id"], target=backup["id"])
    return json_response({"url": str(request.url.origin()) + path, "expires_in": ttl})


# Outside /admin/api on purpose, so the admin auth middleware lets a plain browser link through:
# the signature and its expiry are the only credential. Nothing else is served under this path.
@routes.get(links.PATH)
async def signed_download(request: web.Request) -> web.StreamResponse:
    backup_id = request.match_info["backup_id"]
    key = request.app[CORE].box.derive(LINK_PURPOSE)
    links.check(key, backup_id, request.query.get("expires"), request.query.get("sig"))
    return await _stream_backup(request, backup_id, actor="signed download link")


@routes.post("/admin/api/projects/{project_id}/restore")
async def restore(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project_id = request.match_info["project_id"]
    body = await read_json_object(request)
    job_id = await start_restore_job(core, project_id, body.get("backup_id"), body.get("confirm"))
    await _audit(
        request, "backup.restore", project_id=project_id, details={"backup_id": body["backup_id"], "job_id": job_id}
    )
    return json_response({"job_id": job_id}, status=202)


@routes.post("/admin/api/projects/{project_id}/clone")
async def clone_project(request: web.Request) -> web.Response:
    """Restore a backup as a new project; the job's result carries the new keys, shown once."""
    core = request.app[CORE]
    source_id = request.match_info["project_id"]
    body = await read_json_object(request)
    backup, name = await core.service(CloneService).check_request(source_id, body.get("backup_id"), body.get("name"))
    job_id = await start_clone_job(core, source_id, backup["id"], name)
    await _audit(request, "backup.clone", project_id=source_id, details={"backup_id": backup["id"], "job_id": job_id})
    return json_response({"job_id": job_id}, status=202)


@routes.post("/admin/api/projects/{project_id}/restore/undo")
async def undo_restore(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project_id = request.match_info["project_id"]
    result = await core.service(RestoreService).undo(project_id)
    await _audit(request, "backup.restore_undo", project_id=project_id, details={"backup_id": result["backup_id"]})
    return json_response(result)


# -- import / export ---------------------------------------------------------------------------


def _format(request: web.Request, default: str = "csv") -> str:
    fmt = request.query.get("format", default)
    if fmt not in ("csv", "json"):
        raise BadRequest("format must be csv or json", code="invalid_parameter", details={"field": "format"})
    return fmt


@routes.get("/admin/api/projects/{project_id}/tables/{table}/export")
async def export_table(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    fmt = _format(request)
    table = request.match_info["table"]
    async with core.pools.connection(project.id, "owner") as conn:
        target = await importexport.find_table(conn, table)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/json",
                "Content-Disposition": f'attachment; filename="{target.name}.{fmt}"',
            }
        )
        await response.prepare(request)
        await importexport.export_table(conn, target, fmt, response.write)
    await response.write_eof()
    return response


@routes.post("/admin/api/projects/{project_id}/tables/{table}/import")
async def import_table(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    fmt = _format(request, default="")
    mode = request.query.get("mode", "insert")
    if mode not in ("insert", "upsert"):
        raise BadRequest("mode must be insert or upsert", code="invalid_parameter", details={"field": "mode"})
    mapping = importexport.parse_mapping(request.query.get("columns"))
    body = await importexport.read_body(request.content, request.content_length, core.config.backups.max_import_bytes)
    table = request.match_info["table"]
    try:
        async with core.pools.connection(project.id, "owner") as conn:
            result = await importexport.import_rows(conn, table, importexport.parse_rows(body, fmt), mapping, mode)
    except Exception as exc:
        details = {"table": table, "error": getattr(exc, "code", type(exc).__name__)}
        await _audit(request, "table.import", project_id=project.id, outcome="failure", details=details)
        raise
    await _audit(request, "table.import", project_id=project.id, details={"table": table, **result})
    return json_response(result)


@routes.get("/admin/api/projects/{project_id}/export.sql")
async def export_sql(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/sql; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{project.id}.sql"',
        }
    )
    await _audit(request, "project.export_sql", project_id=project.id)
    await response.prepare(request)
    await importexport.export_sql(core.pg, project.db_name, response.write)
    await response.write_eof()
    return response
