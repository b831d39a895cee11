import { ApiError, errorMessage } from "@/api/client";

/** Live preview of the next runs of a cron schedule, for the job form.
 * Debounces keystrokes, validates the obvious locally, cancels stale requests,
 * and maps a 400 from the server to the field named in details.field. */

export type PreviewField = "schedule_cron" | "timezone";

export interface PreviewState {
  status: "idle" | "loading" | "ok" | "error";
  runs: string[];
  /** Error message per form field. */
  fieldErrors: Partial<Record<PreviewField, string>>;
  /** Error that belongs to no field (network, 5xx). */
  error: string | null;
}

export const IDLE_PREVIEW: PreviewState = { status: "idle", runs: [], fieldErrors: {}, error: null };

export type PreviewFetcher = (cron: string, timezone: string, signal: AbortSignal) => Promise<string[]>;

/** Cheap local check: 5 fields (or 6 with seconds), or an @-macro. Null when plausible. */
export function localCronError(cron: string): string | null {
  const c = cron.trim();
  if (!c) return "Enter a cron expression, e.g. */5 * * * *";
  if (c.startsWith("@")) {
    return /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/i.test(c)
      ? null
      : "Unknown macro; use @hourly, @daily, @weekly, @monthly or @yearly";
  }
  const parts = c.split(/\s+/);
  if (parts.length < 5 || parts.length > 6) return `Expected 5 fields (minute hour day month weekday), got ${parts.length}`;
  if (!parts.every((p) => /^[\d*/,\-A-Za-z?LW#]+$/.test(p))) return "Invalid characters in the expression";
  return null;
}

/** Map the server's field name (cron / schedule_cron / timezone …) to a form field. */
export function fieldFromDetails(err: unknown): PreviewField {
  if (err instanceof ApiError) {
    const f = err.detail<string>("field");
    if (f === "timezone" || f === "tz") return "timezone";
  }
  return "schedule_cron";
}

export interface PreviewController {
  update(cron: string, timezone: string): void;
  dispose(): void;
}

export function createPreviewController(
  fetcher: PreviewFetcher,
  onState: (s: PreviewState) => void,
  delayMs = 350,
): PreviewController {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let inflight: AbortController | null = null;
  let seq = 0;
  let disposed = false;

  const cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    inflight?.abort();
    inflight = null;
  };

  return {
    update(cron: string, timezone: string) {
      if (disposed) return;
      cancel();
      const localErr = localCronError(cron);
      if (localErr) {
        onState({ status: "error", runs: [], fieldErrors: { schedule_cron: localErr }, error: null });
        return;
      }
      if (!timezone.trim()) {
        onState({ status: "error", runs: [], fieldErrors: { timezone: "Choose a time zone" }, error: null });
        return;
      }
      const my = ++seq;
      onState({ status: "loading", runs: [], fieldErrors: {}, error: null });
      timer = setTimeout(() => {
        timer = null;
        const ac = new AbortController();
        inflight = ac;
        fetcher(cron.trim(), timezone.trim(), ac.signal).then(
          (runs) => {
            if (disposed || my !== seq) return;
            inflight = null;
            onState({ status: "ok", runs, fieldErrors: {}, error: null });
          },
          (err) => {
            if (disposed || my !== seq || (err as { name?: string })?.name === "AbortError") return;
            inflight = null;
            if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
              onState({
                status: "error",
                runs: [],
                fieldErrors: { [fieldFromDetails(err)]: err.message },
                error: null,
              });
            } else {
              onState({ status: "error", runs: [], fieldErrors: {}, error: errorMessage(err) });
            }
          },
        );
      }, delayMs);
    },
    dispose() {
      disposed = true;
      cancel();
    },
  };
}
