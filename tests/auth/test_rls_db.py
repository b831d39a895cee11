"""Row-level security driven by end-user tokens through /v1/db: "owner reads own rows"."""

from __future__ import annotations

from tests.auth.helpers import bearer, create_project, signup
from tests.fixtures.daemon import RunningDaemon

NOTES = """
CREATE TABLE notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id uuid NOT NULL DEFAULT auth.uid(),
    body text NOT NULL
);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner_select ON notes FOR SELECT TO {authenticated} USING (owner_id = auth.uid());
CREATE POLICY notes_owner_insert ON notes FOR INSERT TO {authenticated} WITH CHECK (owner_id = auth.uid());
GRANT SELECT, INSERT ON notes TO {authenticated};
"""


async def test_two_users_read_only_their_own_rows(relaxed: RunningDaemon) -> None:
    atlas = relaxed
    project = await create_project(atlas)
    pid, key = project["id"], project["publishable_key"]
    sql = NOTES.replace("{authenticated}", f"proj_{pid}_authenticated")
    status, body = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/migrations", json={"migrations": [{"name": "0001_init.sql", "sql": sql}]}
    )
    assert status in (200, 201), body
    alice = await signup(atlas, key, "alice@example.com")
    bob = await signup(atlas, key, "bob@example.com")

    for who, text in ((alice, "alice 1"), (alice, "alice 2"), (bob, "bob 1")):
        status, body = await atlas.public(
            "POST", "/v1/db/notes", key, json={"rows": [{"body": text}]}, headers=bearer(who["access_token"])
        )
        assert status == 201, body
    # Writing a row for someone else is refused by the policy's WITH CHECK.
    status, body = await atlas.public(
        "POST",
        "/v1/db/notes",
        key,
        json={"rows": [{"body": "forged", "owner_id": bob["user"]["id"]}]},
        headers=bearer(alice["access_token"]),
    )
    assert status in (401, 403), body

    async def bodies(token: str | None) -> list[str]:
        headers = bearer(token) if token else {}
        status, rows = await atlas.public("GET", "/v1/db/notes?order=id.asc", key, headers=headers)
        assert status == 200, rows
        return [r["body"] for r in rows]

    assert await bodies(alice["access_token"]) == ["alice 1", "alice 2"]
    assert await bodies(bob["access_token"]) == ["bob 1"]
    # Without a user token the publishable key is anon: no policy, no rows.
    status, rows = await atlas.public("GET", "/v1/db/notes", key)
    assert status in (200, 401, 403, 404), rows
    assert status != 200 or rows == []
    # A tampered token never reaches the database.
    status, body = await atlas.public("GET", "/v1/db/notes", key, headers=bearer(alice["access_token"][:-3] + "AAA"))
    assert status == 401 and body["error"]["code"] == "invalid_token"
