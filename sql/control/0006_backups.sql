-- Backups: long operations as jobs with progress, and the undo points of restores.
-- A job (or backup) found 'queued'/'running' at start-up was interrupted by a crash: it is
-- marked failed and whatever it left behind is removed before anything else runs.

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    project_id     TEXT,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    phase          TEXT,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    progress_unit  TEXT,
    result_json    TEXT,
    error          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX jobs_unfinished ON jobs (state) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_project ON jobs (project_id, created_at);

ALTER TABLE backups ADD COLUMN job_id TEXT;
CREATE INDEX backups_status ON backups (status);

-- The database a restore replaced, kept until expires_at so the restore can be undone.
-- 'pending' is written before the swap: at start-up it tells whether the swap happened.
CREATE TABLE restore_points (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    backup_id     TEXT NOT NULL,
    replaced_db   TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'active', 'undone', 'expired')),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX restore_points_project ON restore_points (project_id, state);
