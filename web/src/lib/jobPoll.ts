import type { JobStatus } from "@/api/types";

export const JOB_POLL_INTERVAL_MS = 500;

/** Poll GET /admin/api/jobs/{id} until the job has succeeded or failed. */
export async function pollJob(
  fetchStatus: (signal?: AbortSignal) => Promise<JobStatus>,
  onUpdate: (s: JobStatus) => void,
  opts: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<JobStatus> {
  const interval = opts.intervalMs ?? JOB_POLL_INTERVAL_MS;
  for (;;) {
    if (opts.signal?.aborted) throw new DOMException("Aborted", "AbortError");
    const s = await fetchStatus(opts.signal);
    onUpdate(s);
    if (s.state === "succeeded" || s.state === "failed") return s;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, interval);
      opts.signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          reject(new DOMException("Aborted", "AbortError"));
        },
        { once: true },
      );
    });
  }
}

/** 0..100, or null when the job gives no measurable progress. */
export function jobPercent(s: JobStatus | null | undefined): number | null {
  if (!s) return null;
  if (s.state === "succeeded") return 100;
  const p = s.progress;
  if (!p || !p.total || p.total <= 0) return null;
  return Math.max(0, Math.min(100, (p.done / p.total) * 100));
}

export function jobErrorMessage(s: JobStatus): string {
  const e = s.error;
  if (!e) return "The job failed.";
  if (typeof e === "string") return e;
  return e.message || e.code || "The job failed.";
}
