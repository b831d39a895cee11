import { api } from "./client";
import type { AuditEntry } from "./types";

export const auditApi = {
  list: (params: { project?: string; limit?: number; before?: string | null }) =>
    api.get<{ entries: AuditEntry[]; next_before: string | null }>("/audit", {
      project: params.project,
      limit: params.limit,
      before: params.before ?? undefined,
    }),
};
