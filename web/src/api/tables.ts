import { api, buildUrl, request, seg } from "./client";
import type { Migration, RowsPage, TableInfo } from "./types";

export type SortDir = "asc" | "desc";

export const tablesApi = {
  list: (projectId: string) =>
    api.get<{ tables: TableInfo[] }>(`/projects/${seg(projectId)}/tables`).then((r) => r.tables),
  rows: (
    projectId: string,
    table: string,
    params: { schema?: string; limit: number; offset: number; order?: { column: string; dir: SortDir } | null },
    signal?: AbortSignal,
  ) =>
    api.get<RowsPage>(
      `/projects/${seg(projectId)}/tables/${seg(table)}/rows`,
      {
        schema: params.schema ?? "public",
        limit: params.limit,
        offset: params.offset,
        order: params.order ? `${params.order.column}.${params.order.dir}` : undefined,
      },
      { signal },
    ),
  exportPath: (projectId: string, table: string) => `/projects/${seg(projectId)}/tables/${seg(table)}/export`,
  exportUrl: (projectId: string, table: string, format: "csv" | "json") =>
    buildUrl(`/projects/${seg(projectId)}/tables/${seg(table)}/export`, { format }),
  importPath: (projectId: string, table: string) => `/projects/${seg(projectId)}/tables/${seg(table)}/import`,
  import: (projectId: string, table: string, file: Blob, format: "csv" | "json", mode: "insert" | "upsert") =>
    request<{ inserted: number; updated: number }>("POST", `/projects/${seg(projectId)}/tables/${seg(table)}/import`, {
      query: { format, mode },
      rawBody: file,
      contentType: format === "csv" ? "text/csv" : "application/json",
    }),
};

export const migrationsApi = {
  list: (projectId: string) =>
    api.get<{ migrations: Migration[] }>(`/projects/${seg(projectId)}/migrations`).then((r) => r.migrations),
};
