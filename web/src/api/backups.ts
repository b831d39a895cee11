import { api, seg } from "./client";
import type { Backup, JobStatus } from "./types";

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
  undoRestore: (projectId: string) => api.post<{ job_id?: string }>(`/projects/${seg(projectId)}/restore/undo`),
};
