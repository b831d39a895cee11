import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatRelative, formatNumber } from "./format";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1 KB"],
    [1536, "1.5 KB"],
    [10 * 1024 * 1024, "10 MB"],
    [123.4 * 1024 * 1024, "123 MB"],
    [5 * 1024 ** 3, "5 GB"],
    [2.25 * 1024 ** 4, "2.3 TB"],
  ])("%d bytes → %s", (n, s) => {
    expect(formatBytes(n)).toBe(s);
  });

  it("handles missing values and negatives", () => {
    expect(formatBytes(null)).toBe("—");
    expect(formatBytes(undefined)).toBe("—");
    expect(formatBytes(Number.NaN)).toBe("—");
    expect(formatBytes(-2048)).toBe("-2 KB");
  });
});

describe("other formatters", () => {
  it("formats durations", () => {
    expect(formatDuration(42)).toBe("42 ms");
    expect(formatDuration(1500)).toBe("1.50 s");
    expect(formatDuration(61_000)).toBe("1m 1s");
    expect(formatDuration(null)).toBe("—");
  });
  it("formats relative times both ways", () => {
    const now = Date.parse("2030-01-01T12:00:00Z");
    expect(formatRelative("2030-01-01T11:58:00Z", now)).toBe("2 min ago");
    expect(formatRelative("2030-01-01T15:00:00Z", now)).toBe("in 3 h");
    expect(formatRelative(null, now)).toBe("—");
    expect(formatRelative("not a date", now)).toBe("—");
  });
  it("groups thousands", () => {
    expect(formatNumber(1234567)).toBe("1,234,567");
  });
});
