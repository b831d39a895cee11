import { useCallback, useEffect, useRef, useState } from "react";

export interface QueryState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** True on the first load only (no data yet): show skeletons. */
  initialLoading: boolean;
  reload: () => Promise<void>;
  setData: React.Dispatch<React.SetStateAction<T | undefined>>;
}

/** Minimal data-fetching hook: loads on mount and when deps change, drops stale
 * responses, and exposes reload() for retry buttons and refresh after mutations. */
export function useQuery<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[], enabled = true): QueryState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState<boolean>(enabled);
  const seq = useRef(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const acRef = useRef<AbortController | null>(null);

  const run = useCallback(async () => {
    const my = ++seq.current;
    acRef.current?.abort();
    const ac = new AbortController();
    acRef.current = ac;
    setLoading(true);
    try {
      const d = await fnRef.current(ac.signal);
      if (my === seq.current) {
        setData(d);
        setError(null);
      }
    } catch (e) {
      if ((e as { name?: string })?.name === "AbortError") return;
      if (my === seq.current) setError(e);
    } finally {
      if (my === seq.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    if (!enabled) {
      setLoading(false);
      return;
    }
    setData(undefined);
    void run();
    return () => acRef.current?.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, enabled]);

  return { data, error, loading, initialLoading: loading && data === undefined, reload: run, setData };
}

export function useInterval(fn: () => void, ms: number | null) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const t = setInterval(() => ref.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}
