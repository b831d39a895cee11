import { memo, useCallback, useState } from "react";
import { ArrowDown, ArrowUp, ArrowUpDown, Check, Copy } from "lucide-react";
import { SimpleTooltip } from "@/components/ui/tooltip";
import { toast } from "@/components/ui/sonner";
import { copyText } from "@/lib/clipboard";
import { DEFAULT_CELL_MAX, formatCell, isNumericType, rowsToTsv } from "@/lib/cells";
import { cn } from "@/lib/utils";
import type { Column } from "@/api/types";

export interface GridSort {
  column: string;
  dir: "asc" | "desc";
}

interface DataGridProps {
  columns: Column[];
  rows: unknown[][];
  sort?: GridSort | null;
  onSortChange?: (s: GridSort | null) => void;
  /** Row number offset for the "#" column (pagination). */
  rowOffset?: number;
  maxCellChars?: number;
  testId?: string;
  className?: string;
  empty?: React.ReactNode;
}

/** Dense result grid: sticky header, column truncation with a tooltip of the full
 * value, copy of a cell (hover button, or select + Ctrl/Cmd+C), sortable headers. */
export function DataGrid({
  columns,
  rows,
  sort,
  onSortChange,
  rowOffset = 0,
  maxCellChars = DEFAULT_CELL_MAX,
  testId = "data-grid",
  className,
  empty,
}: DataGridProps) {
  const [selected, setSelected] = useState<[number, number] | null>(null);

  const onKeyDown = useCallback(
    async (e: React.KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "c") return;
      if (window.getSelection()?.toString()) return; // let a text selection copy normally
      if (!selected) return;
      e.preventDefault();
      const v = formatCell(rows[selected[0]]?.[selected[1]]);
      if (await copyText(v.full)) toast.success("Cell copied");
    },
    [selected, rows],
  );

  const cycleSort = (name: string) => {
    if (!onSortChange) return;
    if (!sort || sort.column !== name) onSortChange({ column: name, dir: "asc" });
    else if (sort.dir === "asc") onSortChange({ column: name, dir: "desc" });
    else onSortChange(null);
  };

  return (
    <div
      className={cn("relative min-h-0 overflow-auto scrollbar-thin focus:outline-none", className)}
      tabIndex={0}
      onKeyDown={onKeyDown}
      data-testid={testId}
      data-row-count={rows.length}
    >
      <table className="w-max border-separate border-spacing-0 font-mono text-xs">
        <thead>
          <tr>
            <th className="sticky left-0 top-0 z-20 h-8 w-10 border-b border-r bg-muted px-2 text-right text-2xs font-normal text-muted-foreground">
              #
            </th>
            {columns.map((c) => {
              const active = sort?.column === c.name;
              return (
                <th
                  key={c.name}
                  scope="col"
                  className="sticky top-0 z-10 h-8 max-w-[22rem] border-b border-r bg-muted px-0 text-left font-sans font-medium"
                  aria-sort={active ? (sort!.dir === "asc" ? "ascending" : "descending") : undefined}
                  data-testid={`${testId}-header`}
                  data-column={c.name}
                >
                  <button
                    type="button"
                    disabled={!onSortChange}
                    onClick={() => cycleSort(c.name)}
                    className="group flex h-8 w-full items-center gap-1.5 px-2.5 text-left disabled:cursor-default"
                    title={onSortChange ? `Sort by ${c.name}` : undefined}
                  >
                    <span className="truncate text-xs text-foreground">{c.name}</span>
                    <span className="shrink-0 text-2xs font-normal text-muted-foreground">{c.type}</span>
                    {onSortChange && (
                      <span className={cn("ml-auto shrink-0", active ? "text-primary" : "opacity-0 group-hover:opacity-60")}>
                        {active ? (
                          sort!.dir === "asc" ? (
                            <ArrowUp className="h-3 w-3" />
                          ) : (
                            <ArrowDown className="h-3 w-3" />
                          )
                        ) : (
                          <ArrowUpDown className="h-3 w-3" />
                        )}
                      </span>
                    )}
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, r) => (
            <tr key={r} className="group/row hover:bg-muted/30" data-testid={`${testId}-row`}>
              <td className="sticky left-0 z-[1] h-7 border-b border-r bg-background px-2 text-right text-2xs text-muted-foreground tabular group-hover/row:bg-muted/60">
                {rowOffset + r + 1}
              </td>
              {columns.map((c, ci) => (
                <GridCell
                  key={c.name}
                  value={row[ci]}
                  numeric={isNumericType(c.type)}
                  maxChars={maxCellChars}
                  selected={!!selected && selected[0] === r && selected[1] === ci}
                  onSelect={() => setSelected([r, ci])}
                  testId={`${testId}-cell`}
                />
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && (empty ?? <div className="p-6 text-center text-xs text-muted-foreground">No rows</div>)}
    </div>
  );
}

const GridCell = memo(function GridCell({
  value,
  numeric,
  maxChars,
  selected,
  onSelect,
  testId,
}: {
  value: unknown;
  numeric: boolean;
  maxChars: number;
  selected: boolean;
  onSelect: () => void;
  testId: string;
}) {
  const cell = formatCell(value, maxChars);
  const [copied, setCopied] = useState(false);
  const copy = async (e: React.MouseEvent) => {
    e.stopPropagation();
    if (await copyText(cell.full)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 1200);
    }
  };
  const content = (
    <span
      className={cn(
        "block truncate",
        cell.isNull && "italic text-muted-foreground/70",
        cell.kind === "boolean" && "text-primary",
        cell.kind === "json" && "text-sky-600 dark:text-sky-300",
      )}
    >
      {cell.text}
    </span>
  );
  return (
    <td
      onClick={onSelect}
      className={cn(
        "group/cell relative h-7 max-w-[22rem] border-b border-r px-2.5 align-middle",
        numeric && "text-right tabular",
        selected && "outline outline-1 -outline-offset-1 outline-primary",
      )}
      data-testid={testId}
      data-null={cell.isNull || undefined}
      data-truncated={cell.truncated || undefined}
    >
      {cell.truncated ? (
        <SimpleTooltip content={<pre className="max-h-64 overflow-auto whitespace-pre-wrap font-mono">{cell.full}</pre>}>
          {content}
        </SimpleTooltip>
      ) : (
        content
      )}
      {!cell.isNull && (
        <button
          type="button"
          onClick={copy}
          aria-label="Copy cell"
          data-testid="copy-cell"
          className="absolute right-0.5 top-1/2 hidden -translate-y-1/2 rounded border bg-popover p-0.5 text-muted-foreground shadow-sm hover:text-foreground group-hover/cell:block"
        >
          {copied ? <Check className="h-3 w-3 text-success" /> : <Copy className="h-3 w-3" />}
        </button>
      )}
    </td>
  );
});

/** Copy the whole grid as TSV (paste into a spreadsheet). */
export async function copyGrid(columns: Column[], rows: unknown[][]) {
  const ok = await copyText(rowsToTsv(columns.map((c) => c.name), rows));
  if (ok) toast.success(`Copied ${rows.length} row${rows.length === 1 ? "" : "s"}`);
  else toast.error("Could not copy to the clipboard");
}
