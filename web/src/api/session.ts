import { api, setCsrfToken } from "./client";
import type { Overview, Session } from "./types";

function remember(s: Session): Session {
  setCsrfToken(s.csrf_token);
  return s;
}

export const sessionApi = {
  get: () => api.get<Session>("/session", undefined, { quiet401: true }).then(remember),
  signIn: (username: string, password: string, totp?: string) =>
    api
      .post<Session>("/session", { username, password, ...(totp ? { totp } : {}) }, { quiet401: true })
      .then(remember),
  signOut: () => api.del<void>("/session").finally(() => setCsrfToken(null)),
  setup: (setup_code: string, username: string, password: string) =>
    api.post<Session>("/setup", { setup_code, username, password }, { quiet401: true }).then((s) => {
      if (s && typeof s === "object" && "csrf_token" in s) remember(s);
      return s;
    }),
};

export const overviewApi = {
  get: (opts?: { quiet401?: boolean }) => api.get<Overview>("/overview", undefined, opts),
};
