import { api, seg } from "./client";
import type { AnalyticsConnection, AnalyticsInfo } from "./types";

const base = (projectId: string) => `/projects/${seg(projectId)}/analytics`;

export type AnalyticsViewInput =
  | { name: string; table: string; columns: string[]; where?: string }
  | { name: string; sql: string };

export const analyticsApi = {
  get: (projectId: string) => api.get<AnalyticsInfo>(base(projectId)),
  setEnabled: (projectId: string, enabled: boolean) =>
    api.post<{ connection: AnalyticsConnection | null }>(base(projectId), { enabled }),
  createView: (projectId: string, view: AnalyticsViewInput) => api.post<unknown>(`${base(projectId)}/views`, view),
  deleteView: (projectId: string, name: string) => api.del<void>(`${base(projectId)}/views/${seg(name)}`),
  resetPassword: (projectId: string) => api.post<{ password: string }>(`${base(projectId)}/password`),
};
