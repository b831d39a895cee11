import { api, seg } from "./client";
import type { AuthUser } from "./types";

const base = (projectId: string) => `/projects/${seg(projectId)}/users`;

export const usersApi = {
  list: (projectId: string, params: { search?: string; limit: number; offset: number }) =>
    api.get<{ users: AuthUser[]; total: number }>(base(projectId), params),
  disable: (projectId: string, uid: string) => api.post<unknown>(`${base(projectId)}/${seg(uid)}/disable`),
  enable: (projectId: string, uid: string) => api.post<unknown>(`${base(projectId)}/${seg(uid)}/enable`),
  revokeSessions: (projectId: string, uid: string) =>
    api.post<unknown>(`${base(projectId)}/${seg(uid)}/revoke-sessions`),
  remove: (projectId: string, uid: string) => api.del<void>(`${base(projectId)}/${seg(uid)}`),
};
