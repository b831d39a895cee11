import { Fragment, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { ArrowLeft, ChevronDown, ChevronRight, Clock, MoreHorizontal, Pencil, Play, Plus, RefreshCw, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Switch } from "@/components/ui/switch";
import { Badge } from "@/components/ui/badge";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, Section, TableSkeleton } from "@/components/States";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { StatusBadge } from "@/components/StatusBadge";
import { useQuery, useInterval } from "@/hooks/useQuery";
import { useProjects } from "@/context/projects";
import { cronApi, errorMessage, type CronJob, type CronRun } from "@/api";
import { formatDateTime, formatDuration, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";
import { CronFormSheet } from "./CronForm";

function useCronActions(onChange: () => void) {
  const navigate = useNavigate();
  const toggle = async (job: CronJob, enabled: boolean) => {
    try {
      await cronApi.update(job.id, { enabled });
      toast.success(`${job.name} ${enabled ? "enabled" : "disabled"}`);
    } catch (e) {
      toast.error(errorMessage(e));
    }
    onChange();
  };
  const runNow = async (job: CronJob, detailPath: string, stay = false) => {
    try {
      const r = await cronApi.runNow(job.id);
      toast.success(`Run of ${job.name} started`, {
        description: `Run ${r.run_id}`,
        action: stay ? undefined : { label: "View runs", onClick: () => navigate(detailPath) },
      });
      onChange();
      return r.run_id;
    } catch (e) {
      toast.error(errorMessage(e));
      return null;
    }
  };
  return { toggle, runNow };
}

function JobsList({ projectId }: { projectId?: string }) {
  const { projects } = useProjects();
  const q = useQuery(() => cronApi.list(projectId), [projectId]);
  const [formOpen, setFormOpen] = useState(false);
  const [editing, setEditing] = useState<CronJob | null>(null);
  const [deleting, setDeleting] = useState<CronJob | null>(null);
  const { toggle, runNow } = useCronActions(() => void q.reload());
  const navigate = useNavigate();
  const base = projectId ? `/projects/${projectId}/cron` : "/cron";
  const projectName = (id: string | null) => (id ? (projects?.find((p) => p.id === id)?.name ?? id) : "global");

  // Refresh "next run" and last status while the page is open.
  useInterval(() => void q.reload(), 15000);

  const newButton = (
    <Button
      onClick={() => {
        setEditing(null);
        setFormOpen(true);
      }}
      data-testid="cron-new-button"
    >
      <Plus /> New job
    </Button>
  );

  return (
    <Page>
      <PageHeader
        icon={Clock}
        title={projectId ? "Cron jobs" : "All cron jobs"}
        description="Scheduled HTTP calls and platform tasks, with retries and a run history."
        actions={
          <>
            <Button variant="outline" size="icon" onClick={() => void q.reload()} aria-label="Refresh">
              <RefreshCw className={cn(q.loading && "animate-spin")} />
            </Button>
            {newButton}
          </>
        }
      />
      {q.error && !q.data ? (
        <ErrorAlert error={q.error} title="Could not load cron jobs" onRetry={() => void q.reload()} />
      ) : q.initialLoading ? (
        <div className="rounded-lg border">
          <TableSkeleton rows={4} cols={6} />
        </div>
      ) : q.data && q.data.length === 0 ? (
        <EmptyState
          icon={Clock}
          title="No cron jobs"
          description="Schedule a request to your app (reports, cleanups, webhooks) or a platform task such as a backup."
          action={newButton}
          testId="cron-empty"
        />
      ) : (
        <div className="overflow-hidden rounded-lg border">
          <Table data-testid="cron-jobs-table">
            <TableHeader>
              <TableRow>
                <TableHead className="w-12">On</TableHead>
                <TableHead>Name</TableHead>
                {!projectId && <TableHead>Project</TableHead>}
                <TableHead>Schedule</TableHead>
                <TableHead>Target</TableHead>
                <TableHead>Next run</TableHead>
                <TableHead>Last run</TableHead>
                <TableHead className="w-24" />
              </TableRow>
            </TableHeader>
            <TableBody>
              {q.data?.map((job) => (
                <TableRow key={job.id} data-testid="cron-job-row" data-job-id={job.id} data-job-name={job.name}>
                  <TableCell>
                    <Switch
                      checked={job.enabled}
                      onCheckedChange={(c) => void toggle(job, c)}
                      aria-label={job.enabled ? "Disable job" : "Enable job"}
                      data-testid="cron-enable-switch"
                    />
                  </TableCell>
                  <TableCell className="font-medium">
                    <Link to={`${base}/${job.id}`} className="hover:underline" data-testid="cron-job-link">
                      {job.name}
                    </Link>
                  </TableCell>
                  {!projectId && <TableCell className="text-xs text-muted-foreground">{projectName(job.project_id)}</TableCell>}
                  <TableCell>
                    <code className="font-mono text-xs">{job.schedule_cron}</code>
                    <span className="ml-1.5 text-2xs text-muted-foreground">{job.timezone}</span>
                  </TableCell>
                  <TableCell className="max-w-[16rem] truncate text-xs" title={job.http_url ?? job.action ?? ""}>
                    {job.type === "http" ? (
                      <>
                        <Badge variant="outline" className="mr-1.5 font-mono">
                          {job.http_method}
                        </Badge>
                        <span className="text-muted-foreground">{job.http_url}</span>
                      </>
                    ) : (
                      <Badge variant="secondary">{job.action}</Badge>
                    )}
                  </TableCell>
                  <TableCell className="text-xs text-muted-foreground" title={formatDateTime(job.next_run_at)}>
                    {job.enabled ? formatRelative(job.next_run_at) : "paused"}
                  </TableCell>
                  <TableCell>
                    {job.last_run ? (
                      <span className="flex items-center gap-1.5" title={formatDateTime(job.last_run.started_at)}>
                        <StatusBadge status={job.last_run.status} />
                        <span className="text-2xs text-muted-foreground">{formatRelative(job.last_run.started_at)}</span>
                      </span>
                    ) : (
                      <span className="text-xs text-muted-foreground">never</span>
                    )}
                  </TableCell>
                  <TableCell>
                    <div className="flex items-center justify-end gap-0.5">
                      <Button
                        variant="ghost"
                        size="sm"
                        className="h-7"
                        onClick={() => void runNow(job, `${base}/${job.id}`)}
                        data-testid="cron-run-now"
                      >
                        <Play /> Run
                      </Button>
                      <DropdownMenu>
                        <DropdownMenuTrigger asChild>
                          <Button variant="ghost" size="icon-sm" aria-label="Job actions">
                            <MoreHorizontal />
                          </Button>
                        </DropdownMenuTrigger>
                        <DropdownMenuContent align="end">
                          <DropdownMenuItem onSelect={() => navigate(`${base}/${job.id}`)}>
                            <Clock /> Run history
                          </DropdownMenuItem>
                          <DropdownMenuItem
                            onSelect={() => {
                              setEditing(job);
                              setFormOpen(true);
                            }}
                          >
                            <Pencil /> Edit
                          </DropdownMenuItem>
                          <DropdownMenuSeparator />
                          <DropdownMenuItem destructive onSelect={() => setDeleting(job)}>
                            <Trash2 /> Delete…
                          </DropdownMenuItem>
                        </DropdownMenuContent>
                      </DropdownMenu>
                    </div>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}
      <CronFormSheet
        open={formOpen}
        onOpenChange={setFormOpen}
        job={editing}
        projectId={projectId}
        projects={projects}
        onSaved={(job) => {
          setFormOpen(false);
          toast.success(editing ? `Saved ${job.name}` : `Created ${job.name}`);
          void q.reload();
        }}
      />
      <ConfirmDialog
        open={!!deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        title="Delete cron job"
        description={
          <>
            <b>{deleting?.name}</b> stops running and its run history is deleted.
          </>
        }
        actionLabel="Delete job"
        testId="delete-cron-dialog"
        onConfirm={async () => {
          await cronApi.remove(deleting!.id);
          toast.success("Job deleted");
          void q.reload();
        }}
      />
    </Page>
  );
}

function RunsTable({ runs }: { runs: CronRun[] }) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <Table data-testid="cron-runs-table">
      <TableHeader>
        <TableRow>
          <TableHead className="w-8" />
          <TableHead>Status</TableHead>
          <TableHead>Started</TableHead>
          <TableHead>Duration</TableHead>
          <TableHead>HTTP</TableHead>
          <TableHead>Attempt</TableHead>
          <TableHead>Error</TableHead>
        </TableRow>
      </TableHeader>
      <TableBody>
        {runs.map((r) => {
          const expanded = open === r.id;
          return (
            <Fragment key={r.id}>
              <TableRow
                className="cursor-pointer"
                onClick={() => setOpen(expanded ? null : r.id)}
                data-testid="cron-run-row"
                data-run-id={r.id}
                data-status={r.status}
              >
                <TableCell className="px-2">
                  {expanded ? <ChevronDown className="h-3.5 w-3.5" /> : <ChevronRight className="h-3.5 w-3.5" />}
                </TableCell>
                <TableCell>
                  <StatusBadge status={r.status} testId="cron-run-status" />
                </TableCell>
                <TableCell className="text-xs" title={formatDateTime(r.started_at)}>
                  {formatDateTime(r.started_at)}
                  <span className="ml-1.5 text-muted-foreground">{formatRelative(r.started_at)}</span>
                </TableCell>
                <TableCell className="text-xs tabular">{formatDuration(r.duration_ms)}</TableCell>
                <TableCell className="font-mono text-xs">{r.http_status ?? "—"}</TableCell>
                <TableCell className="text-xs tabular">{r.attempt}</TableCell>
                <TableCell className="max-w-[18rem] truncate text-xs text-destructive" title={r.error_text ?? ""}>
                  {r.error_text ?? ""}
                </TableCell>
              </TableRow>
              {expanded && (
                <TableRow className="hover:bg-transparent">
                  <TableCell colSpan={7} className="bg-muted/30 p-0">
                    <pre
                      className="max-h-72 overflow-auto whitespace-pre-wrap break-all p-3 font-mono text-xs"
                      data-testid="cron-run-log"
                    >
                      {r.log_excerpt || r.error_text || "No log output for this run."}
                    </pre>
                  </TableCell>
                </TableRow>
              )}
            </Fragment>
          );
        })}
      </TableBody>
    </Table>
  );
}

function JobDetail({ jobId, projectId }: { jobId: string; projectId?: string }) {
  const base = projectId ? `/projects/${projectId}/cron` : "/cron";
  const navigate = useNavigate();
  const { projects } = useProjects();
  const jobQ = useQuery(() => cronApi.get(jobId), [jobId]);
  const runsQ = useQuery(() => cronApi.runs(jobId, { limit: 25 }), [jobId]);
  const [older, setOlder] = useState<CronRun[]>([]);
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [pollUntil, setPollUntil] = useState(0);
  const [formOpen, setFormOpen] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const reloadAll = () => {
    void jobQ.reload();
    void runsQ.reload();
  };
  const { toggle, runNow } = useCronActions(reloadAll);

  useEffect(() => {
    setOlder([]);
    setNextBefore(runsQ.data?.next_before ?? null);
  }, [runsQ.data]);

  const runs = [...(runsQ.data?.runs ?? []), ...older];
  const anyRunning = runs.some((r) => r.status === "running");
  // Poll while a run is in flight or right after "Run now".
  useInterval(reloadAll, anyRunning || Date.now() < pollUntil ? 1500 : null);

  const job = jobQ.data;
  const loadMore = async () => {
    if (!nextBefore) return;
    setLoadingMore(true);
    try {
      const r = await cronApi.runs(jobId, { limit: 25, before: nextBefore });
      setOlder((o) => [...o, ...r.runs]);
      setNextBefore(r.next_before);
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setLoadingMore(false);
    }
  };

  return (
    <Page>
      <Button variant="ghost" size="sm" asChild className="mb-2 -ml-2">
        <Link to={base}>
          <ArrowLeft /> Cron jobs
        </Link>
      </Button>
      {jobQ.error && !job ? (
        <ErrorAlert error={jobQ.error} title="Could not load the job" onRetry={() => void jobQ.reload()} />
      ) : (
        <>
          <PageHeader
            title={job ? job.name : <Skeleton className="h-6 w-48" />}
            description={
              job ? (
                <span className="flex flex-wrap items-center gap-2">
                  <code className="font-mono text-xs">{job.schedule_cron}</code>
                  <span className="text-xs">{job.timezone}</span>
                  <span className="text-xs">·</span>
                  <span className="text-xs" title={formatDateTime(job.next_run_at)}>
                    next {job.enabled ? formatRelative(job.next_run_at) : "— paused"}
                  </span>
                </span>
              ) : undefined
            }
            actions={
              job && (
                <>
                  <div className="mr-2 flex items-center gap-2 text-xs">
                    <Switch checked={job.enabled} onCheckedChange={(c) => void toggle(job, c)} data-testid="cron-enable-switch" />
                    {job.enabled ? "Enabled" : "Disabled"}
                  </div>
                  <Button variant="outline" size="sm" onClick={() => setFormOpen(true)} data-testid="cron-edit">
                    <Pencil /> Edit
                  </Button>
                  <Button variant="outline" size="sm" onClick={() => setDeleting(true)} data-testid="cron-delete">
                    <Trash2 /> Delete
                  </Button>
                  <Button
                    size="sm"
                    onClick={async () => {
                      const id = await runNow(job, "", true);
                      if (id) setPollUntil(Date.now() + 30_000);
                    }}
                    data-testid="cron-run-now"
                  >
                    <Play /> Run now
                  </Button>
                </>
              )
            }
          />
          {job && (
            <div className="mb-4 grid gap-3 rounded-lg border bg-card p-4 text-xs sm:grid-cols-4">
              <div>
                <div className="text-muted-foreground">Target</div>
                <div className="mt-0.5 truncate font-mono" title={job.http_url ?? job.action ?? ""}>
                  {job.type === "http" ? `${job.http_method} ${job.http_url}` : `platform: ${job.action}`}
                </div>
              </div>
              <div>
                <div className="text-muted-foreground">Project</div>
                <div className="mt-0.5">{job.project_id ? (projects?.find((p) => p.id === job.project_id)?.name ?? job.project_id) : "global"}</div>
              </div>
              <div>
                <div className="text-muted-foreground">Timeout · retries</div>
                <div className="mt-0.5">
                  {formatDuration(job.timeout_ms)} · {job.retries} (backoff {formatDuration(job.retry_backoff_ms)})
                </div>
              </div>
              <div>
                <div className="text-muted-foreground">Missed runs</div>
                <div className="mt-0.5">{job.missed_run_policy}</div>
              </div>
            </div>
          )}
        </>
      )}
      <Section
        title="Run history"
        description="Click a run to see its log."
        actions={
          <Button variant="ghost" size="icon-sm" onClick={() => void runsQ.reload()} aria-label="Refresh runs" data-testid="cron-runs-refresh">
            <RefreshCw className={cn(runsQ.loading && "animate-spin")} />
          </Button>
        }
      >
        {runsQ.error && !runsQ.data ? (
          <div className="p-3">
            <ErrorAlert error={runsQ.error} title="Could not load runs" onRetry={() => void runsQ.reload()} />
          </div>
        ) : runsQ.initialLoading ? (
          <TableSkeleton rows={4} cols={6} />
        ) : runs.length === 0 ? (
          <EmptyState className="m-3" icon={Clock} title="No runs yet" description="Runs appear here when the schedule fires or you press Run now." testId="cron-runs-empty" />
        ) : (
          <>
            <RunsTable runs={runs} />
            {nextBefore && (
              <div className="flex justify-center p-2">
                <Button variant="outline" size="sm" onClick={() => void loadMore()} loading={loadingMore}>
                  Load older runs
                </Button>
              </div>
            )}
          </>
        )}
      </Section>
      {job && (
        <CronFormSheet
          open={formOpen}
          onOpenChange={setFormOpen}
          job={job}
          projectId={projectId}
          projects={projects}
          onSaved={(saved) => {
            setFormOpen(false);
            jobQ.setData(saved);
            toast.success(`Saved ${saved.name}`);
          }}
        />
      )}
      <ConfirmDialog
        open={deleting}
        onOpenChange={setDeleting}
        title="Delete cron job"
        description={<><b>{job?.name}</b> stops running and its run history is deleted.</>}
        actionLabel="Delete job"
        testId="delete-cron-dialog"
        onConfirm={async () => {
          await cronApi.remove(jobId);
          toast.success("Job deleted");
          navigate(base);
        }}
      />
    </Page>
  );
}

export default function CronPage() {
  const { projectId, jobId } = useParams();
  if (jobId) return <JobDetail key={jobId} jobId={jobId} projectId={projectId} />;
  return <JobsList key={projectId ?? "all"} projectId={projectId} />;
}
