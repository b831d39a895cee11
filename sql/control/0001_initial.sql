-- The control plane of one node. On the master it is the cluster's source of truth.
-- Times are ISO 8601 UTC text; secrets are AES-256-GCM ciphertexts (base64), never plaintext.

CREATE TABLE platform_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE nodes (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('master', 'worker')),
    ed25519_public    TEXT,
    wg_public         TEXT,
    wg_address        TEXT UNIQUE,
    endpoint          TEXT,
    gateway_url       TEXT,
    status            TEXT NOT NULL DEFAULT 'unknown',
    version           TEXT,
    last_heartbeat_at TEXT,
    health_json       TEXT,
    created_at        TEXT NOT NULL,
    removed_at        TEXT
);

CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    db_name       TEXT NOT NULL UNIQUE,
    node_id       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'deleting')),
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX projects_name ON projects (lower(name));

CREATE TABLE project_db_creds (
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    username     TEXT NOT NULL,
    password_enc TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (project_id, role)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('publishable', 'secret')),
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT,
    replaced_by  TEXT
);
CREATE INDEX api_keys_project ON api_keys (project_id);

CREATE TABLE buckets (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE file_metadata (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    object_key      TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    size            INTEGER,
    content_type    TEXT,
    checksum        TEXT,
    uploader_key_id TEXT,
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    PRIMARY KEY (project_id, object_key)
);

-- No foreign key to projects: the audit trail outlives what it describes.
CREATE TABLE audit_logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    source_ip    TEXT,
    action       TEXT NOT NULL,
    target       TEXT,
    project_id   TEXT,
    outcome      TEXT NOT NULL,
    details_json TEXT
);
CREATE INDEX audit_logs_project ON audit_logs (project_id, id);

CREATE TABLE cron_jobs (
    id                TEXT PRIMARY KEY,
    project_id        TEXT REFERENCES projects (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    type              TEXT NOT NULL CHECK (type IN ('http', 'platform')),
    schedule_cron     TEXT NOT NULL,
    timezone          TEXT NOT NULL DEFAULT 'UTC',
    http_url          TEXT,
    http_method       TEXT,
    http_headers_enc  TEXT,
    http_body_enc     TEXT,
    action            TEXT,
    action_args_json  TEXT,
    enabled           INTEGER NOT NULL DEFAULT 1,
    timeout_ms        INTEGER NOT NULL DEFAULT 10000,
    retries           INTEGER NOT NULL DEFAULT 0,
    retry_backoff_ms  INTEGER NOT NULL DEFAULT 1000,
    missed_run_policy TEXT NOT NULL DEFAULT 'run_once',
    next_run_at       TEXT,
    last_due_at       TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE cron_job_runs (
    id             TEXT PRIMARY KEY,
    job_id         TEXT NOT NULL REFERENCES cron_jobs (id) ON DELETE CASCADE,
    trigger        TEXT NOT NULL DEFAULT 'schedule',
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    status         TEXT NOT NULL CHECK (status IN ('success', 'fail', 'timeout', 'skipped', 'running')),
    http_status    INTEGER,
    duration_ms    INTEGER,
    error_text     TEXT,
    attempt        INTEGER NOT NULL DEFAULT 1,
    log_excerpt    TEXT,
    log_object_key TEXT
);
CREATE INDEX cron_job_runs_job ON cron_job_runs (job_id, started_at);

CREATE TABLE backups (
    id            TEXT PRIMARY KEY,
    project_id    TEXT,
    kind          TEXT NOT NULL CHECK (kind IN ('project', 'control')),
    created_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'completed', 'verified', 'failed')),
    size          INTEGER,
    sha256        TEXT,
    object_key    TEXT,
    manifest_json TEXT,
    verified_at   TEXT,
    error_text    TEXT
);
CREATE INDEX backups_project ON backups (project_id, created_at);
