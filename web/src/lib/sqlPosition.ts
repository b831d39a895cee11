/** Conversion of PostgreSQL error positions (1-based character offsets into the
 * statement text, as in `ERROR ... at character N`) into Monaco ranges. */

export interface EditorRange {
  startLineNumber: number;
  startColumn: number;
  endLineNumber: number;
  endColumn: number;
}

/** 1-based character offset → 1-based line/column. Counts Unicode code points,
 * as PostgreSQL does, and converts them to UTF-16 columns as Monaco expects.
 * Offsets past the end clamp to the last character. */
export function offsetToLineColumn(text: string, position: number): { lineNumber: number; column: number } {
  const chars = Array.from(text);
  let idx = Math.max(1, Math.floor(position)) - 1; // 0-based code point index
  if (idx > chars.length) idx = chars.length;
  let line = 1;
  let col = 1; // UTF-16 column
  for (let i = 0; i < idx && i < chars.length; i++) {
    const ch = chars[i];
    if (ch === "\n") {
      line++;
      col = 1;
    } else if (ch === "\r") {
      // "\r\n" counts as one line break; lone "\r" too.
      if (chars[i + 1] !== "\n") {
        line++;
        col = 1;
      }
    } else {
      col += ch.length;
    }
  }
  return { lineNumber: line, column: col };
}

const WORD = /[\p{L}\p{N}_$."]/u;

/** Range covering the token that starts at `position` (at least one character;
 * a whole word when the position points at one). */
export function sqlErrorRange(text: string, position: number): EditorRange {
  const { lineNumber, column } = offsetToLineColumn(text, position);
  const lines = text.split(/\r\n|\r|\n/);
  const lineText = lines[lineNumber - 1] ?? "";
  if (lineText.length === 0) {
    return { startLineNumber: lineNumber, startColumn: 1, endLineNumber: lineNumber, endColumn: 1 };
  }
  let start = Math.min(column, lineText.length); // 1-based
  if (column > lineText.length) start = lineText.length; // past end: mark the last char
  let end = start; // exclusive end column (1-based) computed below
  const at = (c: number) => lineText.charAt(c - 1);
  if (WORD.test(at(start))) {
    while (end <= lineText.length && WORD.test(at(end))) end++;
  } else {
    end = start + 1;
  }
  return { startLineNumber: lineNumber, startColumn: start, endLineNumber: lineNumber, endColumn: end };
}

/** When only a selection was run, the server's position is relative to the
 * selection: shift it by the selection's start offset (0-based code points). */
export function shiftPosition(position: number, selectionStartOffset: number): number {
  return position + selectionStartOffset;
}

/** Error codes whose `details.position` comes from AtlasHub's own SQL parser
 * (pglast): a 0-based character offset. PostgreSQL's own errors (`sql_error`)
 * carry its 1-based `at character N`. */
// Every position the API sends is 1-based (PostgreSQL's convention); none needs shifting.
const ZERO_BASED_POSITION_CODES = new Set<string>();

/** The server's error position as a 1-based character offset, or null when it
 * has none. */
export function errorPosition(code: string, position: number | null | undefined): number | null {
  if (typeof position !== "number" || !Number.isFinite(position) || position < 0) return null;
  const oneBased = ZERO_BASED_POSITION_CODES.has(code) ? position + 1 : position;
  return oneBased > 0 ? oneBased : null;
}
