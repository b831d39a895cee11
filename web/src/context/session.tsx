import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import {
  ApiError,
  getDevToken,
  onUnauthorized,
  overviewApi,
  sessionApi,
  setDevToken,
  type Overview,
  type Session,
} from "@/api";

export type AuthStatus = "loading" | "error" | "signed-out" | "signed-in";

interface SessionContextValue {
  status: AuthStatus;
  session: Session | null;
  overview: Overview | null;
  error: unknown;
  /** This node runs as a worker of a cluster (no control plane of its own). */
  isWorker: boolean;
  refresh: () => Promise<void>;
  signIn: (username: string, password: string, totp?: string) => Promise<void>;
  signInWithDevToken: (token: string) => Promise<void>;
  setup: (setupCode: string, username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

export function SessionProvider({ children }: { children: React.ReactNode }) {
  const [status, setStatus] = useState<AuthStatus>("loading");
  const [session, setSession] = useState<Session | null>(null);
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<unknown>(null);

  /** The overview doubles as an authenticated probe (dev token or cookie). */
  const probe = useCallback(async (): Promise<boolean> => {
    try {
      setOverview(await overviewApi.get({ quiet401: true }));
      return true;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
      throw e;
    }
  }, []);

  const refresh = useCallback(async () => {
    setError(null);
    try {
      const s = await sessionApi.get();
      setSession(s);
      if (s.mode !== "dev" && getDevToken()) setDevToken(null);
      if (s.authenticated || (s.mode === "dev" && getDevToken())) {
        const ok = await probe();
        if (!ok) setDevToken(null);
        setStatus(ok ? "signed-in" : "signed-out");
      } else {
        setStatus("signed-out");
      }
    } catch (e) {
      setError(e);
      setStatus("error");
    }
  }, [probe]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(
    () =>
      onUnauthorized(() => {
        setStatus((s) => (s === "signed-in" ? "signed-out" : s));
      }),
    [],
  );

  const signIn = useCallback(
    async (username: string, password: string, totp?: string) => {
      const s = await sessionApi.signIn(username, password, totp);
      setSession(s);
      if (!s.authenticated) throw new ApiError(401, "invalid_credentials", "Sign-in failed.");
      await probe();
      setStatus("signed-in");
    },
    [probe],
  );

  const signInWithDevToken = useCallback(
    async (token: string) => {
      setDevToken(token.trim());
      let ok = false;
      try {
        ok = await probe();
      } catch (e) {
        setDevToken(null);
        throw e;
      }
      if (!ok) {
        setDevToken(null);
        throw new ApiError(401, "invalid_token", "That dev admin token was not accepted.");
      }
      try {
        setSession(await sessionApi.get()); // picks up a csrf token if the server issues one
      } catch {
        /* the overview already proved the token */
      }
      setStatus("signed-in");
    },
    [probe],
  );

  const setup = useCallback(
    async (setupCode: string, username: string, password: string) => {
      await sessionApi.setup(setupCode, username, password);
      await refresh();
    },
    [refresh],
  );

  const signOut = useCallback(async () => {
    try {
      await sessionApi.signOut();
    } catch {
      /* signing out locally anyway */
    }
    setDevToken(null);
    setOverview(null);
    setStatus("signed-out");
    try {
      setSession(await sessionApi.get());
    } catch {
      /* ignore */
    }
  }, []);

  const isWorker = !!overview?.node.roles?.some((r) => r === "worker");

  const value = useMemo(
    () => ({ status, session, overview, error, isWorker, refresh, signIn, signInWithDevToken, setup, signOut }),
    [status, session, overview, error, isWorker, refresh, signIn, signInWithDevToken, setup, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession() {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error("useSession outside SessionProvider");
  return ctx;
}
