import { describe, expect, it } from "vitest";
import { errorPosition, offsetToLineColumn, shiftPosition, sqlErrorRange } from "./sqlPosition";

describe("SQL error position → Monaco range", () => {
  it("maps a 1-based offset on the first line", () => {
    expect(offsetToLineColumn("selec 1", 1)).toEqual({ lineNumber: 1, column: 1 });
    expect(offsetToLineColumn("select * fro t", 10)).toEqual({ lineNumber: 1, column: 10 });
  });

  it("counts newlines and restarts columns", () => {
    const sql = "create table t (id int);\ninsert into t values (1);\nselect * form t;";
    const pos = sql.indexOf("form") + 1;
    expect(offsetToLineColumn(sql, pos)).toEqual({ lineNumber: 3, column: 10 });
  });

  it("treats CRLF as one line break", () => {
    const sql = "select 1;\r\nselect oops;";
    const pos = sql.indexOf("oops") + 1;
    expect(offsetToLineColumn(sql, pos)).toEqual({ lineNumber: 2, column: 8 });
  });

  it("counts code points like PostgreSQL, and returns UTF-16 columns like Monaco", () => {
    const sql = "select '😀' as x, nope";
    const pos = Array.from(sql).indexOf("n") + 1; // code-point offset
    const lc = offsetToLineColumn(sql, pos);
    expect(sql.charAt(lc.column - 1)).toBe("n");
  });

  it("clamps offsets past the end", () => {
    expect(offsetToLineColumn("select", 99)).toEqual({ lineNumber: 1, column: 7 });
  });

  it("highlights the whole word at the position", () => {
    const sql = "select * form users";
    const r = sqlErrorRange(sql, sql.indexOf("form") + 1);
    expect(r).toEqual({ startLineNumber: 1, startColumn: 10, endLineNumber: 1, endColumn: 14 });
  });

  it("highlights a single character for punctuation", () => {
    const sql = "select (1";
    const r = sqlErrorRange(sql, 8);
    expect(r).toEqual({ startLineNumber: 1, startColumn: 8, endLineNumber: 1, endColumn: 9 });
  });

  it("marks the last character when the error is at end of input", () => {
    const sql = "select 1 +";
    const r = sqlErrorRange(sql, sql.length + 1);
    expect(r.startLineNumber).toBe(1);
    expect(r.startColumn).toBe(10);
  });

  it("shifts a position relative to a selection by the selection start", () => {
    expect(shiftPosition(3, 0)).toBe(3);
    expect(shiftPosition(3, 25)).toBe(28);
  });
});

describe("server error positions", () => {
  it("takes the guard's positions as 1-based, like PostgreSQL's", () => {
    const sql = "SELECT id,\nFROM items";
    const pos = errorPosition("sql_syntax_error", sql.indexOf("FROM") + 1);
    expect(pos).toBe(sql.indexOf("FROM") + 1);
    expect(offsetToLineColumn(sql, pos!)).toEqual({ lineNumber: 2, column: 1 });
    expect(errorPosition("sql_rejected", 1)).toBe(1);
  });

  it("keeps PostgreSQL's 1-based positions and drops missing ones", () => {
    expect(errorPosition("sql_error", 8)).toBe(8);
    expect(errorPosition("sql_error", 0)).toBeNull();
    expect(errorPosition("sql_syntax_error", null)).toBeNull();
    expect(errorPosition("sql_syntax_error", undefined)).toBeNull();
  });
});
