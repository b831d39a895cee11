import assert from "node:assert/strict";

import { AtlasHubError } from "../src/index.js";

/** Await ``promise`` and assert it fails with this status and error code; returns the error. */
export async function rejectsWith(promise: PromiseLike<unknown>, status: number, code: string): Promise<AtlasHubError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AtlasHubError, `expected AtlasHubError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${status} ${code}, got success`);
}
