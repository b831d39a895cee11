import { describe, expect, it } from "vitest";
import { cloneOutcome, isRestorable } from "./backups";
import type { JobStatus } from "./types";

const job = (over: Partial<JobStatus>): JobStatus => ({
  state: "succeeded",
  phase: "done",
  progress: null,
  result: null,
  error: null,
  ...over,
});

// The result of a finished clone job as appliance/backups/clone.py writes it, on its first read.
const revealed = {
  project: { id: "p2new", name: "Shop copy" },
  project_id: "p2new",
  source_project_id: "p1src",
  backup_id: "bk_1",
  key_prefixes: { publishable: "ah_pub_abc", secret: "ah_sec_abc" },
  not_applied: [],
  publishable_key: "ah_pub_abc.rest",
  secret_key: "ah_sec_abc.rest",
};

describe("cloneOutcome", () => {
  it("reads the new project and its keys from the read that reveals them", () => {
    expect(cloneOutcome(job({ result: revealed }))).toEqual({
      projectId: "p2new",
      name: "Shop copy",
      keys: { publishable: "ah_pub_abc.rest", secret: "ah_sec_abc.rest" },
    });
  });

  it("gives the project without keys on a later read, when they are gone", () => {
    const { publishable_key: _p, secret_key: _s, ...later } = revealed;
    expect(cloneOutcome(job({ result: later }))).toEqual({ projectId: "p2new", name: "Shop copy", keys: null });
  });

  it("gives nothing for a job that did not succeed or has no project", () => {
    expect(cloneOutcome(job({ state: "failed", result: { project_id: "p2new" } }))).toBeNull();
    expect(cloneOutcome(job({ state: "running", result: { project_id: "p2new" } }))).toBeNull();
    expect(cloneOutcome(job({ result: null }))).toBeNull();
    expect(cloneOutcome(job({ result: { id: "bk_1", status: "verified" } }))).toBeNull();
  });

  it("falls back to the id when the result carries no name", () => {
    expect(cloneOutcome(job({ result: { project_id: "p2new" } }))?.name).toBe("p2new");
  });
});

describe("isRestorable", () => {
  it("matches the states the server accepts for restore and clone", () => {
    expect(["verified", "completed", "running", "failed", "unverifiable"].filter((status) => isRestorable({ status }))).toEqual([
      "verified",
      "completed",
    ]);
  });
});
