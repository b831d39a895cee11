-- End-user auth (/v1/auth): one signing secret per project, sealed with the node master key.
-- The users themselves live in each project's own database (schema atlas_auth).

CREATE TABLE project_auth (
    project_id     TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    jwt_secret_enc TEXT NOT NULL,
    settings_json  TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL
);
