import { describe, expect, it } from "vitest";
import { cellToText, formatCell, rowsToTsv, truncateText, isNumericType } from "./cells";

describe("grid cells", () => {
  it("shows NULL but copies an empty string", () => {
    const c = formatCell(null);
    expect(c).toMatchObject({ text: "NULL", full: "", isNull: true, kind: "null" });
  });

  it("keeps short values intact", () => {
    expect(formatCell("hello")).toMatchObject({ text: "hello", full: "hello", truncated: false, kind: "string" });
    expect(formatCell(42)).toMatchObject({ text: "42", kind: "number" });
    expect(formatCell(false)).toMatchObject({ text: "false", kind: "boolean" });
  });

  it("truncates long values with an ellipsis, keeping the full value for tooltip/copy", () => {
    const long = "x".repeat(500);
    const c = formatCell(long, 20);
    expect(c.truncated).toBe(true);
    expect(Array.from(c.text)).toHaveLength(20);
    expect(c.text.endsWith("…")).toBe(true);
    expect(c.full).toBe(long);
  });

  it("does not split surrogate pairs when truncating", () => {
    const t = truncateText("😀".repeat(10), 5);
    expect(t.text).toBe("😀😀😀😀…");
  });

  it("shows only the first line of multi-line text", () => {
    const t = truncateText("line one\nline two", 100);
    expect(t).toEqual({ text: "line one …", truncated: true });
  });

  it("serialises JSON values", () => {
    const c = formatCell({ a: 1, b: [true] });
    expect(c.kind).toBe("json");
    expect(c.full).toBe('{"a":1,"b":[true]}');
    expect(cellToText([1, 2])).toBe("[1,2]");
  });

  it("copies a grid as TSV, quoting tabs/newlines/quotes", () => {
    const tsv = rowsToTsv(["id", "note"], [
      [1, "plain"],
      [2, 'has "quotes"\tand tab'],
      [3, null],
    ]);
    expect(tsv).toBe('id\tnote\n1\tplain\n2\t"has ""quotes""\tand tab"\n3\t');
  });

  it("recognises numeric column types for right alignment", () => {
    expect(isNumericType("int4")).toBe(true);
    expect(isNumericType("numeric(10,2)")).toBe(true);
    expect(isNumericType("text")).toBe(false);
    expect(isNumericType(undefined)).toBe(false);
  });
});
