import { api, seg } from "./client";
import type { Backup, JobStatus } from "./types";

/** Backup states the server accepts for a restore or a clone (`GOOD` in appliance/backups/service.py). */
export const RESTORABLE_STATUSES = ["completed", "verified"];

export const isRestorable = (b: Pick<Backup, "status">) => RESTORABLE_STATUSES.includes(b.status);

/** What a finished clone job yields: the new project, and its keys on the one read that reveals them. */
export interface CloneOutcome {
  projectId: string;
  name: string;
  keys: { publishable: string; secret: string } | null;
}

/** Reads a clone job's result; null unless the job succeeded with a new project in its result. */
export function cloneOutcome(job: JobStatus): CloneOutcome | null {
  if (job.state !== "succeeded" || !job.result || typeof job.result !== "object") return null;
  const r = job.result as Record<string, unknown>;
  const project = (r.project ?? {}) as Record<string, unknown>;
  const projectId = typeof r.project_id === "string" ? r.project_id : null;
  if (!projectId) return null;
  const name = typeof project.name === "string" ? project.name : projectId;
  const keys =
    typeof r.publishable_key === "string" && typeof r.secret_key === "string"
      ? { publishable: r.publishable_key, secret: r.secret_key }
      : null;
  return { projectId, name, keys };
}

export const jobsApi = {
  get: (jobId: string, signal?: AbortSignal) => api.get<JobStatus>(`/jobs/${seg(jobId)}`, undefined, { signal }),
};

export const backupsApi = {
  list: (projectId: string) =>
    api.get<{ backups: Backup[] }>(`/projects/${seg(projectId)}/backups`).then((r) => r.backups),
  create: (projectId: string) => api.post<{ job_id: string }>(`/projects/${seg(projectId)}/backups`),
  downloadPath: (backupId: string) => `/backups/${seg(backupId)}/download`,
  restore: (projectId: string, backupId: string) =>
    api.post<{ job_id: string }>(`/projects/${seg(projectId)}/restore`, { backup_id: backupId, confirm: projectId }),
  /** Restore a backup as a new project; follow the job, whose result carries the new keys once. */
  clone: (projectId: string, backupId: string, name: string) =>
    api.post<{ job_id: string }>(`/projects/${seg(projectId)}/clone`, { backup_id: backupId, name }),
  undoRestore: (projectId: string) => api.post<{ job_id?: string }>(`/projects/${seg(projectId)}/restore/undo`),
};
