import { api, seg } from "./client";
import type { ApiKey, CreatedProject, KeyType, Project, ProjectDetail } from "./types";

export const projectsApi = {
  list: () => api.get<{ projects: Project[] }>("/projects").then((r) => r.projects),
  create: (name: string) => api.post<CreatedProject>("/projects", { name }),
  get: (id: string) => api.get<ProjectDetail>(`/projects/${seg(id)}`),
  remove: (id: string) => api.del<void>(`/projects/${seg(id)}`, { confirm: id }),
};

export const keysApi = {
  list: (projectId: string) => api.get<{ keys: ApiKey[] }>(`/projects/${seg(projectId)}/keys`).then((r) => r.keys),
  create: (projectId: string, type: KeyType) =>
    api.post<{ key: ApiKey; secret: string }>(`/projects/${seg(projectId)}/keys`, { type }),
  rotate: (projectId: string, keyId: string, graceSeconds?: number) =>
    api.post<{ key: ApiKey; secret: string; old_key: ApiKey }>(
      `/projects/${seg(projectId)}/keys/${seg(keyId)}/rotate`,
      graceSeconds !== undefined ? { grace_seconds: graceSeconds } : {},
    ),
  revoke: (projectId: string, keyId: string) =>
    api.post<{ key: ApiKey }>(`/projects/${seg(projectId)}/keys/${seg(keyId)}/revoke`),
};
