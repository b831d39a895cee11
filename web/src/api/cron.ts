import { api, seg } from "./client";
import type { CronJob, CronJobInput, CronRun } from "./types";

export const cronApi = {
  list: (projectId?: string | null) =>
    api.get<{ jobs: CronJob[] }>("/cron-jobs", { project_id: projectId ?? undefined }).then((r) => r.jobs),
  get: (id: string) => api.get<CronJob>(`/cron-jobs/${seg(id)}`),
  create: (input: CronJobInput) => api.post<CronJob>("/cron-jobs", input),
  update: (id: string, patch: CronJobInput) => api.patch<CronJob>(`/cron-jobs/${seg(id)}`, patch),
  remove: (id: string) => api.del<void>(`/cron-jobs/${seg(id)}`),
  runNow: (id: string) => api.post<{ run_id: string }>(`/cron-jobs/${seg(id)}/run`),
  runs: (id: string, params: { limit?: number; before?: string | null } = {}) =>
    api.get<{ runs: CronRun[]; next_before: string | null }>(`/cron-jobs/${seg(id)}/runs`, {
      limit: params.limit,
      before: params.before ?? undefined,
    }),
  preview: (cron: string, timezone: string, count = 5, signal?: AbortSignal) =>
    api
      .get<{ runs: string[] }>("/cron-jobs/preview", { cron, timezone, count }, { signal })
      .then((r) => r.runs),
};
