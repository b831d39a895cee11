import { useEffect, useState } from "react";
import { FileClock, RefreshCw } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, TableSkeleton } from "@/components/States";
import { StatusBadge } from "@/components/StatusBadge";
import { useProjects } from "@/context/projects";
import { auditApi, type AuditEntry } from "@/api";
import { formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

const PAGE = 100;

export default function AuditPage() {
  const { projects } = useProjects();
  const [project, setProject] = useState<string>("");
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [seq, setSeq] = useState(0);

  const load = async (before: string | null, reset: boolean) => {
    setLoading(true);
    setError(null);
    try {
      const r = await auditApi.list({ project: project || undefined, limit: PAGE, before });
      setEntries((e) => (reset ? r.entries : [...e, ...r.entries]));
      setNext(r.next_before);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    void load(null, true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [project, seq]);

  const projectName = (id: string | null) => (id ? (projects?.find((p) => p.id === id)?.name ?? id) : "—");

  return (
    <Page wide className="max-w-7xl">
      <PageHeader
        icon={FileClock}
        title="Audit log"
        description="Every admin action and sign-in attempt, newest first."
        actions={
          <>
            <Select value={project || "__all"} onValueChange={(v) => setProject(v === "__all" ? "" : v)}>
              <SelectTrigger className="w-48" data-testid="audit-project-filter">
                <SelectValue />
              </SelectTrigger>
              <SelectContent>
                <SelectItem value="__all">All projects</SelectItem>
                {(projects ?? []).map((p) => (
                  <SelectItem key={p.id} value={p.id}>
                    {p.name}
                  </SelectItem>
                ))}
              </SelectContent>
            </Select>
            <Button variant="outline" size="icon" onClick={() => setSeq((s) => s + 1)} aria-label="Refresh">
              <RefreshCw className={cn(loading && "animate-spin")} />
            </Button>
          </>
        }
      />
      {error && entries.length === 0 ? (
        <ErrorAlert error={error} title="Could not load the audit log" onRetry={() => setSeq((s) => s + 1)} />
      ) : loading && entries.length === 0 ? (
        <div className="rounded-lg border">
          <TableSkeleton rows={8} cols={6} />
        </div>
      ) : entries.length === 0 ? (
        <EmptyState icon={FileClock} title="No audit entries" description="Admin actions will be recorded here." />
      ) : (
        <>
          <div className="overflow-hidden rounded-lg border">
            <Table data-testid="audit-table">
              <TableHeader>
                <TableRow>
                  <TableHead className="w-44">Time</TableHead>
                  <TableHead>Actor</TableHead>
                  <TableHead>Action</TableHead>
                  <TableHead>Target</TableHead>
                  <TableHead>Project</TableHead>
                  <TableHead>Source IP</TableHead>
                  <TableHead>Outcome</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {entries.map((e) => (
                  <TableRow key={e.id} data-testid="audit-row" data-action={e.action} data-project-id={e.project_id ?? undefined}>
                    <TableCell className="whitespace-nowrap font-mono text-2xs" title={formatRelative(e.at)}>
                      {formatDateTime(e.at)}
                    </TableCell>
                    <TableCell className="text-xs">{e.actor}</TableCell>
                    <TableCell className="font-mono text-xs">{e.action}</TableCell>
                    <TableCell className="max-w-[16rem] truncate font-mono text-2xs text-muted-foreground" title={e.target ?? ""}>
                      {e.target ?? "—"}
                    </TableCell>
                    <TableCell className="text-xs text-muted-foreground">{projectName(e.project_id)}</TableCell>
                    <TableCell className="font-mono text-2xs text-muted-foreground">{e.source_ip ?? "—"}</TableCell>
                    <TableCell>
                      <StatusBadge status={e.outcome} />
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </div>
          {error ? <ErrorAlert className="mt-3" error={error} onRetry={() => void load(next, false)} /> : null}
          {next && (
            <div className="mt-3 flex justify-center">
              <Button variant="outline" size="sm" onClick={() => void load(next, false)} loading={loading} data-testid="audit-load-more">
                Load older entries
              </Button>
            </div>
          )}
        </>
      )}
    </Page>
  );
}
