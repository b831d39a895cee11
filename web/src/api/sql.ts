import { api, seg } from "./client";
import type { SqlResult } from "./types";

/** Error codes of POST /projects/{id}/sql that carry details.position. */
export const SQL_ERROR_CODES = ["sql_rejected", "sql_syntax_error", "sql_error"] as const;

export const sqlApi = {
  run: (projectId: string, sql: string, signal?: AbortSignal) =>
    api.post<SqlResult>(`/projects/${seg(projectId)}/sql`, { sql }, { signal }),
};
