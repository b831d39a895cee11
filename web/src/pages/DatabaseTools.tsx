import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { CopyPlus, Database, DatabaseBackup, Download, FileUp, History, RefreshCw, RotateCcw, Undo2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Label } from "@/components/ui/label";
import { Progress } from "@/components/ui/progress";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, Section, TableSkeleton } from "@/components/States";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { JobProgress } from "@/components/JobProgress";
import { StatusBadge } from "@/components/StatusBadge";
import { CopyButton } from "@/components/CopyButton";
import { SecretDialog } from "@/components/SecretDialog";
import { DialogActions, FormError, ProjectNameField } from "@/components/FormParts";
import { useProjects } from "@/context/projects";
import { useQuery } from "@/hooks/useQuery";
import {
  backupsApi,
  buildUrl,
  cloneOutcome,
  downloadFromApi,
  errorMessage,
  isRestorable,
  migrationsApi,
  tablesApi,
  xhrUpload,
  type Backup,
  type CloneOutcome,
} from "@/api";
import { formatBytes, formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

function MigrationsSection({ projectId }: { projectId: string }) {
  const q = useQuery(() => migrationsApi.list(projectId), [projectId]);
  const pending = (q.data ?? []).filter((m) => !m.applied_at).length;
  return (
    <Section
      title="Migrations"
      description={
        q.data
          ? `${q.data.length - pending} applied${pending ? `, ${pending} pending` : ""}`
          : "Schema migrations recorded for this project."
      }
      actions={
        <Button variant="ghost" size="icon-sm" onClick={() => void q.reload()} aria-label="Refresh migrations">
          <RefreshCw className={cn(q.loading && "animate-spin")} />
        </Button>
      }
    >
      {q.error && !q.data ? (
        <div className="p-3">
          <ErrorAlert error={q.error} title="Could not load migrations" onRetry={() => void q.reload()} />
        </div>
      ) : q.initialLoading ? (
        <TableSkeleton rows={3} cols={3} />
      ) : q.data?.length === 0 ? (
        <EmptyState className="m-3" icon={History} title="No migrations recorded" description="Migrations applied with the CLI appear here." />
      ) : (
        <div className="max-h-72 overflow-auto">
          <Table data-testid="migrations-table">
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead>Checksum</TableHead>
                <TableHead>Status</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {q.data?.map((m) => (
                <TableRow key={m.name}>
                  <TableCell className="font-mono text-xs">{m.name}</TableCell>
                  <TableCell className="font-mono text-2xs text-muted-foreground">{m.checksum?.slice(0, 12)}</TableCell>
                  <TableCell>
                    {m.applied_at ? (
                      <span className="flex items-center gap-1.5" title={formatDateTime(m.applied_at)}>
                        <StatusBadge status="applied" />
                        <span className="text-2xs text-muted-foreground">{formatRelative(m.applied_at)}</span>
                      </span>
                    ) : (
                      <StatusBadge status="pending" />
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}
    </Section>
  );
}

/** Asks for the new project's name and starts the clone job; the section follows the job. */
function CloneDialog({
  projectId,
  backup,
  sourceName,
  onOpenChange,
  onStarted,
}: {
  projectId: string;
  backup: Backup | null;
  sourceName: string;
  onOpenChange: (open: boolean) => void;
  onStarted: (jobId: string, name: string) => void;
}) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (backup) {
      setName(`${sourceName} copy`);
      setError(null);
    }
  }, [backup, sourceName]);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!backup) return;
    setBusy(true);
    setError(null);
    try {
      const r = await backupsApi.clone(projectId, backup.id, name.trim());
      onStarted(r.job_id, name.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={!!backup} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent data-testid="clone-dialog">
        <form onSubmit={submit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle className="flex items-center gap-2">
              <CopyPlus className="h-4 w-4 text-primary" />
              Restore as a new project
            </DialogTitle>
            <DialogDescription asChild>
              <div className="space-y-2">
                <p>
                  A new project is created from the backup of <b>{formatDateTime(backup?.created_at)}</b>: its schema,
                  data, policies and end users, with its own roles and new API keys. This project is left as it is.
                </p>
                <p>Storage files, cron jobs and settings are not copied. Stay on this page: the new keys are shown here once.</p>
              </div>
            </DialogDescription>
          </DialogHeader>
          <ProjectNameField
            id="clone-name"
            label="New project name"
            value={name}
            onChange={setName}
            testId="clone-name"
          />
          <FormError error={error} testId="clone-error" />
          <DialogActions
            onCancel={() => onOpenChange(false)}
            busy={busy}
            submitDisabled={!name.trim()}
            submitTestId="clone-submit"
          >
            Create project
          </DialogActions>
        </form>
      </DialogContent>
    </Dialog>
  );
}

function BackupsSection({ projectId }: { projectId: string }) {
  const q = useQuery(() => backupsApi.list(projectId), [projectId]);
  const projects = useProjects();
  const navigate = useNavigate();
  const [job, setJob] = useState<{ id: string; label: string; clone: boolean } | null>(null);
  const [starting, setStarting] = useState(false);
  const [restoring, setRestoring] = useState<Backup | null>(null);
  const [cloning, setCloning] = useState<Backup | null>(null);
  const [cloned, setCloned] = useState<CloneOutcome | null>(null);
  const [keysOpen, setKeysOpen] = useState(false);
  const [undoing, setUndoing] = useState(false);
  const [jobRunning, setJobRunning] = useState(false);
  const sourceName = projects.projects?.find((p) => p.id === projectId)?.name ?? projectId;
  const follow = (id: string, label: string, clone = false) => {
    setJobRunning(true);
    setCloned(null);
    setJob({ id, label, clone });
  };

  const createBackup = async () => {
    setStarting(true);
    try {
      const r = await backupsApi.create(projectId);
      follow(r.job_id, "Creating backup");
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setStarting(false);
    }
  };

  return (
    <Section
      title="Backups"
      description="pg_dump of this project's database, stored with a SHA-256 and verified."
      actions={
        <>
          <Button variant="ghost" size="icon-sm" onClick={() => void q.reload()} aria-label="Refresh backups">
            <RefreshCw className={cn(q.loading && "animate-spin")} />
          </Button>
          <Button variant="outline" size="sm" onClick={() => setUndoing(true)} data-testid="restore-undo-button">
            <Undo2 /> Undo last restore
          </Button>
          <Button
            size="sm"
            onClick={() => void createBackup()}
            loading={starting}
            disabled={jobRunning}
            data-testid="backup-create"
          >
            <DatabaseBackup /> Create backup
          </Button>
        </>
      }
    >
      {job && (
        <div className="border-b p-3">
          <JobProgress
            key={job.id}
            jobId={job.id}
            label={job.label}
            testId="backup-progress"
            onDone={(s) => {
              setJobRunning(false);
              if (s.state === "succeeded") toast.success(`${job.label}: done`);
              else toast.error(`${job.label}: failed`);
              if (job.clone && s.state === "succeeded") {
                const outcome = cloneOutcome(s);
                setCloned(outcome);
                setKeysOpen(!!outcome?.keys);
                void projects.reload();
              }
              void q.reload();
            }}
          />
          {cloned && (
            <Alert variant="success" className="mt-3" data-testid="clone-result">
              <AlertTitle>Project {cloned.name} created from the backup</AlertTitle>
              <AlertDescription>
                <Link
                  to={`/projects/${cloned.projectId}/overview`}
                  className="font-medium underline underline-offset-2"
                  data-testid="clone-result-link"
                  data-project-id={cloned.projectId}
                >
                  Open {cloned.name}
                </Link>
              </AlertDescription>
            </Alert>
          )}
        </div>
      )}
      {q.error && !q.data ? (
        <div className="p-3">
          <ErrorAlert error={q.error} title="Could not load backups" onRetry={() => void q.reload()} />
        </div>
      ) : q.initialLoading ? (
        <TableSkeleton rows={3} cols={5} />
      ) : q.data?.length === 0 ? (
        <EmptyState
          className="m-3"
          icon={DatabaseBackup}
          title="No backups yet"
          description="Create one now, or schedule backups with a platform cron job."
          action={
            <Button size="sm" onClick={() => void createBackup()} loading={starting}>
              <DatabaseBackup /> Create backup
            </Button>
          }
          testId="backups-empty"
        />
      ) : (
        <Table data-testid="backups-table">
          <TableHeader>
            <TableRow>
              <TableHead>Created</TableHead>
              <TableHead>Status</TableHead>
              <TableHead className="text-right">Size</TableHead>
              <TableHead>SHA-256</TableHead>
              <TableHead>Verified</TableHead>
              <TableHead className="w-80" />
            </TableRow>
          </TableHeader>
          <TableBody>
            {q.data?.map((b) => (
              <TableRow key={b.id} data-testid="backup-row" data-backup-id={b.id} data-status={b.status}>
                <TableCell className="text-xs" title={formatDateTime(b.created_at)}>
                  {formatDateTime(b.created_at)}
                  <span className="ml-1.5 text-muted-foreground">{formatRelative(b.created_at)}</span>
                </TableCell>
                <TableCell>
                  <StatusBadge status={b.status} />
                </TableCell>
                <TableCell className="text-right text-xs tabular">{formatBytes(b.size)}</TableCell>
                <TableCell>
                  {b.sha256 ? (
                    <span className="inline-flex items-center gap-1 font-mono text-2xs text-muted-foreground">
                      {b.sha256.slice(0, 12)}…
                      <CopyButton value={b.sha256} label="Copy SHA-256" />
                    </span>
                  ) : (
                    "—"
                  )}
                </TableCell>
                <TableCell className="text-xs text-muted-foreground">{b.verified_at ? formatRelative(b.verified_at) : "—"}</TableCell>
                <TableCell>
                  <div className="flex justify-end gap-1">
                    <Button
                      variant="ghost"
                      size="sm"
                      className="h-7"
                      onClick={() =>
                        void downloadFromApi(backupsApi.downloadPath(b.id)).catch((e) => toast.error(errorMessage(e)))
                      }
                      data-testid="backup-download"
                    >
                      <Download /> Download
                    </Button>
                    {isRestorable(b) && (
                      <Button
                        variant="ghost"
                        size="sm"
                        className="h-7"
                        onClick={() => setCloning(b)}
                        disabled={jobRunning}
                        data-testid="backup-clone"
                      >
                        <CopyPlus /> Restore as new project
                      </Button>
                    )}
                    <Button
                      variant="ghost"
                      size="sm"
                      className="h-7 text-destructive hover:text-destructive"
                      onClick={() => setRestoring(b)}
                      data-testid="backup-restore"
                    >
                      <RotateCcw /> Restore
                    </Button>
                  </div>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      <ConfirmDialog
        open={!!restoring}
        onOpenChange={(o) => !o && setRestoring(null)}
        title="Restore this backup"
        description={
          <div className="space-y-2">
            <p>
              The project database is replaced by the backup from <b>{formatDateTime(restoring?.created_at)}</b>. Writes
              made since then are lost.
            </p>
            <p>
              Rollback: the current database is kept aside first; <b>Undo last restore</b> switches back to it.
            </p>
          </div>
        }
        confirmText={projectId}
        actionLabel="Restore"
        testId="restore-dialog"
        onConfirm={async () => {
          const r = await backupsApi.restore(projectId, restoring!.id);
          follow(r.job_id, "Restoring backup");
        }}
      />
      <CloneDialog
        projectId={projectId}
        backup={cloning}
        sourceName={sourceName}
        onOpenChange={(o) => !o && setCloning(null)}
        onStarted={(jobId, name) => {
          setCloning(null);
          follow(jobId, `Restoring as new project ${name}`, true);
        }}
      />
      {cloned?.keys && (
        <SecretDialog
          open={keysOpen}
          onOpenChange={setKeysOpen}
          title={`Project ${cloned.name} is ready`}
          description={
            <>
              Restored from a backup of this project. Project ID <code className="font-mono">{cloned.projectId}</code>.
            </>
          }
          testId="clone-keys-dialog"
          items={[
            { label: "Publishable key (browser-safe, minimal reads)", value: cloned.keys.publishable, testId: "clone-publishable-key" },
            { label: "Secret key (server side only)", value: cloned.keys.secret, testId: "clone-secret-key" },
          ]}
          footer={
            <Button
              variant="outline"
              data-testid="clone-keys-open-project"
              onClick={() => {
                setKeysOpen(false);
                navigate(`/projects/${cloned.projectId}/overview`);
              }}
            >
              Open project
            </Button>
          }
        />
      )}
      <ConfirmDialog
        open={undoing}
        onOpenChange={setUndoing}
        title="Undo the last restore"
        description="Switches the project back to the database it had before the last restore. Writes made since the restore are lost."
        confirmText={projectId}
        actionLabel="Undo restore"
        testId="restore-undo-dialog"
        onConfirm={async () => {
          const r = await backupsApi.undoRestore(projectId);
          if (r && r.job_id) {
            follow(r.job_id, "Undoing restore");
          } else {
            toast.success("Restore undone");
          }
        }}
      />
    </Section>
  );
}

function ImportExportSection({ projectId }: { projectId: string }) {
  const tablesQ = useQuery(() => tablesApi.list(projectId), [projectId]);
  const [table, setTable] = useState<string>("");
  const [format, setFormat] = useState<"csv" | "json">("csv");
  const [mode, setMode] = useState<"insert" | "upsert">("insert");
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<{ inserted: number; updated: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const tables = tablesQ.data ?? [];

  const doImport = async () => {
    if (!file || !table) return;
    setError(null);
    setResult(null);
    setProgress(0);
    try {
      const r = await xhrUpload<{ inserted: number; updated: number }>({
        method: "POST",
        url: buildUrl(tablesApi.importPath(projectId, table), { format, mode }),
        body: file,
        headers: { "content-type": format === "csv" ? "text/csv" : "application/json" },
        withAuth: true,
        withCredentials: true,
        onProgress: (p) => setProgress(p.percent),
      });
      setResult(r);
      toast.success(`Imported into ${table}`);
    } catch (e) {
      setError(e);
      setProgress(null);
    }
  };

  const doExport = async () => {
    if (!table) return;
    try {
      await downloadFromApi(tablesApi.exportPath(projectId, table), { format }, `${table}.${format}`);
    } catch (e) {
      toast.error(errorMessage(e));
    }
  };

  return (
    <Section title="Import / export" description="One table at a time, as CSV or JSON. Use backups for the whole database.">
      <div className="grid gap-4 p-4 md:grid-cols-3">
        <div className="grid gap-1.5">
          <Label>Table</Label>
          <Select value={table} onValueChange={setTable}>
            <SelectTrigger data-testid="io-table">
              <SelectValue placeholder={tablesQ.loading ? "Loading…" : tables.length ? "Choose a table" : "No tables"} />
            </SelectTrigger>
            <SelectContent>
              {tables.map((t) => (
                <SelectItem key={`${t.schema}.${t.name}`} value={t.name}>
                  {t.schema !== "public" ? `${t.schema}.` : ""}
                  {t.name}
                </SelectItem>
              ))}
            </SelectContent>
          </Select>
        </div>
        <div className="grid gap-1.5">
          <Label>Format</Label>
          <Select value={format} onValueChange={(v) => setFormat(v as "csv" | "json")}>
            <SelectTrigger data-testid="io-format">
              <SelectValue />
            </SelectTrigger>
            <SelectContent>
              <SelectItem value="csv">CSV (header row)</SelectItem>
              <SelectItem value="json">JSON (array of objects)</SelectItem>
            </SelectContent>
          </Select>
        </div>
        <div className="flex items-end">
          <Button variant="outline" onClick={() => void doExport()} disabled={!table} data-testid="io-export">
            <Download /> Export {table || "table"}
          </Button>
        </div>
      </div>
      <div className="border-t p-4">
        <div className="grid gap-4 md:grid-cols-3">
          <div className="grid gap-1.5">
            <Label>Import mode</Label>
            <Select value={mode} onValueChange={(v) => setMode(v as "insert" | "upsert")}>
              <SelectTrigger data-testid="io-mode">
                <SelectValue />
              </SelectTrigger>
              <SelectContent>
                <SelectItem value="insert">Insert (fail on conflicts)</SelectItem>
                <SelectItem value="upsert">Upsert by primary key</SelectItem>
              </SelectContent>
            </Select>
          </div>
          <div className="grid gap-1.5">
            <Label htmlFor="io-file">File</Label>
            <input
              id="io-file"
              ref={fileRef}
              type="file"
              accept={format === "csv" ? ".csv,text/csv" : ".json,application/json"}
              onChange={(e) => {
                setFile(e.target.files?.[0] ?? null);
                setResult(null);
                setProgress(null);
              }}
              className="text-xs file:mr-2 file:rounded-md file:border file:border-input file:bg-transparent file:px-2 file:py-1 file:text-xs file:text-foreground"
              data-testid="io-file"
            />
          </div>
          <div className="flex items-end">
            <Button onClick={() => void doImport()} disabled={!file || !table || (progress !== null && progress < 100 && !result && !error)} data-testid="io-import">
              <FileUp /> Import
            </Button>
          </div>
        </div>
        <p className="mt-2 text-xs text-muted-foreground">
          Columns are matched by name. Imports run in one transaction: on any error nothing is written.
        </p>
        {progress !== null && (
          <div className="mt-3 space-y-1" data-testid="io-import-progress">
            <div className="flex justify-between text-xs text-muted-foreground">
              <span>{result ? "Imported" : progress >= 100 ? "Processing on the server…" : `Uploading ${file?.name}`}</span>
              <span className="tabular">{Math.round(progress)}%</span>
            </div>
            <Progress value={progress} indicatorClassName={cn(result && "bg-success", progress >= 100 && !result && "animate-pulse")} />
          </div>
        )}
        {result && (
          <Alert variant="success" className="mt-3" data-testid="io-import-result">
            <AlertTitle>Import finished</AlertTitle>
            <AlertDescription>
              {result.inserted} row(s) inserted, {result.updated} updated.
            </AlertDescription>
          </Alert>
        )}
        {error ? <ErrorAlert className="mt-3" error={error} title="Import failed" /> : null}
      </div>
    </Section>
  );
}

export default function DatabaseToolsPage() {
  const { projectId = "" } = useParams();
  return (
    <Page>
      <PageHeader
        icon={Database}
        title="Database tools"
        description="Migrations, backups and restore, table import and export."
      />
      <div className="grid gap-4">
        <BackupsSection projectId={projectId} />
        <ImportExportSection projectId={projectId} />
        <MigrationsSection projectId={projectId} />
      </div>
    </Page>
  );
}
