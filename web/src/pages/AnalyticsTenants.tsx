import { useState } from "react";
import { KeyRound, Plus, Trash2, Users } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Badge } from "@/components/ui/badge";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { toast } from "@/components/ui/sonner";
import { EmptyState, ErrorAlert, Section, TableSkeleton } from "@/components/States";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { SecretDialog } from "@/components/SecretDialog";
import { FormError } from "@/components/FormParts";
import { useQuery } from "@/hooks/useQuery";
import { errorMessage, type AnalyticsConnection } from "@/api";
import { analyticsApi, connectionUri, tenantRoleNameProblem } from "@/api/analytics";

interface ShownPassword {
  role: string;
  password: string;
  connection: AnalyticsConnection;
  skipped: string[];
}

function NewTenantRoleForm({ projectId, onCreated }: { projectId: string; onCreated: (s: ShownPassword) => void }) {
  const [name, setName] = useState("");
  const [column, setColumn] = useState("tenant_id");
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const nameProblem = name ? tenantRoleNameProblem(name) : null;
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (tenantRoleNameProblem(name)) return;
    setBusy(true);
    setError(null);
    try {
      const r = await analyticsApi.createTenantRole(projectId, {
        name,
        tenant_column: column.trim(),
        tenant_value: value,
      });
      toast.success(`Tenant role ${r.name} created`);
      setName("");
      setValue("");
      onCreated({ role: r.name, password: r.connection.password, connection: r.connection, skipped: r.skipped });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="grid gap-3 border-t p-4" data-testid="analytics-tenant-role-form">
      <span className="text-xs font-medium">New tenant role</span>
      <div className="grid gap-3 md:grid-cols-3">
        <div className="grid gap-1.5">
          <Label htmlFor="tenant-role-name">Name</Label>
          <Input
            id="tenant-role-name"
            required
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="acme"
            aria-invalid={!!nameProblem}
            data-testid="analytics-tenant-role-name"
          />
          {nameProblem && <p className="text-2xs text-destructive">{nameProblem}</p>}
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="tenant-role-column">Tenant column</Label>
          <Input
            id="tenant-role-column"
            required
            className="font-mono text-xs"
            value={column}
            onChange={(e) => setColumn(e.target.value)}
            data-testid="analytics-tenant-role-column"
          />
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="tenant-role-value">Tenant value</Label>
          <Input
            id="tenant-role-value"
            required
            className="font-mono text-xs"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            placeholder="00000000-0000-0000-0000-00000000000a"
            data-testid="analytics-tenant-role-value"
          />
        </div>
      </div>
      <FormError error={error} testId="analytics-tenant-role-error" />
      <div>
        <Button type="submit" size="sm" loading={busy} disabled={!!nameProblem} data-testid="analytics-tenant-role-submit">
          <Plus /> Create tenant role
        </Button>
      </div>
    </form>
  );
}

/** Per-tenant logins: each sees the analytics views filtered on its tenant column, nothing else. */
export function TenantRolesSection({
  projectId,
  connection,
  viewNames,
}: {
  projectId: string;
  connection: AnalyticsConnection | null;
  /** The published views; a change reloads the list, as tenants gain or lose their copies. */
  viewNames: string;
}) {
  const q = useQuery(() => analyticsApi.listTenantRoles(projectId), [projectId, viewNames]);
  const [shown, setShown] = useState<ShownPassword | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [rotating, setRotating] = useState<string | null>(null);
  const roles = q.data?.tenant_roles ?? [];

  const rotate = async (name: string, user: string) => {
    setRotating(name);
    try {
      const r = await analyticsApi.rotateTenantPassword(projectId, name);
      if (connection) setShown({ role: name, password: r.password, connection: { ...connection, user }, skipped: [] });
    } catch (e) {
      toast.error(errorMessage(e));
    } finally {
      setRotating(null);
    }
  };

  return (
    <Section
      title="Tenant roles"
      description="A login per tenant (for a tenant's own Metabase): its schema holds the views above filtered on the tenant column."
    >
      {q.error && !q.data ? (
        <ErrorAlert error={q.error} title="Could not load tenant roles" onRetry={() => void q.reload()} />
      ) : q.initialLoading ? (
        <TableSkeleton rows={2} cols={4} />
      ) : roles.length === 0 ? (
        <EmptyState
          className="m-3"
          icon={Users}
          title="No tenant roles"
          description="Create one to give a tenant read access to its own rows only."
          testId="analytics-tenant-roles-empty"
        />
      ) : (
        <Table data-testid="analytics-tenant-roles">
          <TableHeader>
            <TableRow>
              <TableHead>Name</TableHead>
              <TableHead>User</TableHead>
              <TableHead>Filter</TableHead>
              <TableHead>Views</TableHead>
              <TableHead className="w-20" />
            </TableRow>
          </TableHeader>
          <TableBody>
            {roles.map((r) => (
              <TableRow key={r.name} data-testid="analytics-tenant-role-row" data-tenant-role={r.name}>
                <TableCell className="font-mono text-xs">{r.name}</TableCell>
                <TableCell className="font-mono text-2xs text-muted-foreground">{r.user}</TableCell>
                <TableCell className="max-w-xs truncate font-mono text-2xs">
                  {r.tenant_column} = {String(r.tenant_value)}
                </TableCell>
                <TableCell className="text-xs">
                  <span title={r.views.join(", ")}>{r.views.length}</span>
                  {r.skipped.length > 0 && (
                    <Badge variant="outline" className="ml-2" title={`Without ${r.tenant_column}: ${r.skipped.join(", ")}`}>
                      {r.skipped.length} skipped
                    </Badge>
                  )}
                </TableCell>
                <TableCell className="flex justify-end gap-1">
                  <Button
                    variant="ghost"
                    size="icon-sm"
                    onClick={() => void rotate(r.name, r.user)}
                    loading={rotating === r.name}
                    aria-label={`New password for ${r.name}`}
                    data-testid="analytics-tenant-role-rotate"
                  >
                    <KeyRound />
                  </Button>
                  <Button
                    variant="ghost"
                    size="icon-sm"
                    onClick={() => setDeleting(r.name)}
                    aria-label={`Delete tenant role ${r.name}`}
                    data-testid="analytics-tenant-role-delete"
                  >
                    <Trash2 />
                  </Button>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      <NewTenantRoleForm
        projectId={projectId}
        onCreated={(s) => {
          setShown(s);
          void q.reload();
        }}
      />
      {shown && (
        <SecretDialog
          open
          onOpenChange={(o) => !o && setShown(null)}
          title={`Tenant role ${shown.role}`}
          testId="analytics-tenant-password-dialog"
          description={
            shown.skipped.length > 0 ? `Not visible to this role (no tenant column): ${shown.skipped.join(", ")}.` : undefined
          }
          items={[
            { label: "User", value: shown.connection.user, testId: "analytics-tenant-user" },
            { label: "Password", value: shown.password, testId: "analytics-tenant-password" },
            { label: "Connection string", value: connectionUri(shown.connection, shown.password) },
          ]}
        />
      )}
      <ConfirmDialog
        open={!!deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        title={`Delete tenant role ${deleting}`}
        description="The role and its schema are dropped and its open sessions end; BI tools using it lose access."
        actionLabel="Delete tenant role"
        testId="analytics-tenant-role-delete-dialog"
        onConfirm={async () => {
          await analyticsApi.deleteTenantRole(projectId, deleting!);
          toast.success("Tenant role deleted");
          void q.reload();
        }}
      />
    </Section>
  );
}
