import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { createClient, type AtlasHubClient } from "../src/index.js";
import { type DevServer, type Project, skipReason, startDev } from "./dev-server.js";
import { rejectsWith } from "./assertions.js";

describe("storage against atlashub dev", { skip: skipReason }, () => {
  let server: DevServer;
  let project: Project;
  let atlas: AtlasHubClient;

  before(async () => {
    server = await startDev();
    project = await server.createProject("js-storage");
    atlas = createClient({ url: server.gatewayUrl, key: project.secret_key });
  });
  after(async () => {
    await server?.stop();
  });

  test("signed upload, PUT, signed download, list, remove", async () => {
    const path = `notes/${randomUUID()}.txt`;
    const grant = await atlas.storage.signedUpload({ bucket: "uploads", path, contentType: "text/plain", maxSize: 1024 });
    assert.equal(grant.objectKey, `uploads/${path}`);
    assert.ok(grant.expiresIn > 0);

    await atlas.storage.upload(grant.uploadUrl, new Blob(["hello from the JS client"]), "text/plain");

    const { downloadUrl } = await atlas.storage.signedDownload("uploads", grant.objectKey);
    const res = await fetch(downloadUrl);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "hello from the JS client");

    const listed = await atlas.storage.list({ bucket: "uploads", prefix: "notes/" });
    assert.deepEqual(
      listed.objects.map((o) => [o.key, o.size, o.contentType]),
      [[grant.objectKey, 24, "text/plain"]],
    );
    assert.equal(listed.nextCursor, null);

    assert.deepEqual(await atlas.storage.remove("uploads", grant.objectKey), { deleted: true });
    await rejectsWith(atlas.storage.signedDownload("uploads", grant.objectKey), 404, "object_not_found");
  });

  test("bytes as Uint8Array and string; paging the list", async () => {
    const keys: string[] = [];
    for (const [i, body] of [new Uint8Array([1, 2, 3]), "abc"].entries()) {
      const grant = await atlas.storage.signedUpload({
        bucket: "private",
        path: `page/${i}.bin`,
        contentType: "application/octet-stream",
        maxSize: 10,
      });
      await atlas.storage.upload(grant.uploadUrl, body, "application/octet-stream");
      keys.push(grant.objectKey);
    }
    const first = await atlas.storage.list({ bucket: "private", prefix: "page/", limit: 1 });
    assert.equal(first.objects.length, 1);
    assert.ok(first.nextCursor);
    const second = await atlas.storage.list({ bucket: "private", prefix: "page/", limit: 1, cursor: first.nextCursor });
    assert.deepEqual([...first.objects, ...second.objects].map((o) => o.key), keys);
  });

  test("limits and permissions are errors", async () => {
    const grant = await atlas.storage.signedUpload({
      bucket: "uploads",
      path: "limits/a.txt",
      contentType: "text/plain",
      maxSize: 4,
    });
    await rejectsWith(atlas.storage.upload(grant.uploadUrl, "a", "image/png"), 400, "content_type_mismatch");
    await rejectsWith(atlas.storage.upload(grant.uploadUrl, "too long", "text/plain"), 413, "payload_too_large");
    await rejectsWith(
      atlas.storage.signedUpload({ bucket: "nope", path: "a.txt", contentType: "text/plain", maxSize: 4 }),
      404,
      "bucket_not_found",
    );
    await rejectsWith(
      atlas.storage.signedUpload({ bucket: "uploads", path: "../a.txt", contentType: "text/plain", maxSize: 4 }),
      400,
      "invalid_path",
    );
    const publishable = createClient({ url: server.gatewayUrl, key: project.publishable_key });
    await rejectsWith(publishable.storage.list({ bucket: "uploads" }), 403, "secret_key_required");
    await rejectsWith(
      publishable.storage.signedUpload({ bucket: "uploads", path: "x.txt", contentType: "text/plain", maxSize: 4 }),
      403,
      "publishable_key_not_allowed",
    );
  });
});
