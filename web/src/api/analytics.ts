import { api, seg } from "./client";
import type { AnalyticsConnection, AnalyticsInfo, AnalyticsTenantRole, AnalyticsTenantRoleCreated } from "./types";

const base = (projectId: string) => `/projects/${seg(projectId)}/analytics`;

export type AnalyticsViewInput =
  | { name: string; table: string; columns: string[]; where?: string }
  | { name: string; sql: string };

export interface AnalyticsTenantRoleInput {
  name: string;
  tenant_column: string;
  tenant_value: string;
}

/** Same rule as the server: the role is `proj_<id>_analytics_<name>`, at most 63 characters. */
export const TENANT_ROLE_NAME = /^[a-z][a-z0-9_]{0,34}$/;

export function tenantRoleNameProblem(name: string): string | null {
  if (!name) return "Name is required";
  if (name.length > 35) return "At most 35 characters";
  if (!TENANT_ROLE_NAME.test(name)) return "Lower-case letters, digits and _, starting with a letter";
  return null;
}

/** Table names typed by a person (commas, spaces or new lines): trimmed, `public.` dropped, unique, sorted. */
export function parseTableList(text: string): string[] {
  const names = text
    .split(/[\s,]+/)
    .map((t) => t.trim().replace(/^public\./, ""))
    .filter(Boolean);
  return [...new Set(names)].sort();
}

/** The never-exposable list with `table` added or removed, in the server's order. */
export function toggleTable(tables: string[], table: string, on: boolean): string[] {
  const rest = tables.filter((t) => t !== table);
  return on ? parseTableList([...rest, table].join(",")) : rest;
}

/** libpq URI for a BI tool; without a password unless one is given. */
export function connectionUri(c: AnalyticsConnection, password?: string): string {
  const pw = password ? `:${encodeURIComponent(password)}` : "";
  return `postgresql://${encodeURIComponent(c.user)}${pw}@${c.host}:${c.port}/${encodeURIComponent(c.database)}?sslmode=${encodeURIComponent(c.sslmode)}`;
}

export const analyticsApi = {
  get: (projectId: string) => api.get<AnalyticsInfo>(base(projectId)),
  setEnabled: (projectId: string, enabled: boolean) =>
    api.post<{ connection: AnalyticsConnection | null }>(base(projectId), { enabled }),
  createView: (projectId: string, view: AnalyticsViewInput) => api.post<unknown>(`${base(projectId)}/views`, view),
  deleteView: (projectId: string, name: string) => api.del<void>(`${base(projectId)}/views/${seg(name)}`),
  resetPassword: (projectId: string) => api.post<{ password: string }>(`${base(projectId)}/password`),
  setNeverExposable: (projectId: string, tables: string[]) =>
    api.put<{ never_exposable: string[] }>(`${base(projectId)}/never-exposable`, { tables }),
  listTenantRoles: (projectId: string) =>
    api.get<{ tenant_roles: AnalyticsTenantRole[] }>(`${base(projectId)}/tenant-roles`),
  createTenantRole: (projectId: string, role: AnalyticsTenantRoleInput) =>
    api.post<AnalyticsTenantRoleCreated>(`${base(projectId)}/tenant-roles`, role),
  deleteTenantRole: (projectId: string, name: string) =>
    api.del<void>(`${base(projectId)}/tenant-roles/${seg(name)}`),
  rotateTenantPassword: (projectId: string, name: string) =>
    api.post<{ password: string }>(`${base(projectId)}/tenant-roles/${seg(name)}/password`),
};
