import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import {
  ChevronRight,
  Download,
  File as FileIcon,
  Folder,
  FolderOpen,
  Loader2,
  MoreHorizontal,
  Plus,
  RefreshCw,
  Trash2,
  Upload,
  X,
} from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Progress } from "@/components/ui/progress";
import { Skeleton } from "@/components/ui/skeleton";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { toast } from "@/components/ui/sonner";
import { EmptyState, ErrorAlert, TableSkeleton } from "@/components/States";
import { CopyButton } from "@/components/CopyButton";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { FormError } from "@/components/FormParts";
import { useQuery } from "@/hooks/useQuery";
import { downloadSignedUrl, errorMessage, storageApi, type StorageObject } from "@/api";
import { formatBytes, formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";
import { splitListing } from "@/lib/storagePaths";

interface UploadItem {
  id: number;
  name: string;
  size: number;
  percent: number;
  state: "uploading" | "done" | "error";
  error?: string;
  abort: AbortController;
}

function CreateBucketDialog({
  open,
  onOpenChange,
  projectId,
  onCreated,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  projectId: string;
  onCreated: (name: string) => void;
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
      await storageApi.createBucket(projectId, name.trim());
      onCreated(name.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent data-testid="create-bucket-dialog">
        <form onSubmit={submit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle>New bucket</DialogTitle>
            <DialogDescription>Buckets are private: objects are reached only through signed URLs.</DialogDescription>
          </DialogHeader>
          <div className="grid gap-1.5">
            <Label htmlFor="bucket-name">Name</Label>
            <Input
              id="bucket-name"
              autoFocus
              required
              pattern="[a-z0-9][a-z0-9._\-]{1,62}"
              title="Lowercase letters, digits, dots, dashes and underscores"
              placeholder="avatars"
              value={name}
              onChange={(e) => setName(e.target.value)}
              data-testid="create-bucket-name"
            />
          </div>
          <FormError error={error} />
          <DialogFooter>
            <Button type="button" variant="outline" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" loading={busy} disabled={!name.trim()} data-testid="create-bucket-submit">
              Create bucket
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

export default function StoragePage() {
  const { projectId = "", bucket } = useParams();
  const [params, setParams] = useSearchParams();
  const prefix = params.get("prefix") ?? "";
  const navigate = useNavigate();
  const bucketsQ = useQuery(() => storageApi.buckets(projectId), [projectId]);
  const [createOpen, setCreateOpen] = useState(false);
  const [deleteBucket, setDeleteBucket] = useState<string | null>(null);
  const [deleteObject, setDeleteObject] = useState<string | null>(null);
  const [objects, setObjects] = useState<StorageObject[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [objLoading, setObjLoading] = useState(false);
  const [objError, setObjError] = useState<unknown>(null);
  const [uploads, setUploads] = useState<UploadItem[]>([]);
  const fileRef = useRef<HTMLInputElement>(null);
  const uploadSeq = useRef(0);
  const loadSeq = useRef(0);

  // Open the first bucket when none is selected.
  useEffect(() => {
    if (!bucket && bucketsQ.data && bucketsQ.data.length > 0) {
      navigate(`/projects/${projectId}/storage/${encodeURIComponent(bucketsQ.data[0].name)}`, { replace: true });
    }
  }, [bucket, bucketsQ.data, navigate, projectId]);

  const loadObjects = async (reset: boolean) => {
    if (!bucket) return;
    const my = ++loadSeq.current;
    setObjLoading(true);
    setObjError(null);
    try {
      const r = await storageApi.objects(projectId, bucket, { prefix, cursor: reset ? null : cursor, limit: 200 });
      if (my !== loadSeq.current) return;
      setObjects((prev) => (reset ? r.objects : [...prev, ...r.objects]));
      setCursor(r.next_cursor);
    } catch (e) {
      if (my === loadSeq.current) setObjError(e);
    } finally {
      if (my === loadSeq.current) setObjLoading(false);
    }
  };

  useEffect(() => {
    setObjects([]);
    setCursor(null);
    void loadObjects(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [projectId, bucket, prefix]);

  const { folders, files } = useMemo(() => splitListing(objects, prefix), [objects, prefix]);

  const setPrefix = (p: string) => {
    const next = new URLSearchParams(params);
    if (p) next.set("prefix", p);
    else next.delete("prefix");
    setParams(next);
  };

  const startUpload = async (fileList: FileList | null) => {
    if (!fileList || !bucket) return;
    const list = Array.from(fileList);
    for (const file of list) {
      const id = ++uploadSeq.current;
      const abort = new AbortController();
      setUploads((u) => [...u, { id, name: file.name, size: file.size, percent: 0, state: "uploading", abort }]);
      const patch = (p: Partial<UploadItem>) => setUploads((u) => u.map((x) => (x.id === id ? { ...x, ...p } : x)));
      try {
        await storageApi.upload(projectId, bucket, prefix + file.name, file, (p) => patch({ percent: p.percent }), abort.signal);
        patch({ percent: 100, state: "done" });
        toast.success(`Uploaded ${file.name}`);
      } catch (e) {
        patch({ state: "error", error: errorMessage(e) });
        toast.error(`Upload of ${file.name} failed: ${errorMessage(e)}`);
      }
    }
    if (fileRef.current) fileRef.current.value = "";
    void loadObjects(true);
    void bucketsQ.reload();
  };

  const download = async (key: string, size?: number | null) => {
    try {
      const r = await storageApi.downloadUrl(projectId, bucket!, key);
      await downloadSignedUrl(r.downloadUrl, key.split("/").pop(), size);
    } catch (e) {
      toast.error(errorMessage(e));
    }
  };

  const crumbs = prefix.split("/").filter(Boolean);

  return (
    <div className="flex h-full min-h-0">
      <div className="flex w-56 shrink-0 flex-col border-r">
        <div className="flex h-11 items-center justify-between border-b px-3">
          <span className="text-xs font-medium">Buckets</span>
          <Button variant="ghost" size="icon-sm" onClick={() => setCreateOpen(true)} aria-label="New bucket" data-testid="create-bucket-button">
            <Plus />
          </Button>
        </div>
        <div className="flex-1 overflow-y-auto p-1.5" data-testid="buckets-list">
          {bucketsQ.error && !bucketsQ.data ? (
            <ErrorAlert error={bucketsQ.error} title="Could not load buckets" onRetry={() => void bucketsQ.reload()} />
          ) : bucketsQ.initialLoading ? (
            <div className="space-y-1.5 p-1">
              {Array.from({ length: 3 }).map((_, i) => (
                <Skeleton key={i} className="h-6" />
              ))}
            </div>
          ) : bucketsQ.data?.length === 0 ? (
            <p className="p-2 text-xs text-muted-foreground">No buckets yet.</p>
          ) : (
            bucketsQ.data?.map((b) => (
              <Link
                key={b.name}
                to={`/projects/${projectId}/storage/${encodeURIComponent(b.name)}`}
                className={cn(
                  "group flex h-7 items-center gap-2 rounded-md px-2 text-[13px] hover:bg-accent",
                  b.name === bucket && "bg-accent font-medium",
                )}
                data-testid="bucket-item"
                data-bucket={b.name}
              >
                {b.name === bucket ? (
                  <FolderOpen className="h-3.5 w-3.5 text-primary" />
                ) : (
                  <Folder className="h-3.5 w-3.5 text-muted-foreground" />
                )}
                <span className="truncate">{b.name}</span>
                {b.object_count !== undefined && (
                  <span className="ml-auto text-2xs text-muted-foreground tabular">{b.object_count}</span>
                )}
              </Link>
            ))
          )}
        </div>
      </div>

      <div className="flex min-w-0 flex-1 flex-col">
        {!bucket ? (
          <div className="p-5">
            {bucketsQ.data?.length === 0 ? (
              <EmptyState
                icon={FolderOpen}
                title="No buckets"
                description="Create a bucket to store files. Apps upload and download through signed URLs."
                action={
                  <Button size="sm" onClick={() => setCreateOpen(true)} data-testid="create-bucket-empty">
                    <Plus /> New bucket
                  </Button>
                }
              />
            ) : (
              <TableSkeleton rows={4} cols={4} />
            )}
          </div>
        ) : (
          <>
            <div className="flex h-11 shrink-0 items-center gap-2 border-b px-3">
              <nav className="flex min-w-0 items-center gap-1 text-sm" aria-label="Path">
                <button className="font-medium hover:underline" onClick={() => setPrefix("")}>
                  {bucket}
                </button>
                {crumbs.map((c, i) => (
                  <span key={i} className="flex items-center gap-1">
                    <ChevronRight className="h-3.5 w-3.5 text-muted-foreground" />
                    <button
                      className="truncate hover:underline"
                      onClick={() => setPrefix(crumbs.slice(0, i + 1).join("/") + "/")}
                    >
                      {c}
                    </button>
                  </span>
                ))}
              </nav>
              <div className="ml-auto flex items-center gap-1.5">
                <Button variant="outline" size="icon" className="h-7 w-7" onClick={() => void loadObjects(true)} aria-label="Refresh">
                  <RefreshCw className={cn(objLoading && "animate-spin")} />
                </Button>
                <DropdownMenu>
                  <DropdownMenuTrigger asChild>
                    <Button variant="outline" size="icon" className="h-7 w-7" aria-label="Bucket actions" data-testid="bucket-actions">
                      <MoreHorizontal />
                    </Button>
                  </DropdownMenuTrigger>
                  <DropdownMenuContent align="end">
                    <DropdownMenuItem destructive onSelect={() => setDeleteBucket(bucket)} data-testid="delete-bucket">
                      <Trash2 /> Delete bucket…
                    </DropdownMenuItem>
                  </DropdownMenuContent>
                </DropdownMenu>
                <input
                  ref={fileRef}
                  type="file"
                  multiple
                  className="sr-only"
                  onChange={(e) => void startUpload(e.target.files)}
                  data-testid="storage-upload-input"
                />
                <Button size="sm" onClick={() => fileRef.current?.click()} data-testid="storage-upload-button">
                  <Upload /> Upload
                </Button>
              </div>
            </div>

            {uploads.length > 0 && (
              <div className="space-y-2 border-b bg-muted/20 px-3 py-2" data-testid="storage-uploads">
                {uploads.map((u) => (
                  <div key={u.id} className="flex items-center gap-3 text-xs" data-testid="storage-upload-progress" data-state={u.state}>
                    {u.state === "uploading" ? (
                      <Loader2 className="h-3.5 w-3.5 shrink-0 animate-spin text-primary" />
                    ) : (
                      <FileIcon className={cn("h-3.5 w-3.5 shrink-0", u.state === "error" ? "text-destructive" : "text-success")} />
                    )}
                    <span className="w-48 truncate" title={u.name}>
                      {u.name}
                    </span>
                    <Progress
                      value={u.percent}
                      className="flex-1"
                      indicatorClassName={cn(u.state === "error" && "bg-destructive", u.state === "done" && "bg-success")}
                      data-testid="storage-upload-progress-bar"
                      aria-label={`Upload ${u.name}`}
                    />
                    <span className="w-28 text-right tabular text-muted-foreground" data-testid="storage-upload-percent">
                      {u.state === "error" ? (
                        <span className="text-destructive" title={u.error}>
                          failed
                        </span>
                      ) : (
                        `${Math.round(u.percent)}% of ${formatBytes(u.size)}`
                      )}
                    </span>
                    {u.state === "uploading" ? (
                      <Button variant="ghost" size="icon-sm" onClick={() => u.abort.abort()} aria-label="Cancel upload">
                        <X />
                      </Button>
                    ) : (
                      <Button
                        variant="ghost"
                        size="icon-sm"
                        onClick={() => setUploads((all) => all.filter((x) => x.id !== u.id))}
                        aria-label="Dismiss"
                      >
                        <X />
                      </Button>
                    )}
                  </div>
                ))}
              </div>
            )}

            <div className="min-h-0 flex-1 overflow-auto">
              {objError && objects.length === 0 ? (
                <div className="p-4">
                  <ErrorAlert error={objError} title="Could not list objects" onRetry={() => void loadObjects(true)} />
                </div>
              ) : objLoading && objects.length === 0 ? (
                <TableSkeleton rows={6} cols={4} />
              ) : folders.length === 0 && files.length === 0 ? (
                <EmptyState
                  className="m-4"
                  icon={Upload}
                  title={prefix ? "This folder is empty" : "This bucket is empty"}
                  description="Upload files here; apps can upload with signed URLs from the public storage API."
                  action={
                    <Button size="sm" onClick={() => fileRef.current?.click()}>
                      <Upload /> Upload files
                    </Button>
                  }
                  testId="storage-empty"
                />
              ) : (
                <Table data-testid="storage-objects">
                  <TableHeader>
                    <TableRow>
                      <TableHead>Name</TableHead>
                      <TableHead className="w-28 text-right">Size</TableHead>
                      <TableHead className="w-48">Type</TableHead>
                      <TableHead className="w-40">Modified</TableHead>
                      <TableHead className="w-24" />
                    </TableRow>
                  </TableHeader>
                  <TableBody>
                    {folders.map((f) => (
                      <TableRow key={f} className="cursor-pointer" onClick={() => setPrefix(prefix + f)} data-testid="storage-folder-row">
                        <TableCell className="flex items-center gap-2">
                          <Folder className="h-3.5 w-3.5 text-muted-foreground" /> {f}
                        </TableCell>
                        <TableCell />
                        <TableCell />
                        <TableCell />
                        <TableCell />
                      </TableRow>
                    ))}
                    {files.map((o) => (
                      <TableRow key={o.key} data-testid="storage-object-row" data-key={o.key}>
                        <TableCell className="max-w-0">
                          <span className="flex items-center gap-2">
                            <FileIcon className="h-3.5 w-3.5 shrink-0 text-muted-foreground" />
                            <span className="truncate" title={o.key}>
                              {o.key.slice(prefix.length)}
                            </span>
                          </span>
                        </TableCell>
                        <TableCell className="text-right text-xs tabular">{formatBytes(o.size)}</TableCell>
                        <TableCell className="truncate text-xs text-muted-foreground">{o.content_type ?? "—"}</TableCell>
                        <TableCell className="text-xs text-muted-foreground" title={formatDateTime(o.last_modified)}>
                          {formatRelative(o.last_modified)}
                        </TableCell>
                        <TableCell>
                          <div className="flex items-center justify-end gap-0.5">
                            <CopyButton value={o.key} label="Copy object key" />
                            <Button
                              variant="ghost"
                              size="icon-sm"
                              onClick={() => void download(o.key, o.size)}
                              aria-label="Download"
                              data-testid="storage-download"
                            >
                              <Download />
                            </Button>
                            <DropdownMenu>
                              <DropdownMenuTrigger asChild>
                                <Button variant="ghost" size="icon-sm" aria-label="Object actions" data-testid="storage-object-actions">
                                  <MoreHorizontal />
                                </Button>
                              </DropdownMenuTrigger>
                              <DropdownMenuContent align="end">
                                <DropdownMenuItem onSelect={() => void download(o.key, o.size)}>
                                  <Download /> Download
                                </DropdownMenuItem>
                                <DropdownMenuSeparator />
                                <DropdownMenuItem destructive onSelect={() => setDeleteObject(o.key)} data-testid="storage-delete">
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
              )}
              {cursor && (
                <div className="flex justify-center p-3">
                  <Button variant="outline" size="sm" onClick={() => void loadObjects(false)} loading={objLoading}>
                    Load more
                  </Button>
                </div>
              )}
            </div>
          </>
        )}
      </div>

      <CreateBucketDialog
        open={createOpen}
        onOpenChange={setCreateOpen}
        projectId={projectId}
        onCreated={(name) => {
          setCreateOpen(false);
          toast.success(`Bucket ${name} created`);
          void bucketsQ.reload();
          navigate(`/projects/${projectId}/storage/${encodeURIComponent(name)}`);
        }}
      />
      <ConfirmDialog
        open={!!deleteBucket}
        onOpenChange={(o) => !o && setDeleteBucket(null)}
        title="Delete bucket"
        description="The bucket and every object in it are deleted."
        confirmText={deleteBucket ?? ""}
        actionLabel="Delete bucket"
        testId="delete-bucket-dialog"
        onConfirm={async () => {
          await storageApi.deleteBucket(projectId, deleteBucket!, deleteBucket!);
          toast.success(`Bucket ${deleteBucket} deleted`);
          await bucketsQ.reload();
          navigate(`/projects/${projectId}/storage`);
        }}
      />
      <ConfirmDialog
        open={!!deleteObject}
        onOpenChange={(o) => !o && setDeleteObject(null)}
        title="Delete object"
        description={
          <>
            <code className="break-all font-mono">{deleteObject}</code> is deleted permanently.
          </>
        }
        actionLabel="Delete"
        testId="delete-object-dialog"
        onConfirm={async () => {
          await storageApi.deleteObject(projectId, bucket!, deleteObject!);
          toast.success("Object deleted");
          setObjects((all) => all.filter((o) => o.key !== deleteObject));
        }}
      />
    </div>
  );
}
