-- Analytics access for BI tools (Metabase, Grafana): per project, a read-only PostgreSQL role
-- that sees only the views of the project's `analytics` schema.

-- One row while analytics access is enabled. The role's password is sealed with the master key
-- (context "analytics:<project id>"); it is shown to the admin only on enabling and on rotation.
CREATE TABLE analytics_access (
    project_id          TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    username            TEXT NOT NULL,
    password_enc        TEXT NOT NULL,
    enabled_at          TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);

-- The views the admin defined, as given: {"table", "columns", "where"} or {"sql"}.
CREATE TABLE analytics_views (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- Tables no analytics view may read, directly or through other views (secrets, tokens).
-- Kept when analytics access is disabled: it describes the tables, not the access.
CREATE TABLE analytics_never_exposable (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    schema_name TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, schema_name, table_name)
);
