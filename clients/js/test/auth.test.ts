import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { createClient, type AtlasHubClient } from "../src/index.js";
import { type DevServer, type Project, skipReason, startDev } from "./dev-server.js";
import { rejectsWith } from "./assertions.js";

type Note = { id: number; owner_id: string; body: string };

describe("auth and row-level security against atlashub dev", { skip: skipReason }, () => {
  let server: DevServer;
  let project: Project;
  let anon: AtlasHubClient;

  before(async () => {
    server = await startDev();
    project = await server.createProject("js-auth");
    const role = `proj_${project.id}_authenticated`;
    // The policy of docs/USAGE.md "Row-level security with auth.uid()".
    await server.migrate(
      project.id,
      "0001_notes.sql",
      `CREATE TABLE notes (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         owner_id uuid NOT NULL DEFAULT auth.uid(),
         body text NOT NULL
       );
       ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
       CREATE POLICY notes_select_own ON notes FOR SELECT TO ${role} USING (owner_id = auth.uid());
       CREATE POLICY notes_insert_own ON notes FOR INSERT TO ${role} WITH CHECK (owner_id = auth.uid());
       GRANT SELECT, INSERT ON notes TO ${role};`,
    );
    anon = createClient({ url: server.gatewayUrl, key: project.publishable_key });
  });
  after(async () => {
    await server?.stop();
  });

  test("sign up, sign in, me, refresh, sign out", async () => {
    const session = await anon.auth.signUp({ email: " Ada@Example.com ", password: "correct horse battery" });
    assert.equal(session.token_type, "bearer");
    assert.equal(session.user.email, "ada@example.com");
    assert.ok(session.expires_in > 0);

    const me = await anon.auth.me(session.access_token);
    assert.equal(me.id, session.user.id);
    assert.equal((await anon.withAccessToken(session.access_token).auth.me()).email, "ada@example.com");

    const again = await anon.auth.signIn({ email: "ada@example.com", password: "correct horse battery" });
    const refreshed = await anon.auth.refresh(again.refresh_token);
    assert.notEqual(refreshed.refresh_token, again.refresh_token);
    await rejectsWith(anon.auth.refresh(again.refresh_token), 401, "refresh_token_reused");

    await anon.auth.signOut(session.refresh_token);
    await rejectsWith(anon.auth.refresh(session.refresh_token), 401, "invalid_token");
    const third = await anon.auth.signIn({ email: "ada@example.com", password: "correct horse battery" });
    await createClient({ url: server.gatewayUrl, key: project.publishable_key, accessToken: third.access_token }).auth.signOut();
  });

  test("auth errors", async () => {
    await rejectsWith(anon.auth.signUp({ email: "bob@example.com", password: "short" }), 400, "weak_password");
    await rejectsWith(anon.auth.signUp({ email: "not-an-email", password: "long enough pass" }), 400, "invalid_email");
    await anon.auth.signUp({ email: "bob@example.com", password: "long enough pass" });
    await rejectsWith(anon.auth.signUp({ email: "bob@example.com", password: "long enough pass" }), 409, "user_exists");
    await rejectsWith(anon.auth.signIn({ email: "bob@example.com", password: "wrong password!" }), 401, "invalid_credentials");
    await rejectsWith(anon.auth.me("not.a.jwt"), 401, "invalid_token");
  });

  test("each user reads and writes only their own rows", async () => {
    const carol = await anon.auth.signUp({ email: "carol@example.com", password: "carol's passphrase" });
    const dave = await anon.auth.signUp({ email: "dave@example.com", password: "dave's passphrase" });
    const asCarol = anon.withAccessToken(carol.access_token).db.from<Note>("notes");
    const asDave = createClient({ url: server.gatewayUrl, key: project.publishable_key, accessToken: dave.access_token })
      .db.from<Note>("notes");

    const [mine] = await asCarol.insert({ body: "carol's note" });
    assert.equal(mine?.owner_id, carol.user.id);
    await asDave.insert({ body: "dave's note" });

    assert.deepEqual((await asCarol.select("body")).map((n) => n.body), ["carol's note"]);
    assert.deepEqual((await asDave.select("body")).map((n) => n.body), ["dave's note"]);
    await rejectsWith(anon.db.from<Note>("notes").select(), 404, "table_not_found");
    await rejectsWith(asDave.insert({ body: "forged", owner_id: carol.user.id }), 403, "permission_denied");

    const service = createClient({ url: server.gatewayUrl, key: project.secret_key });
    assert.equal((await service.db.from<Note>("notes").select()).length, 2);
  });
});
