import { ChevronLeft, ChevronRight } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { formatNumber } from "@/lib/format";

export function Pagination({
  offset,
  limit,
  total,
  pageRows,
  onChange,
  pageSizes = [25, 50, 100, 250],
  testId = "pagination",
}: {
  offset: number;
  limit: number;
  total: number | null | undefined;
  /** Rows on the current page (used when total is unknown). */
  pageRows: number;
  onChange: (offset: number, limit: number) => void;
  pageSizes?: number[];
  testId?: string;
}) {
  const from = pageRows === 0 ? 0 : offset + 1;
  const to = offset + pageRows;
  const hasNext = total !== null && total !== undefined ? to < total : pageRows >= limit;
  return (
    <div className="flex items-center gap-2 text-xs text-muted-foreground" data-testid={testId}>
      <span className="tabular" data-testid={`${testId}-range`}>
        {formatNumber(from)}–{formatNumber(to)}
        {total !== null && total !== undefined ? ` of ${formatNumber(total)}` : ""}
      </span>
      <Select value={String(limit)} onValueChange={(v) => onChange(0, Number(v))}>
        <SelectTrigger className="h-7 w-[104px] text-xs" aria-label="Rows per page">
          <SelectValue />
        </SelectTrigger>
        <SelectContent>
          {pageSizes.map((s) => (
            <SelectItem key={s} value={String(s)} className="text-xs">
              {s} / page
            </SelectItem>
          ))}
        </SelectContent>
      </Select>
      <Button
        variant="outline"
        size="icon-sm"
        className="h-7 w-7"
        disabled={offset === 0}
        onClick={() => onChange(Math.max(0, offset - limit), limit)}
        aria-label="Previous page"
        data-testid={`${testId}-prev`}
      >
        <ChevronLeft />
      </Button>
      <Button
        variant="outline"
        size="icon-sm"
        className="h-7 w-7"
        disabled={!hasNext}
        onClick={() => onChange(offset + limit, limit)}
        aria-label="Next page"
        data-testid={`${testId}-next`}
      >
        <ChevronRight />
      </Button>
    </div>
  );
}
