import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { AtlasHubError, createClient, inListItem, type AtlasHubClient } from "../src/index.js";
import { type DevServer, type Project, skipReason, startDev } from "./dev-server.js";
import { rejectsWith } from "./assertions.js";

type Note = { id: number; body: string; tag: string | null; score: number; done: boolean };

test("in() items are quoted only when they must be", () => {
  assert.equal(inListItem("plain"), "plain");
  assert.equal(inListItem(3), "3");
  assert.equal(inListItem("a,b"), '"a,b"');
  assert.equal(inListItem('say "hi"'), '"say \\"hi\\""');
  assert.equal(inListItem("back\\slash"), '"back\\\\slash"');
  assert.equal(inListItem(""), '""');
});

describe("db against atlashub dev", { skip: skipReason }, () => {
  let server: DevServer;
  let project: Project;
  let atlas: AtlasHubClient;

  before(async () => {
    server = await startDev();
    project = await server.createProject("js-db");
    await server.migrate(
      project.id,
      "0001_notes.sql",
      `CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL UNIQUE, tag text, score int NOT NULL DEFAULT 0,
         done boolean NOT NULL DEFAULT false);
       GRANT SELECT ON notes TO proj_${project.id}_anon;`,
    );
    atlas = createClient({ url: server.gatewayUrl, key: project.secret_key });
  });
  after(async () => {
    await server?.stop();
  });

  test("tables() lists the table with its columns", async () => {
    const tables = await atlas.db.tables();
    const notes = tables.find((t) => t.name === "notes");
    assert.ok(notes);
    assert.deepEqual(notes.primaryKey, ["id"]);
    assert.deepEqual(
      notes.columns.map((c) => c.name),
      ["id", "body", "tag", "score", "done"],
    );
  });

  test("insert, select, update, delete", async () => {
    const notes = atlas.db.from<Note>("notes");
    const inserted = await notes.insert([
      { body: "alpha", tag: "x", score: 1 },
      { body: "beta", tag: "a,b", score: 2 },
      { body: "gamma", score: 3, done: true },
      { body: "Delta", tag: 'q"uote', score: 4 },
    ]);
    assert.equal(inserted.length, 4);
    assert.equal(inserted[0]?.done, false);
    const minimal = await notes.insert({ body: "epsilon", score: 5 }, { returning: "minimal" });
    assert.deepEqual(minimal, { inserted: 1 });

    const all = await notes.select().order("id");
    assert.deepEqual(
      all.map((n) => n.body),
      ["alpha", "beta", "gamma", "Delta", "epsilon"],
    );

    const updated = await notes.update({ done: true }).eq("body", "alpha");
    assert.equal(updated.length, 1);
    assert.equal(updated[0]?.done, true);
    const counted = await notes.update({ score: 10 }, { returning: "minimal" }).gte("score", 4);
    assert.deepEqual(counted, { updated: 2 });

    const removed = await notes.delete().eq("body", "epsilon");
    assert.deepEqual(removed, { deleted: 1 });
    const withRows = await notes.delete({ returning: "representation" }).eq("body", "Delta");
    assert.equal(withRows.deleted, 1);
    assert.equal(withRows.rows[0]?.tag, 'q"uote');
    await notes.insert({ body: "Delta", tag: 'q"uote', score: 4 });
  });

  test("every filter operator, select, order, limit, offset", async () => {
    const notes = atlas.db.from<Note>("notes");
    const bodies = async (q: PromiseLike<Pick<Note, "body">[]>) => (await q).map((n) => n.body);
    assert.deepEqual(await bodies(notes.select("body").eq("score", 2)), ["beta"]);
    assert.deepEqual(await bodies(notes.select("body").neq("body", "beta").lt("score", 4).order("body")), [
      "alpha",
      "gamma",
    ]);
    assert.deepEqual(await bodies(notes.select("body").lte("score", 2).order("score")), ["alpha", "beta"]);
    assert.deepEqual(await bodies(notes.select("body").gt("score", 2).order("score")), ["gamma", "Delta"]);
    assert.deepEqual(await bodies(notes.select("body").gte("score", 3).lt("score", 4)), ["gamma"]);
    assert.deepEqual(await bodies(notes.select("body").like("body", "%eta").order("body")), ["beta"]);
    assert.deepEqual(await bodies(notes.select("body").ilike("body", "d%")), ["Delta"]);
    assert.deepEqual(await bodies(notes.select("body").in("tag", ["a,b", 'q"uote']).order("id")), ["beta", "Delta"]);
    assert.deepEqual(await bodies(notes.select("body").eq("done", true).order("id")), ["alpha", "gamma"]);

    const page = await notes.select(["id", "body"]).order("score", { ascending: false }).limit(2).offset(1);
    assert.deepEqual(
      page.map((n) => Object.keys(n)),
      [
        ["id", "body"],
        ["id", "body"],
      ],
    );
    assert.deepEqual(
      page.map((n) => n.body),
      ["gamma", "beta"],
    );
    const counted = await notes.select("body").gt("score", 1).limit(1).withCount();
    assert.equal(counted.rows.length, 1);
    assert.equal(counted.count, 3);
  });

  test("errors become AtlasHubError with status, code, message and details", async () => {
    const notes = atlas.db.from<Note>("notes");
    await rejectsWith(notes.update({ done: true }), 400, "filter_required");
    await rejectsWith(notes.delete(), 400, "filter_required");
    const unknown = await rejectsWith(notes.select().eq("nope", 1), 400, "unknown_column");
    assert.match(unknown.message, /nope/);
    await rejectsWith(notes.select().eq("score", "abc"), 400, "invalid_value");
    await rejectsWith(notes.select().limit(5000), 400, "limit_too_large");
    await rejectsWith(atlas.db.from("missing").select(), 404, "table_not_found");
    await rejectsWith(notes.insert({ body: "alpha" }), 409, "unique_violation");
    await rejectsWith(notes.insert({ tag: "no body" }), 422, "not_null_violation");

    const wrongKey = createClient({ url: server.gatewayUrl, key: "ah_sec_not-a-real-key" });
    await rejectsWith(wrongKey.db.tables(), 401, "invalid_api_key");

    const publishable = createClient({ url: server.gatewayUrl, key: project.publishable_key });
    assert.equal((await publishable.db.from<Note>("notes").select("body").eq("body", "beta")).length, 1);
    await rejectsWith(publishable.db.from<Note>("notes").insert({ body: "nope" }), 403, "read_only_key");

    const nowhere = createClient({ url: "http://127.0.0.1:9", key: project.secret_key });
    const err = await rejectsWith(nowhere.db.tables(), 0, "network_error");
    assert.match(err.message, /127\.0\.0\.1:9/);
  });
});
