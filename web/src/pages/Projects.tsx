import { useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { Boxes, Plus } from "lucide-react";
import { Button } from "@/components/ui/button";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { EmptyState, ErrorAlert, PageHeader, TableSkeleton } from "@/components/States";
import { CopyButton } from "@/components/CopyButton";
import { SecretDialog } from "@/components/SecretDialog";
import { DialogActions, FormError, ProjectNameField } from "@/components/FormParts";
import { useProjects } from "@/context/projects";
import { projectsApi, type CreatedProject } from "@/api";
import { formatDateTime, formatRelative } from "@/lib/format";

function CreateProjectDialog({
  open,
  onOpenChange,
  onCreated,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  onCreated: (p: CreatedProject) => void;
}) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (open) {
      setName("");
      setError(null);
    }
  }, [open]);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = await projectsApi.create(name.trim());
      onCreated(p);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent data-testid="create-project-dialog">
        <form onSubmit={submit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle>New project</DialogTitle>
            <DialogDescription>
              Creates a PostgreSQL database, a storage bucket and a publishable and a secret API key.
            </DialogDescription>
          </DialogHeader>
          <ProjectNameField
            id="project-name"
            label="Name"
            placeholder="my-app"
            value={name}
            onChange={setName}
            testId="create-project-name"
          />
          <FormError error={error} testId="create-project-error" />
          <DialogActions
            onCancel={() => onOpenChange(false)}
            busy={busy}
            submitDisabled={!name.trim()}
            submitTestId="create-project-submit"
          >
            Create project
          </DialogActions>
        </form>
      </DialogContent>
    </Dialog>
  );
}

export default function ProjectsPage() {
  const { projects, loading, error, reload } = useProjects();
  const [params, setParams] = useSearchParams();
  const [createOpen, setCreateOpen] = useState(params.get("new") === "1");
  const [created, setCreated] = useState<CreatedProject | null>(null);
  const navigate = useNavigate();

  useEffect(() => {
    if (params.get("new") === "1") {
      setCreateOpen(true);
      params.delete("new");
      setParams(params, { replace: true });
    }
  }, [params, setParams]);

  const onCreated = (p: CreatedProject) => {
    setCreateOpen(false);
    setCreated(p);
    toast.success(`Project ${p.name} created`);
    void reload();
  };

  const newButton = (
    <Button onClick={() => setCreateOpen(true)} data-testid="create-project-button">
      <Plus /> New project
    </Button>
  );

  return (
    <Page>
      <PageHeader
        icon={Boxes}
        title="Projects"
        description="Each project has its own PostgreSQL database, storage and API keys."
        actions={newButton}
      />
      {error && !projects ? (
        <ErrorAlert error={error} title="Could not load projects" onRetry={() => void reload()} />
      ) : loading && !projects ? (
        <div className="rounded-lg border">
          <TableSkeleton rows={4} cols={5} />
        </div>
      ) : projects && projects.length === 0 ? (
        <EmptyState
          icon={Boxes}
          title="No projects yet"
          description="Create a project to get a database, storage and API keys for your app."
          action={newButton}
          testId="projects-empty"
        />
      ) : (
        <div className="overflow-hidden rounded-lg border">
          <Table data-testid="projects-table">
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead>Project ID</TableHead>
                <TableHead>Database</TableHead>
                <TableHead>Node</TableHead>
                <TableHead className="text-right">Created</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {(projects ?? []).map((p) => (
                <TableRow
                  key={p.id}
                  className="cursor-pointer"
                  onClick={() => navigate(`/projects/${p.id}/overview`)}
                  data-testid="project-row"
                  data-project-id={p.id}
                >
                  <TableCell className="font-medium">
                    <Link to={`/projects/${p.id}/overview`} onClick={(e) => e.stopPropagation()} className="hover:underline">
                      {p.name}
                    </Link>
                  </TableCell>
                  <TableCell>
                    <span className="inline-flex items-center gap-1 font-mono text-xs text-muted-foreground">
                      {p.id}
                      <CopyButton value={p.id} label="Copy project ID" />
                    </span>
                  </TableCell>
                  <TableCell className="font-mono text-xs">{p.db_name}</TableCell>
                  <TableCell className="font-mono text-xs text-muted-foreground">{p.node_id}</TableCell>
                  <TableCell className="text-right text-xs text-muted-foreground" title={formatDateTime(p.created_at)}>
                    {formatRelative(p.created_at)}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}

      <CreateProjectDialog open={createOpen} onOpenChange={setCreateOpen} onCreated={onCreated} />

      {created && (
        <SecretDialog
          open={!!created}
          onOpenChange={(o) => !o && setCreated(null)}
          title={`Project ${created.name} is ready`}
          description={
            <>
              Project ID <code className="font-mono">{created.id}</code>, database{" "}
              <code className="font-mono">{created.db_name}</code>.
            </>
          }
          testId="project-keys-dialog"
          items={[
            { label: "Publishable key (browser-safe, minimal reads)", value: created.publishable_key, testId: "project-publishable-key" },
            { label: "Secret key (server side only)", value: created.secret_key, testId: "project-secret-key" },
          ]}
          footer={
            <Button
              variant="outline"
              data-testid="project-keys-open-project"
              onClick={() => {
                const id = created.id;
                setCreated(null);
                navigate(`/projects/${id}/overview`);
              }}
            >
              Open project
            </Button>
          }
        />
      )}
    </Page>
  );
}
