import { useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { Database, HardDrive, KeyRound, MoreHorizontal, Plus, RefreshCw, Activity, Trash2, Ban } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Skeleton } from "@/components/ui/skeleton";
import { Badge } from "@/components/ui/badge";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, Section, TableSkeleton } from "@/components/States";
import { CopyField } from "@/components/CopyButton";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { SecretDialog } from "@/components/SecretDialog";
import { StatusBadge } from "@/components/StatusBadge";
import { useQuery } from "@/hooks/useQuery";
import { useProjects } from "@/context/projects";
import { keysApi, projectsApi, errorMessage, type ApiKey, type KeyType } from "@/api";
import { formatBytes, formatDateTime, formatNumber, formatRelative } from "@/lib/format";

function UsageCard({
  icon: Icon,
  label,
  value,
  loading,
  testId,
}: {
  icon: React.ComponentType<{ className?: string }>;
  label: string;
  value: string;
  loading: boolean;
  testId: string;
}) {
  return (
    <Card>
      <CardHeader className="pb-1">
        <CardDescription className="flex items-center gap-1.5">
          <Icon className="h-3.5 w-3.5" /> {label}
        </CardDescription>
      </CardHeader>
      <CardContent>
        {loading ? (
          <Skeleton className="h-6 w-24" />
        ) : (
          <div className="text-xl font-semibold tabular" data-testid={testId}>
            {value}
          </div>
        )}
      </CardContent>
    </Card>
  );
}

function KeysSection({ projectId }: { projectId: string }) {
  const q = useQuery(() => keysApi.list(projectId), [projectId]);
  const [secret, setSecret] = useState<{ title: string; value: string; type: KeyType } | null>(null);
  const [rotating, setRotating] = useState<ApiKey | null>(null);
  const [grace, setGrace] = useState("3600");
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [creating, setCreating] = useState<KeyType | null>(null);

  const create = async (type: KeyType) => {
    setCreating(type);
    try {
      const r = await keysApi.create(projectId, type);
      setSecret({ title: `New ${type} key`, value: r.secret, type });
      void q.reload();
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setCreating(null);
    }
  };

  return (
    <Section
      title="API keys"
      description="Publishable keys are safe in browsers for minimal reads; secret keys stay on your server."
      actions={
        <DropdownMenu>
          <DropdownMenuTrigger asChild>
            <Button size="sm" variant="outline" loading={!!creating} data-testid="create-key-button">
              <Plus /> New key
            </Button>
          </DropdownMenuTrigger>
          <DropdownMenuContent align="end">
            <DropdownMenuItem onSelect={() => void create("publishable")} data-testid="create-key-publishable">
              Publishable key
            </DropdownMenuItem>
            <DropdownMenuItem onSelect={() => void create("secret")} data-testid="create-key-secret">
              Secret key
            </DropdownMenuItem>
          </DropdownMenuContent>
        </DropdownMenu>
      }
    >
      {q.error && !q.data ? (
        <div className="p-3">
          <ErrorAlert error={q.error} title="Could not load keys" onRetry={() => void q.reload()} />
        </div>
      ) : q.initialLoading ? (
        <TableSkeleton rows={2} cols={6} />
      ) : q.data && q.data.length === 0 ? (
        <EmptyState className="m-3" icon={KeyRound} title="No API keys" description="Create a key for your app." />
      ) : (
        <Table data-testid="keys-table">
          <TableHeader>
            <TableRow>
              <TableHead>Type</TableHead>
              <TableHead>Prefix</TableHead>
              <TableHead>Status</TableHead>
              <TableHead>Created</TableHead>
              <TableHead>Last used</TableHead>
              <TableHead>Expires</TableHead>
              <TableHead className="w-10" />
            </TableRow>
          </TableHeader>
          <TableBody>
            {(q.data ?? []).map((k) => (
              <TableRow key={k.id} data-testid="key-row" data-key-id={k.id} data-key-status={k.status}>
                <TableCell>
                  <Badge variant={k.type === "secret" ? "warning" : "secondary"}>{k.type}</Badge>
                </TableCell>
                <TableCell className="font-mono text-xs">{k.prefix}…</TableCell>
                <TableCell>
                  <StatusBadge status={k.status} />
                </TableCell>
                <TableCell className="text-xs text-muted-foreground" title={formatDateTime(k.created_at)}>
                  {formatRelative(k.created_at)}
                </TableCell>
                <TableCell className="text-xs text-muted-foreground" title={formatDateTime(k.last_used_at)}>
                  {k.last_used_at ? formatRelative(k.last_used_at) : "never"}
                </TableCell>
                <TableCell className="text-xs text-muted-foreground" title={formatDateTime(k.expires_at)}>
                  {k.revoked_at ? `revoked ${formatRelative(k.revoked_at)}` : k.expires_at ? formatRelative(k.expires_at) : "—"}
                </TableCell>
                <TableCell>
                  {k.status !== "revoked" && (
                    <DropdownMenu>
                      <DropdownMenuTrigger asChild>
                        <Button variant="ghost" size="icon-sm" aria-label="Key actions" data-testid="key-actions">
                          <MoreHorizontal />
                        </Button>
                      </DropdownMenuTrigger>
                      <DropdownMenuContent align="end">
                        <DropdownMenuItem onSelect={() => setRotating(k)} data-testid="key-rotate">
                          <RefreshCw /> Rotate…
                        </DropdownMenuItem>
                        <DropdownMenuSeparator />
                        <DropdownMenuItem destructive onSelect={() => setRevoking(k)} data-testid="key-revoke">
                          <Ban /> Revoke…
                        </DropdownMenuItem>
                      </DropdownMenuContent>
                    </DropdownMenu>
                  )}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}

      <ConfirmDialog
        open={!!rotating}
        onOpenChange={(o) => !o && setRotating(null)}
        title={`Rotate ${rotating?.type ?? ""} key ${rotating?.prefix ?? ""}…`}
        description="A new key is issued. The old key keeps working during the grace period so deployed apps can switch over."
        actionLabel="Rotate key"
        destructive={false}
        testId="rotate-key-dialog"
        onConfirm={async () => {
          if (!rotating) return;
          const g = Number(grace);
          const r = await keysApi.rotate(projectId, rotating.id, Number.isFinite(g) && g >= 0 ? g : undefined);
          setSecret({ title: `Rotated ${r.key.type} key`, value: r.secret, type: r.key.type });
          void q.reload();
        }}
      >
        <div className="grid gap-1.5">
          <Label htmlFor="grace">Grace period (seconds)</Label>
          <Input
            id="grace"
            type="number"
            min={0}
            value={grace}
            onChange={(e) => setGrace(e.target.value)}
            data-testid="rotate-key-grace"
          />
          <p className="text-xs text-muted-foreground">0 revokes the old key immediately.</p>
        </div>
      </ConfirmDialog>

      <ConfirmDialog
        open={!!revoking}
        onOpenChange={(o) => !o && setRevoking(null)}
        title={`Revoke key ${revoking?.prefix ?? ""}…`}
        description="Requests using this key are rejected from now on. This cannot be undone."
        actionLabel="Revoke key"
        testId="revoke-key-dialog"
        onConfirm={async () => {
          if (!revoking) return;
          await keysApi.revoke(projectId, revoking.id);
          toast.success("Key revoked");
          void q.reload();
        }}
      />

      {secret && (
        <SecretDialog
          open
          onOpenChange={(o) => !o && setSecret(null)}
          title={secret.title}
          testId="new-key-dialog"
          items={[{ label: `${secret.type} key`, value: secret.value, testId: "new-key-value" }]}
        />
      )}
    </Section>
  );
}

export default function ProjectOverviewPage() {
  const { projectId = "" } = useParams();
  const navigate = useNavigate();
  const { reload: reloadProjects } = useProjects();
  const q = useQuery(() => projectsApi.get(projectId), [projectId]);
  const [deleting, setDeleting] = useState(false);
  const p = q.data;
  const conn = p?.connection;
  const connString = conn ? `postgresql://${conn.host}:${conn.port}/${conn.database}` : "";

  return (
    <Page>
      <PageHeader
        title={p ? p.name : q.initialLoading ? <Skeleton className="h-6 w-40" /> : "Project"}
        description={
          <span className="font-mono text-xs">
            {projectId}
            {p ? ` · ${p.db_name} · node ${p.node_id}` : ""}
          </span>
        }
        actions={
          <Button variant="outline" size="sm" onClick={() => void q.reload()} loading={q.loading && !!q.data}>
            <RefreshCw /> Refresh
          </Button>
        }
      />
      {q.error && !p ? (
        <ErrorAlert error={q.error} title="Could not load the project" onRetry={() => void q.reload()} />
      ) : (
        <div className="grid gap-4">
          <div className="grid gap-3 sm:grid-cols-3">
            <UsageCard
              icon={Database}
              label="Database size"
              value={formatBytes(p?.usage.db_size_bytes)}
              loading={q.initialLoading}
              testId="usage-db-size"
            />
            <UsageCard
              icon={HardDrive}
              label="Storage used"
              value={formatBytes(p?.usage.storage_bytes)}
              loading={q.initialLoading}
              testId="usage-storage"
            />
            <UsageCard
              icon={Activity}
              label="API requests (24 h)"
              value={formatNumber(p?.usage.requests_24h)}
              loading={q.initialLoading}
              testId="usage-requests"
            />
          </div>

          <Section title="Connection" description="Direct PostgreSQL access for migrations and tools (credentials are per role).">
            <div className="grid gap-3 p-4 sm:grid-cols-2">
              {q.initialLoading || !conn ? (
                <>
                  <Skeleton className="h-12" />
                  <Skeleton className="h-12" />
                </>
              ) : (
                <>
                  <CopyField label="Host" value={conn.host} testId="conn-host" />
                  <CopyField label="Port" value={String(conn.port)} testId="conn-port" />
                  <CopyField label="Database" value={conn.database} testId="conn-database" />
                  <CopyField label="Connection string" value={connString} testId="conn-string" />
                </>
              )}
            </div>
          </Section>

          <KeysSection projectId={projectId} />

          <Card className="border-destructive/40">
            <CardHeader>
              <CardTitle className="text-destructive">Danger zone</CardTitle>
              <CardDescription>
                Deleting a project drops its database, storage and keys. Take a backup first if you may need the data.
              </CardDescription>
            </CardHeader>
            <CardContent>
              <Button variant="destructive" size="sm" onClick={() => setDeleting(true)} data-testid="delete-project-button">
                <Trash2 /> Delete project
              </Button>
            </CardContent>
          </Card>
        </div>
      )}
      <ConfirmDialog
        open={deleting}
        onOpenChange={setDeleting}
        title="Delete project"
        description={
          <>
            This permanently deletes <b>{p?.name ?? projectId}</b>, its database <code>{p?.db_name}</code>, all stored
            objects and API keys.
          </>
        }
        confirmText={projectId}
        actionLabel="Delete project"
        testId="delete-project-dialog"
        onConfirm={async () => {
          try {
            await projectsApi.remove(projectId);
          } catch (e) {
            throw new Error(errorMessage(e));
          }
          toast.success("Project deleted");
          await reloadProjects();
          navigate("/projects");
        }}
      />
    </Page>
  );
}
