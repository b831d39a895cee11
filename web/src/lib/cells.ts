/** Display and copy helpers for grid cells (SQL results, table browser). */

export const DEFAULT_CELL_MAX = 120;

export interface CellDisplay {
  /** Text shown in the cell (possibly truncated). */
  text: string;
  /** Full text: shown in the tooltip, and what "copy" puts on the clipboard. */
  full: string;
  truncated: boolean;
  isNull: boolean;
  kind: "null" | "boolean" | "number" | "json" | "string";
}

/** Text that is copied for a cell value. NULL copies as an empty string
 * (the grid shows a "NULL" marker, which is not data). */
export function cellToText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** Truncate on a code-point boundary and append an ellipsis. */
export function truncateText(text: string, max = DEFAULT_CELL_MAX): { text: string; truncated: boolean } {
  // Only the first line is shown inline; the rest lives in the tooltip.
  const nl = text.indexOf("\n");
  const firstLine = nl >= 0 ? text.slice(0, nl) : text;
  const chars = Array.from(firstLine);
  if (chars.length <= max && nl < 0) return { text, truncated: false };
  if (chars.length <= max) return { text: firstLine + " …", truncated: true };
  return { text: chars.slice(0, Math.max(1, max - 1)).join("") + "…", truncated: true };
}

export function formatCell(value: unknown, max = DEFAULT_CELL_MAX): CellDisplay {
  if (value === null || value === undefined) {
    return { text: "NULL", full: "", truncated: false, isNull: true, kind: "null" };
  }
  const full = cellToText(value);
  const kind: CellDisplay["kind"] =
    typeof value === "boolean"
      ? "boolean"
      : typeof value === "number" || typeof value === "bigint"
        ? "number"
        : typeof value === "object"
          ? "json"
          : "string";
  const t = truncateText(full, max);
  return { text: t.text, full, truncated: t.truncated, isNull: false, kind };
}

/** Tab-separated copy of a whole row/grid (pastes into spreadsheets). */
export function rowsToTsv(columns: string[], rows: unknown[][]): string {
  const esc = (s: string) => (/[\t\n"]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [columns.map(esc).join("\t")];
  for (const r of rows) lines.push(r.map((v) => esc(cellToText(v))).join("\t"));
  return lines.join("\n");
}

/** Type names that should be right-aligned in grids. */
export function isNumericType(type: string | undefined): boolean {
  if (!type) return false;
  return /^(int|int2|int4|int8|smallint|integer|bigint|numeric|decimal|real|double|float|float4|float8|money|serial|bigserial)/i.test(
    type,
  );
}
