import { useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { ClipboardCopy, Download, RefreshCw, Search, Table2, TerminalSquare } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Skeleton } from "@/components/ui/skeleton";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { toast } from "@/components/ui/sonner";
import { DataGrid, copyGrid, type GridSort } from "@/components/DataGrid";
import { Pagination } from "@/components/Pagination";
import { EmptyState, ErrorAlert, TableSkeleton } from "@/components/States";
import { useQuery } from "@/hooks/useQuery";
import { downloadFromApi, errorMessage, tablesApi, type TableInfo } from "@/api";
import { formatNumber } from "@/lib/format";
import { cn } from "@/lib/utils";

function TableList({
  projectId,
  tables,
  loading,
  error,
  reload,
  current,
  currentSchema,
}: {
  projectId: string;
  tables: TableInfo[] | undefined;
  loading: boolean;
  error: unknown;
  reload: () => void;
  current?: string;
  currentSchema: string;
}) {
  const [filter, setFilter] = useState("");
  const shown = useMemo(
    () => (tables ?? []).filter((t) => t.name.toLowerCase().includes(filter.toLowerCase())),
    [tables, filter],
  );
  const schemas = Array.from(new Set(shown.map((t) => t.schema)));
  return (
    <div className="flex w-60 shrink-0 flex-col border-r">
      <div className="flex items-center gap-1 border-b p-2">
        <div className="relative flex-1">
          <Search className="absolute left-2 top-1/2 h-3.5 w-3.5 -translate-y-1/2 text-muted-foreground" />
          <Input
            placeholder="Search tables"
            className="h-7 pl-7 text-xs"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            data-testid="tables-search"
          />
        </div>
        <Button variant="ghost" size="icon-sm" onClick={reload} aria-label="Reload tables" data-testid="tables-reload">
          <RefreshCw className={cn(loading && "animate-spin")} />
        </Button>
      </div>
      <div className="flex-1 overflow-y-auto p-1.5 scrollbar-thin" data-testid="tables-list">
        {error && !tables ? (
          <ErrorAlert error={error} title="Could not load tables" onRetry={reload} />
        ) : loading && !tables ? (
          <div className="space-y-1.5 p-1">
            {Array.from({ length: 6 }).map((_, i) => (
              <Skeleton key={i} className="h-6" />
            ))}
          </div>
        ) : shown.length === 0 ? (
          <div className="p-3 text-xs text-muted-foreground">
            {filter ? "No table matches." : "No tables yet. Create one in the SQL editor."}
          </div>
        ) : (
          schemas.map((schema) => (
            <div key={schema} className="mb-2">
              <div className="px-2 py-1 text-2xs font-medium uppercase tracking-wide text-muted-foreground">{schema}</div>
              {shown
                .filter((t) => t.schema === schema)
                .map((t) => {
                  const active = t.name === current && t.schema === currentSchema;
                  return (
                    <Link
                      key={`${t.schema}.${t.name}`}
                      to={`/projects/${projectId}/tables/${encodeURIComponent(t.name)}${
                        t.schema !== "public" ? `?schema=${encodeURIComponent(t.schema)}` : ""
                      }`}
                      className={cn(
                        "flex h-7 items-center gap-2 rounded-md px-2 text-[13px] hover:bg-accent",
                        active && "bg-accent font-medium",
                      )}
                      data-testid="table-item"
                      data-table-name={t.name}
                    >
                      <Table2 className="h-3.5 w-3.5 shrink-0 text-muted-foreground" />
                      <span className="truncate">{t.name}</span>
                      {t.kind && t.kind !== "table" && t.kind !== "r" && (
                        <span className="text-2xs text-muted-foreground">{t.kind}</span>
                      )}
                      <span className="ml-auto text-2xs tabular text-muted-foreground">
                        {t.estimated_rows !== null && t.estimated_rows >= 0 ? formatNumber(t.estimated_rows) : ""}
                      </span>
                    </Link>
                  );
                })}
            </div>
          ))
        )}
      </div>
    </div>
  );
}

export default function TableBrowserPage() {
  const { projectId = "", table } = useParams();
  const [params, setParams] = useSearchParams();
  const schema = params.get("schema") ?? "public";
  const offset = Math.max(0, Number(params.get("offset") ?? 0) || 0);
  const limit = Math.min(1000, Math.max(1, Number(params.get("limit") ?? 50) || 50));
  const orderParam = params.get("order");
  const sort: GridSort | null = useMemo(() => {
    if (!orderParam) return null;
    const i = orderParam.lastIndexOf(".");
    const dir = orderParam.slice(i + 1);
    return i > 0 && (dir === "asc" || dir === "desc") ? { column: orderParam.slice(0, i), dir } : null;
  }, [orderParam]);

  const tablesQ = useQuery(() => tablesApi.list(projectId), [projectId]);
  const rowsQ = useQuery(
    (signal) => tablesApi.rows(projectId, table!, { schema, limit, offset, order: sort }, signal),
    [projectId, table, schema, limit, offset, orderParam],
    !!table,
  );

  const update = (patch: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) next.delete(k);
      else next.set(k, v);
    }
    setParams(next, { replace: false });
  };

  const exportAs = async (format: "csv" | "json") => {
    try {
      await downloadFromApi(tablesApi.exportPath(projectId, table!), { format, schema }, `${table}.${format}`);
    } catch (e) {
      toast.error(errorMessage(e));
    }
  };

  return (
    <div className="flex h-full min-h-0">
      <TableList
        projectId={projectId}
        tables={tablesQ.data}
        loading={tablesQ.loading}
        error={tablesQ.error}
        reload={() => void tablesQ.reload()}
        current={table}
        currentSchema={schema}
      />
      <div className="flex min-w-0 flex-1 flex-col">
        {!table ? (
          <div className="p-5">
            <EmptyState
              icon={Table2}
              title="Select a table"
              description={
                tablesQ.data && tablesQ.data.length === 0
                  ? "This project has no tables yet. Create one with SQL."
                  : "Pick a table on the left to browse its rows."
              }
              action={
                tablesQ.data && tablesQ.data.length === 0 ? (
                  <Button asChild size="sm">
                    <Link to={`/projects/${projectId}/sql`}>
                      <TerminalSquare /> Open the SQL editor
                    </Link>
                  </Button>
                ) : undefined
              }
            />
          </div>
        ) : (
          <>
            <div className="flex h-11 shrink-0 items-center gap-2 border-b px-3">
              <Table2 className="h-4 w-4 text-muted-foreground" />
              <span className="text-sm font-medium" data-testid="table-title">
                {schema !== "public" ? `${schema}.` : ""}
                {table}
              </span>
              {sort && (
                <button
                  className="rounded bg-muted px-1.5 py-0.5 text-2xs text-muted-foreground hover:text-foreground"
                  onClick={() => update({ order: null, offset: null })}
                  title="Clear sort"
                >
                  sorted by {sort.column} {sort.dir} ×
                </button>
              )}
              <div className="ml-auto flex items-center gap-1.5">
                <Button
                  variant="ghost"
                  size="sm"
                  onClick={() => rowsQ.data && void copyGrid(rowsQ.data.columns, rowsQ.data.rows)}
                  disabled={!rowsQ.data?.rows.length}
                  data-testid="table-copy-page"
                >
                  <ClipboardCopy /> Copy page
                </Button>
                <DropdownMenu>
                  <DropdownMenuTrigger asChild>
                    <Button variant="outline" size="sm" data-testid="table-export">
                      <Download /> Export
                    </Button>
                  </DropdownMenuTrigger>
                  <DropdownMenuContent align="end">
                    <DropdownMenuItem onSelect={() => void exportAs("csv")}>CSV</DropdownMenuItem>
                    <DropdownMenuItem onSelect={() => void exportAs("json")}>JSON</DropdownMenuItem>
                  </DropdownMenuContent>
                </DropdownMenu>
                <Button
                  variant="outline"
                  size="icon"
                  className="h-7 w-7"
                  onClick={() => void rowsQ.reload()}
                  aria-label="Refresh rows"
                  data-testid="table-refresh"
                >
                  <RefreshCw className={cn(rowsQ.loading && "animate-spin")} />
                </Button>
              </div>
            </div>
            <div className="relative flex min-h-0 flex-1 flex-col">
              {rowsQ.error ? (
                <div className="p-4">
                  <ErrorAlert error={rowsQ.error} title="Could not load rows" onRetry={() => void rowsQ.reload()} />
                </div>
              ) : rowsQ.initialLoading ? (
                <TableSkeleton rows={10} cols={5} />
              ) : rowsQ.data ? (
                <DataGrid
                  className={cn("flex-1", rowsQ.loading && "opacity-60")}
                  columns={rowsQ.data.columns}
                  rows={rowsQ.data.rows}
                  rowOffset={offset}
                  sort={sort}
                  onSortChange={(s) => update({ order: s ? `${s.column}.${s.dir}` : null, offset: null })}
                  testId="table-grid"
                  empty={
                    <EmptyState
                      className="m-4"
                      title={offset > 0 ? "No more rows" : "This table is empty"}
                      description={
                        offset > 0 ? "Go back a page." : "Insert rows with SQL, the public API, or an import."
                      }
                      action={
                        offset === 0 ? (
                          <Button asChild size="sm" variant="outline">
                            <Link to={`/projects/${projectId}/database`}>Import data</Link>
                          </Button>
                        ) : undefined
                      }
                      testId="table-empty"
                    />
                  }
                />
              ) : null}
            </div>
            <div className="flex h-10 shrink-0 items-center justify-between border-t px-3">
              <span className="text-2xs text-muted-foreground">
                Click a cell and press Ctrl/⌘+C to copy it; hover for the copy button.
              </span>
              <Pagination
                offset={offset}
                limit={limit}
                total={rowsQ.data?.total}
                pageRows={rowsQ.data?.rows.length ?? 0}
                onChange={(o, l) => update({ offset: o ? String(o) : null, limit: l !== 50 ? String(l) : null })}
                testId="table-pagination"
              />
            </div>
          </>
        )}
      </div>
    </div>
  );
}
