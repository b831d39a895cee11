import { useState } from "react";
import { useParams } from "react-router-dom";
import { BarChart3, KeyRound, Plus, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Switch } from "@/components/ui/switch";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { Tabs, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Skeleton } from "@/components/ui/skeleton";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, Section, TableSkeleton } from "@/components/States";
import { CopyField } from "@/components/CopyButton";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { SecretDialog } from "@/components/SecretDialog";
import { FormError } from "@/components/FormParts";
import { useQuery } from "@/hooks/useQuery";
import { analyticsApi, errorMessage, type AnalyticsConnection, type AnalyticsViewInput } from "@/api";
import { connectionUri } from "@/api/analytics";
import { NeverExposableSection } from "./AnalyticsNeverExposable";
import { TenantRolesSection } from "./AnalyticsTenants";

function NewViewForm({ projectId, onCreated }: { projectId: string; onCreated: () => void }) {
  const [kind, setKind] = useState<"table" | "sql">("table");
  const [name, setName] = useState("");
  const [table, setTable] = useState("");
  const [columns, setColumns] = useState("");
  const [where, setWhere] = useState("");
  const [sql, setSql] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const body: AnalyticsViewInput =
      kind === "sql"
        ? { name: name.trim(), sql }
        : {
            name: name.trim(),
            table: table.trim(),
            columns: columns
              .split(",")
              .map((c) => c.trim())
              .filter(Boolean),
            ...(where.trim() ? { where: where.trim() } : {}),
          };
    setBusy(true);
    setError(null);
    try {
      await analyticsApi.createView(projectId, body);
      toast.success(`View ${name} created`);
      setName("");
      setTable("");
      setColumns("");
      setWhere("");
      setSql("");
      onCreated();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="grid gap-3 border-t p-4" data-testid="analytics-view-form">
      <div className="flex items-center justify-between">
        <span className="text-xs font-medium">New view</span>
        <Tabs value={kind} onValueChange={(v) => setKind(v as "table" | "sql")}>
          <TabsList>
            <TabsTrigger value="table">From a table</TabsTrigger>
            <TabsTrigger value="sql">SQL</TabsTrigger>
          </TabsList>
        </Tabs>
      </div>
      <div className="grid gap-3 md:grid-cols-3">
        <div className="grid gap-1.5">
          <Label htmlFor="view-name">View name</Label>
          <Input id="view-name" required value={name} onChange={(e) => setName(e.target.value)} placeholder="orders_daily" />
        </div>
        {kind === "table" ? (
          <>
            <div className="grid gap-1.5">
              <Label htmlFor="view-table">Table</Label>
              <Input id="view-table" required value={table} onChange={(e) => setTable(e.target.value)} placeholder="orders" />
            </div>
            <div className="grid gap-1.5">
              <Label htmlFor="view-columns">Columns (comma separated)</Label>
              <Input id="view-columns" required value={columns} onChange={(e) => setColumns(e.target.value)} placeholder="id, total, created_at" />
            </div>
            <div className="grid gap-1.5 md:col-span-3">
              <Label htmlFor="view-where">Filter (optional SQL condition)</Label>
              <Input id="view-where" className="font-mono text-xs" value={where} onChange={(e) => setWhere(e.target.value)} placeholder="status = 'paid'" />
            </div>
          </>
        ) : (
          <div className="grid gap-1.5 md:col-span-3">
            <Label htmlFor="view-sql">SELECT statement</Label>
            <Textarea id="view-sql" required rows={4} className="font-mono text-xs" value={sql} onChange={(e) => setSql(e.target.value)} placeholder="select date_trunc('day', created_at) d, sum(total) from orders group by 1" />
          </div>
        )}
      </div>
      <FormError error={error} />
      <div>
        <Button type="submit" size="sm" loading={busy}>
          <Plus /> Create view
        </Button>
      </div>
    </form>
  );
}

export default function AnalyticsPage() {
  const { projectId = "" } = useParams();
  const q = useQuery(() => analyticsApi.get(projectId), [projectId]);
  const [busy, setBusy] = useState(false);
  const [password, setPassword] = useState<{ pw: string; conn: AnalyticsConnection | null } | null>(null);
  const [disabling, setDisabling] = useState(false);
  const [dropping, setDropping] = useState<string | null>(null);
  const info = q.data;

  const setEnabled = async (enabled: boolean) => {
    setBusy(true);
    try {
      const r = await analyticsApi.setEnabled(projectId, enabled);
      if (enabled && r.connection?.password) setPassword({ pw: r.connection.password, conn: r.connection });
      toast.success(enabled ? "Analytics access enabled" : "Analytics access disabled");
      await q.reload();
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const resetPassword = async () => {
    setBusy(true);
    try {
      const r = await analyticsApi.resetPassword(projectId);
      setPassword({ pw: r.password, conn: info?.connection ?? null });
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page>
      <PageHeader
        icon={BarChart3}
        title="Analytics access"
        description="A read-only PostgreSQL role for BI tools (Metabase, Grafana…), limited to the views you publish."
        actions={
          info && (
            <div className="flex items-center gap-2 text-sm">
              <Switch
                checked={info.enabled}
                disabled={busy}
                onCheckedChange={(c) => (c ? void setEnabled(true) : setDisabling(true))}
                data-testid="analytics-enabled"
              />
              {info.enabled ? "Enabled" : "Disabled"}
            </div>
          )
        }
      />
      {q.error && !info ? (
        <ErrorAlert error={q.error} title="Could not load analytics settings" onRetry={() => void q.reload()} />
      ) : q.initialLoading ? (
        <Skeleton className="h-40" />
      ) : !info?.enabled ? (
        <div className="grid gap-4">
          <EmptyState
            icon={BarChart3}
            title="Analytics access is off"
            description="Enable it to get a read-only connection for BI tools. Only the views listed here are visible to that role."
            action={
              <Button size="sm" onClick={() => void setEnabled(true)} loading={busy} data-testid="analytics-enable">
                Enable analytics access
              </Button>
            }
          />
          {info && (
            <NeverExposableSection
              projectId={projectId}
              tables={info.never_exposable ?? []}
              onChanged={() => void q.reload()}
            />
          )}
        </div>
      ) : (
        <div className="grid gap-4">
          <Section
            title="Connection"
            actions={
              <Button variant="outline" size="sm" onClick={() => void resetPassword()} loading={busy} data-testid="analytics-reset-password">
                <KeyRound /> New password
              </Button>
            }
          >
            {info.connection ? (
              <div className="grid gap-3 p-4 sm:grid-cols-2">
                <CopyField label="Host" value={info.connection.host} />
                <CopyField label="Port" value={String(info.connection.port)} />
                <CopyField label="Database" value={info.connection.database} />
                <CopyField label="User" value={info.connection.user} />
                <CopyField label="SSL mode" value={info.connection.sslmode} />
                <CopyField label="Connection string (without password)" value={connectionUri(info.connection)} />
              </div>
            ) : (
              <p className="p-4 text-xs text-muted-foreground">No connection details available.</p>
            )}
          </Section>
          <Section title="Published views" description="The analytics role can read these views and nothing else.">
            {info.views.length === 0 ? (
              <EmptyState className="m-3" title="No views yet" description="Publish a view of a table (chosen columns and rows) or a SELECT." />
            ) : (
              <Table data-testid="analytics-views">
                <TableHeader>
                  <TableRow>
                    <TableHead>Name</TableHead>
                    <TableHead>Definition</TableHead>
                    <TableHead className="w-10" />
                  </TableRow>
                </TableHeader>
                <TableBody>
                  {info.views.map((v) => (
                    <TableRow key={v.name}>
                      <TableCell className="font-mono text-xs">{v.name}</TableCell>
                      <TableCell className="max-w-md truncate font-mono text-2xs text-muted-foreground">
                        {v.sql ?? `${v.table}(${(v.columns ?? []).join(", ")})${v.where ? ` where ${v.where}` : ""}`}
                      </TableCell>
                      <TableCell>
                        <Button variant="ghost" size="icon-sm" onClick={() => setDropping(v.name)} aria-label="Drop view">
                          <Trash2 />
                        </Button>
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            )}
            <NewViewForm projectId={projectId} onCreated={() => void q.reload()} />
          </Section>
          <NeverExposableSection
            projectId={projectId}
            tables={info.never_exposable ?? []}
            onChanged={() => void q.reload()}
          />
          <TenantRolesSection
            projectId={projectId}
            connection={info.connection}
            viewNames={info.views.map((v) => v.name).join(",")}
          />
        </div>
      )}
      {q.loading && !info && <TableSkeleton />}
      {password && (
        <SecretDialog
          open
          onOpenChange={(o) => !o && setPassword(null)}
          title="Analytics password"
          testId="analytics-password-dialog"
          items={[
            { label: "Password", value: password.pw, testId: "analytics-password" },
            ...(password.conn ? [{ label: "Connection string", value: connectionUri(password.conn, password.pw) }] : []),
          ]}
        />
      )}
      <ConfirmDialog
        open={disabling}
        onOpenChange={setDisabling}
        title="Disable analytics access"
        description="The analytics role is dropped; BI tools using it lose access. Published view definitions are kept."
        actionLabel="Disable"
        onConfirm={() => setEnabled(false)}
      />
      <ConfirmDialog
        open={!!dropping}
        onOpenChange={(o) => !o && setDropping(null)}
        title={`Drop view ${dropping}`}
        description="Dashboards that query this view will stop working."
        actionLabel="Drop view"
        onConfirm={async () => {
          await analyticsApi.deleteView(projectId, dropping!);
          toast.success("View dropped");
          void q.reload();
        }}
      />
    </Page>
  );
}
