import { describe, expect, it, vi } from "vitest";
import { splitListing } from "./storagePaths";
import { jobPercent, pollJob } from "./jobPoll";
import { addHistory, loadHistory, HISTORY_LIMIT } from "./sqlHistory";
import { parseHeaders, valuesToInput, defaultCronValues, jobToValues, serverFieldToFormField } from "./cronForm";
import type { CronJob, JobStatus } from "@/api/types";

describe("storage listing", () => {
  it("splits a flat listing into folders and files under a prefix", () => {
    const o = (key: string) => ({ key, size: 1, content_type: null, last_modified: null });
    const r = splitListing([o("a.txt"), o("img/1.png"), o("img/2.png"), o("docs/x/y.md")], "");
    expect(r.folders).toEqual(["docs/", "img/"]);
    expect(r.files.map((f) => f.key)).toEqual(["a.txt"]);
    const sub = splitListing([o("img/1.png"), o("img/raw/2.png")], "img/");
    expect(sub.folders).toEqual(["raw/"]);
    expect(sub.files.map((f) => f.key)).toEqual(["img/1.png"]);
  });
});

describe("job polling", () => {
  it("polls until the job finishes and reports each state", async () => {
    const states: JobStatus[] = [
      { state: "queued", phase: null, progress: null, result: null, error: null },
      { state: "running", phase: "dump", progress: { done: 5, total: 10, unit: "tables" }, result: null, error: null },
      { state: "succeeded", phase: "done", progress: { done: 10, total: 10, unit: "tables" }, result: {}, error: null },
    ];
    const fetchStatus = vi.fn();
    states.forEach((s) => fetchStatus.mockResolvedValueOnce(s));
    const seen: string[] = [];
    const final = await pollJob(fetchStatus, (s) => seen.push(s.state), { intervalMs: 1 });
    expect(final.state).toBe("succeeded");
    expect(seen).toEqual(["queued", "running", "succeeded"]);
    expect(jobPercent(states[1])).toBe(50);
    expect(jobPercent(states[0])).toBeNull();
  });

  it("stops when aborted", async () => {
    const ac = new AbortController();
    const fetchStatus = vi.fn().mockResolvedValue({ state: "running", phase: null, progress: null, result: null, error: null });
    const p = pollJob(fetchStatus, () => ac.abort(), { intervalMs: 50, signal: ac.signal });
    await expect(p).rejects.toMatchObject({ name: "AbortError" });
  });
});

describe("SQL history", () => {
  it("keeps newest first, per project, de-duplicated and bounded", () => {
    addHistory("p1", { sql: "select 1", at: "t1", ok: true });
    addHistory("p1", { sql: "select 2", at: "t2", ok: true });
    addHistory("p1", { sql: "  select 1  ", at: "t3", ok: false });
    addHistory("p2", { sql: "select 9", at: "t4", ok: true });
    expect(loadHistory("p1").map((e) => e.sql)).toEqual(["select 1", "select 2"]);
    expect(loadHistory("p1")[0].ok).toBe(false);
    expect(loadHistory("p2")).toHaveLength(1);
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) addHistory("p3", { sql: `select ${i}`, at: "t", ok: true });
    expect(loadHistory("p3")).toHaveLength(HISTORY_LIMIT);
  });

  it("survives corrupt storage", () => {
    localStorage.setItem("atlashub.sqlHistory.bad", "{not json");
    expect(loadHistory("bad")).toEqual([]);
  });
});

describe("cron form", () => {
  it("parses headers and reports bad lines", () => {
    expect(parseHeaders("Authorization: Bearer x\n\nX-Trace: 1")).toEqual({
      headers: { Authorization: "Bearer x", "X-Trace": "1" },
    });
    expect(parseHeaders("no colon here").error).toMatch(/Line 1/);
  });

  it("validates and converts the form to the API payload", () => {
    const v = { ...defaultCronValues("p1"), name: "ping", http_url: "https://app.internal/ping", timezone: "UTC" };
    const { input, errors } = valuesToInput(v);
    expect(errors).toEqual({});
    expect(input).toMatchObject({
      name: "ping",
      project_id: "p1",
      type: "http",
      schedule_cron: "*/5 * * * *",
      http_method: "GET",
      http_headers: {},
      http_body: null,
      timeout_ms: 30000,
    });
    const bad = valuesToInput({ ...v, name: "", http_url: "ftp://x", http_body: "{", http_method: "POST", retries: "x" });
    expect(bad.input).toBeUndefined();
    expect(Object.keys(bad.errors).sort()).toEqual(["http_body", "http_url", "name", "retries"]);
  });

  it("does not send masked header values back when editing", () => {
    const job = {
      id: "j1",
      name: "n",
      project_id: null,
      type: "http",
      schedule_cron: "0 * * * *",
      timezone: "UTC",
      http_url: "https://a.internal/x",
      http_method: "GET",
      http_headers: { Authorization: "••••" },
      http_body: null,
      action: null,
      enabled: true,
      timeout_ms: 1000,
      retries: 1,
      retry_backoff_ms: 500,
      missed_run_policy: "skip",
      next_run_at: null,
      last_run: null,
    } satisfies CronJob;
    const initial = jobToValues(job);
    const unchanged = valuesToInput({ ...initial, name: "renamed" }, initial);
    expect(unchanged.input).not.toHaveProperty("http_headers");
    const changed = valuesToInput({ ...initial, http_headers: "Authorization: Bearer new" }, initial);
    expect(changed.input?.http_headers).toEqual({ Authorization: "Bearer new" });
  });

  it("maps server field names to form fields", () => {
    expect(serverFieldToFormField("cron")).toBe("schedule_cron");
    expect(serverFieldToFormField("tz")).toBe("timezone");
    expect(serverFieldToFormField("url")).toBe("http_url");
    expect(serverFieldToFormField("nope")).toBeNull();
  });
});
