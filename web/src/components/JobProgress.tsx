import { useEffect, useState } from "react";
import { CheckCircle2, Loader2, XCircle } from "lucide-react";
import { Progress } from "@/components/ui/progress";
import { jobsApi, errorMessage, type JobStatus } from "@/api";
import { jobErrorMessage, jobPercent, pollJob } from "@/lib/jobPoll";
import { formatBytes, formatNumber } from "@/lib/format";
import { cn } from "@/lib/utils";

/** Follows a background job (backup, restore…) by polling every 500 ms and shows a progress bar. */
export function JobProgress({
  jobId,
  label,
  onDone,
  testId = "job-progress",
  className,
}: {
  jobId: string;
  label: string;
  onDone?: (s: JobStatus) => void;
  testId?: string;
  className?: string;
}) {
  const [status, setStatus] = useState<JobStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    pollJob((signal) => jobsApi.get(jobId, signal), setStatus, { signal: ac.signal }).then(
      (s) => onDone?.(s),
      (e) => {
        if ((e as { name?: string })?.name !== "AbortError") setError(errorMessage(e));
      },
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId]);

  const pct = jobPercent(status);
  const state = error ? "failed" : (status?.state ?? "queued");
  const p = status?.progress;
  const unitText =
    p && p.total
      ? p.unit === "bytes"
        ? `${formatBytes(p.done)} / ${formatBytes(p.total)}`
        : `${formatNumber(p.done)} / ${formatNumber(p.total)}${p.unit ? " " + p.unit : ""}`
      : null;
  return (
    <div className={cn("space-y-1.5 rounded-md border bg-muted/30 p-3", className)} data-testid={testId} data-state={state}>
      <div className="flex items-center gap-2 text-xs">
        {state === "succeeded" ? (
          <CheckCircle2 className="h-4 w-4 text-success" />
        ) : state === "failed" ? (
          <XCircle className="h-4 w-4 text-destructive" />
        ) : (
          <Loader2 className="h-4 w-4 animate-spin text-primary" />
        )}
        <span className="font-medium">{label}</span>
        <span className="text-muted-foreground">
          {state === "failed"
            ? "failed"
            : state === "succeeded"
              ? "done"
              : (status?.phase ?? state)}
        </span>
        <span className="ml-auto tabular text-muted-foreground">
          {unitText}
          {pct !== null && state !== "failed" ? ` · ${Math.round(pct)}%` : ""}
        </span>
      </div>
      <Progress
        value={state === "failed" ? 100 : (pct ?? (state === "running" ? 50 : 5))}
        indicatorClassName={cn(state === "failed" && "bg-destructive", pct === null && state === "running" && "animate-pulse")}
        data-testid={`${testId}-bar`}
      />
      {(error || (status?.state === "failed" && status)) && (
        <div className="text-xs text-destructive">{error ?? jobErrorMessage(status!)}</div>
      )}
    </div>
  );
}
