import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "@/api/client";
import { createPreviewController, localCronError, type PreviewState } from "./cronPreview";

describe("cron preview", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("debounces keystrokes into a single request with the last value", async () => {
    const fetcher = vi.fn().mockResolvedValue(["2030-01-01T00:05:00Z"]);
    const states: PreviewState[] = [];
    const c = createPreviewController(fetcher, (s) => states.push(s), 300);
    c.update("*/5 * * * *", "UTC");
    await vi.advanceTimersByTimeAsync(100);
    c.update("*/10 * * * *", "UTC");
    await vi.advanceTimersByTimeAsync(100);
    c.update("*/15 * * * *", "Europe/Berlin");
    expect(fetcher).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(300);
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(fetcher.mock.calls[0][0]).toBe("*/15 * * * *");
    expect(fetcher.mock.calls[0][1]).toBe("Europe/Berlin");
    expect(states.at(-1)).toMatchObject({ status: "ok", runs: ["2030-01-01T00:05:00Z"] });
    c.dispose();
  });

  it("rejects obviously invalid expressions locally without calling the server", async () => {
    const fetcher = vi.fn();
    const states: PreviewState[] = [];
    const c = createPreviewController(fetcher, (s) => states.push(s), 300);
    c.update("* * *", "UTC");
    await vi.advanceTimersByTimeAsync(1000);
    expect(fetcher).not.toHaveBeenCalled();
    expect(states.at(-1)?.fieldErrors.schedule_cron).toMatch(/Expected 5 fields/);
    c.update("*/5 * * * *", "  ");
    expect(states.at(-1)?.fieldErrors.timezone).toBeTruthy();
    c.dispose();
  });

  it("shows a 400 from the server at the field named in details.field", async () => {
    const fetcher = vi
      .fn()
      .mockRejectedValueOnce(new ApiError(400, "invalid_timezone", "Unknown time zone 'Mars/Base'", { field: "timezone" }))
      .mockRejectedValueOnce(new ApiError(400, "invalid_cron", "Minute 61 is out of range", { field: "cron" }));
    const states: PreviewState[] = [];
    const c = createPreviewController(fetcher, (s) => states.push(s), 10);
    c.update("0 * * * *", "Mars/Base");
    await vi.advanceTimersByTimeAsync(20);
    expect(states.at(-1)).toMatchObject({ status: "error", fieldErrors: { timezone: "Unknown time zone 'Mars/Base'" } });
    c.update("61 * * * *", "UTC");
    await vi.advanceTimersByTimeAsync(20);
    expect(states.at(-1)).toMatchObject({ status: "error", fieldErrors: { schedule_cron: "Minute 61 is out of range" } });
    c.dispose();
  });

  it("ignores a stale response that arrives after a newer request started", async () => {
    let resolveFirst: (v: string[]) => void = () => {};
    const fetcher = vi
      .fn()
      .mockImplementationOnce(() => new Promise<string[]>((r) => (resolveFirst = r)))
      .mockResolvedValueOnce(["new"]);
    const states: PreviewState[] = [];
    const c = createPreviewController(fetcher, (s) => states.push(s), 10);
    c.update("0 * * * *", "UTC");
    await vi.advanceTimersByTimeAsync(20);
    c.update("5 * * * *", "UTC");
    await vi.advanceTimersByTimeAsync(20);
    resolveFirst(["old"]);
    await vi.advanceTimersByTimeAsync(0);
    expect(states.at(-1)?.runs).toEqual(["new"]);
    // The first request's signal was aborted when the second started.
    expect((fetcher.mock.calls[0][2] as AbortSignal).aborted).toBe(true);
    c.dispose();
  });

  it("reports network errors outside of the fields", async () => {
    const fetcher = vi.fn().mockRejectedValue(new ApiError(0, "network_error", "Cannot reach the AtlasHub server."));
    const states: PreviewState[] = [];
    const c = createPreviewController(fetcher, (s) => states.push(s), 10);
    c.update("@daily", "UTC");
    await vi.advanceTimersByTimeAsync(20);
    expect(states.at(-1)).toMatchObject({ status: "error", fieldErrors: {}, error: "Cannot reach the AtlasHub server." });
    c.dispose();
  });

  it("accepts macros and 6-field expressions locally", () => {
    expect(localCronError("@hourly")).toBeNull();
    expect(localCronError("@every5")).toMatch(/Unknown macro/);
    expect(localCronError("0 */2 * * 1-5")).toBeNull();
    expect(localCronError("0 0 */2 * * MON")).toBeNull();
    expect(localCronError("")).toBeTruthy();
  });
});
