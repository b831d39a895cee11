import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { Ban, CheckCircle2, LogOut, MoreHorizontal, RefreshCw, Search, Trash2, Users } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
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
import { EmptyState, ErrorAlert, PageHeader, TableSkeleton } from "@/components/States";
import { CopyButton } from "@/components/CopyButton";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { StatusBadge } from "@/components/StatusBadge";
import { Pagination } from "@/components/Pagination";
import { useQuery } from "@/hooks/useQuery";
import { errorMessage, usersApi, type AuthUser } from "@/api";
import { formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

export default function AuthUsersPage() {
  const { projectId = "" } = useParams();
  const [searchInput, setSearchInput] = useState("");
  const [search, setSearch] = useState("");
  const [offset, setOffset] = useState(0);
  const [limit, setLimit] = useState(50);
  const [deleting, setDeleting] = useState<AuthUser | null>(null);

  useEffect(() => {
    const t = setTimeout(() => {
      setSearch(searchInput.trim());
      setOffset(0);
    }, 300);
    return () => clearTimeout(t);
  }, [searchInput]);

  const q = useQuery(() => usersApi.list(projectId, { search: search || undefined, limit, offset }), [projectId, search, limit, offset]);

  const act = async (label: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      toast.success(label);
      void q.reload();
    } catch (e) {
      toast.error(errorMessage(e));
    }
  };

  return (
    <Page>
      <PageHeader
        icon={Users}
        title="Auth users"
        description="End users of this project's apps (email and password sign-in through /v1/auth)."
        actions={
          <>
            <div className="relative">
              <Search className="absolute left-2 top-1/2 h-3.5 w-3.5 -translate-y-1/2 text-muted-foreground" />
              <Input
                className="h-8 w-64 pl-7"
                placeholder="Search by email or id"
                value={searchInput}
                onChange={(e) => setSearchInput(e.target.value)}
                data-testid="users-search"
              />
            </div>
            <Button variant="outline" size="icon" onClick={() => void q.reload()} aria-label="Refresh">
              <RefreshCw className={cn(q.loading && "animate-spin")} />
            </Button>
          </>
        }
      />
      {q.error && !q.data ? (
        <ErrorAlert error={q.error} title="Could not load users" onRetry={() => void q.reload()} />
      ) : q.initialLoading ? (
        <div className="rounded-lg border">
          <TableSkeleton rows={5} cols={5} />
        </div>
      ) : q.data && q.data.users.length === 0 ? (
        <EmptyState
          icon={Users}
          title={search ? "No user matches" : "No users yet"}
          description={
            search
              ? "Try another email or id."
              : "Users appear here once they sign up through your app with the public auth API (POST /v1/auth/signup)."
          }
          testId="users-empty"
        />
      ) : (
        <>
          <div className="overflow-hidden rounded-lg border">
            <Table data-testid="users-table">
              <TableHeader>
                <TableRow>
                  <TableHead>Email</TableHead>
                  <TableHead>User ID</TableHead>
                  <TableHead>Status</TableHead>
                  <TableHead>Created</TableHead>
                  <TableHead>Last sign-in</TableHead>
                  <TableHead className="w-10" />
                </TableRow>
              </TableHeader>
              <TableBody>
                {q.data?.users.map((u) => (
                  <TableRow
                    key={u.id}
                    data-testid="user-row"
                    data-user-id={u.id}
                    data-email={u.email}
                    data-status={u.disabled ? "disabled" : "active"}
                  >
                    <TableCell className="font-medium">{u.email}</TableCell>
                    <TableCell>
                      <span className="inline-flex items-center gap-1 font-mono text-xs text-muted-foreground">
                        {u.id.slice(0, 8)}…
                        <CopyButton value={u.id} label="Copy user ID" />
                      </span>
                    </TableCell>
                    <TableCell>
                      <StatusBadge status={u.disabled ? "disabled" : "active"} />
                    </TableCell>
                    <TableCell className="text-xs text-muted-foreground" title={formatDateTime(u.created_at)}>
                      {formatRelative(u.created_at)}
                    </TableCell>
                    <TableCell className="text-xs text-muted-foreground" title={formatDateTime(u.last_sign_in_at)}>
                      {u.last_sign_in_at ? formatRelative(u.last_sign_in_at) : "never"}
                    </TableCell>
                    <TableCell>
                      <DropdownMenu>
                        <DropdownMenuTrigger asChild>
                          <Button variant="ghost" size="icon-sm" aria-label="User actions" data-testid="user-actions">
                            <MoreHorizontal />
                          </Button>
                        </DropdownMenuTrigger>
                        <DropdownMenuContent align="end">
                          {u.disabled ? (
                            <DropdownMenuItem
                              onSelect={() => void act("User enabled", () => usersApi.enable(projectId, u.id))}
                              data-testid="user-enable"
                            >
                              <CheckCircle2 /> Enable
                            </DropdownMenuItem>
                          ) : (
                            <DropdownMenuItem
                              onSelect={() => void act("User disabled", () => usersApi.disable(projectId, u.id))}
                              data-testid="user-disable"
                            >
                              <Ban /> Disable
                            </DropdownMenuItem>
                          )}
                          <DropdownMenuItem
                            onSelect={() => void act("Sessions revoked", () => usersApi.revokeSessions(projectId, u.id))}
                            data-testid="user-revoke-sessions"
                          >
                            <LogOut /> Revoke sessions
                          </DropdownMenuItem>
                          <DropdownMenuSeparator />
                          <DropdownMenuItem destructive onSelect={() => setDeleting(u)} data-testid="user-delete">
                            <Trash2 /> Delete…
                          </DropdownMenuItem>
                        </DropdownMenuContent>
                      </DropdownMenu>
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </div>
          <div className="mt-3 flex justify-end">
            <Pagination
              offset={offset}
              limit={limit}
              total={q.data?.total}
              pageRows={q.data?.users.length ?? 0}
              onChange={(o, l) => {
                setOffset(o);
                setLimit(l);
              }}
              testId="users-pagination"
            />
          </div>
        </>
      )}
      <ConfirmDialog
        open={!!deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        title="Delete user"
        description={
          <>
            <b>{deleting?.email}</b> and their sessions are deleted. Rows in your tables that reference this user are
            not touched.
          </>
        }
        confirmText={deleting?.email}
        actionLabel="Delete user"
        testId="delete-user-dialog"
        onConfirm={async () => {
          await usersApi.remove(projectId, deleting!.id);
          toast.success("User deleted");
          void q.reload();
        }}
      />
    </Page>
  );
}
