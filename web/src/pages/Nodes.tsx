import { useState } from "react";
import { Network, Plus, RefreshCw, Server, Trash2, ArrowUpCircle, Terminal } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, Section, TableSkeleton } from "@/components/States";
import { CopyField } from "@/components/CopyButton";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { StatusBadge } from "@/components/StatusBadge";
import { useInterval, useQuery } from "@/hooks/useQuery";
import { useSession } from "@/context/session";
import { errorMessage, nodesApi, type JoinToken, type NodeInfo } from "@/api";
import { formatAge, formatBytes, formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

/** disk / load come as numbers or small objects depending on the agent; render either. */
export function formatMetric(v: unknown, kind: "disk" | "load"): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return kind === "load" ? v.toFixed(2) : `${Math.round(v * (v <= 1 ? 100 : 1))}%`;
  if (typeof v === "string") return v;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (kind === "disk") {
      const used = Number(o.used_bytes ?? o.used);
      const total = Number(o.total_bytes ?? o.total);
      if (Number.isFinite(used) && Number.isFinite(total) && total > 0)
        return `${formatBytes(used)} / ${formatBytes(total)} (${Math.round((used / total) * 100)}%)`;
      const free = Number(o.free_bytes ?? o.free);
      if (Number.isFinite(free)) return `${formatBytes(free)} free`;
    } else {
      const l1 = o.load1 ?? o["1m"] ?? (Array.isArray(v) ? (v as unknown[])[0] : undefined);
      if (typeof l1 === "number") return l1.toFixed(2);
    }
    if (Array.isArray(v)) return (v as unknown[]).map((x) => (typeof x === "number" ? x.toFixed(2) : String(x))).join(" ");
    return JSON.stringify(v);
  }
  return String(v);
}

function JoinDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (o: boolean) => void }) {
  const [token, setToken] = useState<JoinToken | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      setToken(await nodesApi.createJoinToken());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={open}
      onOpenChange={(o) => {
        if (!o) setToken(null);
        onOpenChange(o);
      }}
    >
      <DialogContent className="max-w-2xl" data-testid="join-dialog">
        <DialogHeader>
          <DialogTitle>Add a node</DialogTitle>
          <DialogDescription>
            Install AtlasHub on the new machine (Pi image or <code className="font-mono">apt install atlashub</code>), then run
            the join command there. The token works once and expires.
          </DialogDescription>
        </DialogHeader>
        {token ? (
          <div className="grid gap-3">
            <CopyField label="Join command (run on the new node as root)" value={token.join_command} testId="join-command" />
            <CopyField label="Token" value={token.token} masked testId="join-token" />
            <p className="text-xs text-muted-foreground">Expires {formatRelative(token.expires_at)} ({formatDateTime(token.expires_at)}).</p>
          </div>
        ) : (
          <Alert>
            <Network />
            <AlertTitle>What happens</AlertTitle>
            <AlertDescription>
              The master allocates the node a WireGuard address, both sides add each other as peers, and from then on every
              message between them is signed. The new node then sends a heartbeat every 30 s.
            </AlertDescription>
          </Alert>
        )}
        {error ? <ErrorAlert error={error} title="Could not create a join token" /> : null}
        <DialogFooter>
          {token ? (
            <Button onClick={() => onOpenChange(false)}>Done</Button>
          ) : (
            <Button onClick={() => void create()} loading={busy} data-testid="join-create-token">
              Create join token
            </Button>
          )}
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}

function WorkerView({ self, master }: { self?: NodeInfo; master?: NodeInfo }) {
  return (
    <div className="grid gap-4">
      <Card data-testid="worker-self">
        <CardHeader>
          <CardTitle className="flex items-center gap-2">
            <Server className="h-4 w-4" /> {self?.name ?? "This node"}
            {self && <StatusBadge status={self.status} />}
          </CardTitle>
          <CardDescription>
            This machine is a <b>worker</b>: it hosts project databases and storage, and is managed from the master&apos;s
            dashboard{master?.wg_address ? ` (${master.wg_address})` : ""}.
          </CardDescription>
        </CardHeader>
        {self && (
          <CardContent className="grid gap-3 text-xs sm:grid-cols-4">
            <Info label="Version" value={self.version ?? "—"} />
            <Info label="WireGuard address" value={self.wg_address ?? "—"} />
            <Info label="Last heartbeat" value={formatRelative(self.last_heartbeat_at)} />
            <Info label="Handshake age" value={formatAge(self.handshake_age_s)} />
            <Info label="Projects hosted" value={String(self.projects)} />
            <Info label="Disk" value={formatMetric(self.disk, "disk")} />
            <Info label="Load" value={formatMetric(self.load, "load")} />
            <Info label="Last backup" value={formatRelative(self.last_backup_at)} />
          </CardContent>
        )}
      </Card>
      <JoinHowTo />
    </div>
  );
}

function JoinHowTo() {
  return (
    <Section title="Join a cluster" description="How a machine becomes a worker of an AtlasHub master.">
      <ol className="list-decimal space-y-2 p-4 pl-8 text-sm">
        <li>
          On the <b>master</b>&apos;s dashboard, open <b>Nodes → Add node</b> and create a join token.
        </li>
        <li>
          On this machine, run the join command it shows, for example:
          <CopyField className="mt-1.5" value="sudo atlashub node join --master <master-address> --token <token>" />
        </li>
        <li>The master allocates a WireGuard address; this node then appears in the master&apos;s node list within a minute.</li>
      </ol>
    </Section>
  );
}

function Info({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <div className="text-muted-foreground">{label}</div>
      <div className="mt-0.5 font-mono">{value}</div>
    </div>
  );
}

export default function NodesPage() {
  const { isWorker, overview } = useSession();
  const q = useQuery(() => nodesApi.list(), []);
  const [joinOpen, setJoinOpen] = useState(false);
  const [removing, setRemoving] = useState<NodeInfo | null>(null);
  useInterval(() => void q.reload(), 15000);

  const nodes = q.data?.nodes ?? [];
  const selfId = q.data?.self_id;
  const self = nodes.find((n) => n.id === selfId);
  const master = nodes.find((n) => n.role === "master");
  const worker = isWorker || self?.role === "worker";
  const masterVersion = master?.version ?? overview?.version;

  return (
    <Page wide className="max-w-7xl">
      <PageHeader
        icon={Server}
        title={worker ? "This node" : "Nodes"}
        description={
          worker
            ? "Health of this worker and how it joins a cluster."
            : "Machines of this cluster, linked over WireGuard. The master runs the control plane and routes traffic."
        }
        actions={
          <>
            <Button variant="outline" size="icon" onClick={() => void q.reload()} aria-label="Refresh">
              <RefreshCw className={cn(q.loading && "animate-spin")} />
            </Button>
            {!worker && (
              <Button onClick={() => setJoinOpen(true)} data-testid="add-node-button">
                <Plus /> Add node
              </Button>
            )}
          </>
        }
      />
      {q.error && !q.data ? (
        <>
          <ErrorAlert error={q.error} title="Could not load nodes" onRetry={() => void q.reload()} />
          {worker && (
            <div className="mt-4">
              <JoinHowTo />
            </div>
          )}
        </>
      ) : q.initialLoading ? (
        <div className="rounded-lg border">
          <TableSkeleton rows={3} cols={8} />
        </div>
      ) : worker ? (
        <WorkerView self={self} master={master} />
      ) : (
        <div className="grid gap-4">
          {nodes.length <= 1 && (
            <EmptyState
              icon={Network}
              title="Single-node setup"
              description="Add workers to host more project databases. Each worker joins over WireGuard with a one-time token."
              action={
                <Button size="sm" variant="outline" onClick={() => setJoinOpen(true)}>
                  <Plus /> Add node
                </Button>
              }
            />
          )}
          <div className="overflow-x-auto rounded-lg border">
            <Table data-testid="nodes-table">
              <TableHeader>
                <TableRow>
                  <TableHead>Node</TableHead>
                  <TableHead>Role</TableHead>
                  <TableHead>Status</TableHead>
                  <TableHead>Version</TableHead>
                  <TableHead>WireGuard</TableHead>
                  <TableHead>Heartbeat</TableHead>
                  <TableHead>Projects</TableHead>
                  <TableHead>Disk</TableHead>
                  <TableHead>Load</TableHead>
                  <TableHead>Last backup</TableHead>
                  <TableHead className="w-10" />
                </TableRow>
              </TableHeader>
              <TableBody>
                {nodes.map((n) => {
                  const outdated = masterVersion && n.version && n.version !== masterVersion;
                  return (
                    <TableRow key={n.id} data-testid="node-row" data-node-id={n.id}>
                      <TableCell>
                        <div className="font-medium">
                          {n.name}
                          {n.id === selfId && (
                            <Badge variant="outline" className="ml-1.5">
                              this node
                            </Badge>
                          )}
                        </div>
                        <div className="font-mono text-2xs text-muted-foreground">{n.id}</div>
                      </TableCell>
                      <TableCell>
                        <Badge variant={n.role === "master" ? "default" : "secondary"}>{n.role}</Badge>
                      </TableCell>
                      <TableCell>
                        <StatusBadge status={n.status} />
                      </TableCell>
                      <TableCell className="font-mono text-xs">
                        {n.version ?? "—"}
                        {outdated && (
                          <Badge variant="warning" className="ml-1.5" title={`Master runs ${masterVersion}`}>
                            <ArrowUpCircle className="h-3 w-3" /> upgrade
                          </Badge>
                        )}
                      </TableCell>
                      <TableCell className="font-mono text-xs">
                        {n.wg_address ?? "—"}
                        {n.handshake_age_s !== null && n.role !== "master" && (
                          <div className={cn("text-2xs", n.handshake_age_s > 180 ? "text-warning" : "text-muted-foreground")}>
                            handshake {formatAge(n.handshake_age_s)} ago
                          </div>
                        )}
                      </TableCell>
                      <TableCell className="text-xs text-muted-foreground" title={formatDateTime(n.last_heartbeat_at)}>
                        {formatRelative(n.last_heartbeat_at)}
                      </TableCell>
                      <TableCell className="text-xs tabular">{n.projects}</TableCell>
                      <TableCell className="text-xs">{formatMetric(n.disk, "disk")}</TableCell>
                      <TableCell className="text-xs tabular">{formatMetric(n.load, "load")}</TableCell>
                      <TableCell className="text-xs text-muted-foreground">{formatRelative(n.last_backup_at)}</TableCell>
                      <TableCell>
                        {n.role !== "master" && n.id !== selfId && (
                          <Button variant="ghost" size="icon-sm" onClick={() => setRemoving(n)} aria-label="Remove node">
                            <Trash2 />
                          </Button>
                        )}
                      </TableCell>
                    </TableRow>
                  );
                })}
              </TableBody>
            </Table>
          </div>
          <Section title="Upgrades" description="Upgrades are managed by systemd on each node, with automatic rollback.">
            <div className="grid gap-2 p-4 text-sm">
              <p className="text-muted-foreground">
                Each node upgrades itself: install, restart, health-check, and roll back to the previous release if the new one
                is not healthy. Nodes marked <Badge variant="warning">upgrade</Badge> run a different version than the master.
              </p>
              <div className="flex items-center gap-2 text-xs text-muted-foreground">
                <Terminal className="h-3.5 w-3.5" /> On a node:
              </div>
              <CopyField value="sudo apt update && sudo apt install --only-upgrade atlashub" />
            </div>
          </Section>
        </div>
      )}
      <JoinDialog open={joinOpen} onOpenChange={setJoinOpen} />
      <ConfirmDialog
        open={!!removing}
        onOpenChange={(o) => !o && setRemoving(null)}
        title="Remove node"
        description={
          <>
            <b>{removing?.name}</b> is removed from the cluster and its WireGuard peer dropped. Move or back up its projects
            first ({removing?.projects ?? 0} hosted).
          </>
        }
        confirmText={removing?.name}
        actionLabel="Remove node"
        testId="remove-node-dialog"
        onConfirm={async () => {
          try {
            await nodesApi.remove(removing!.id);
          } catch (e) {
            throw new Error(errorMessage(e));
          }
          toast.success("Node removed");
          void q.reload();
        }}
      />
    </Page>
  );
}
