-- Local admin accounts for the dashboard (used when Cloudflare Access is not in front).
-- Passwords are bcrypt hashes; TOTP secrets are AES-256-GCM ciphertexts; sessions, CSRF tokens
-- and the one-time setup code are stored only as SHA-256 hashes.

CREATE TABLE admin_users (
    id               TEXT PRIMARY KEY,
    username         TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    totp_secret_enc  TEXT,
    totp_pending_enc TEXT,
    totp_last_step   INTEGER,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until     TEXT,
    created_at       TEXT NOT NULL,
    last_login_at    TEXT
);
CREATE UNIQUE INDEX admin_users_username ON admin_users (lower(username));

CREATE TABLE admin_sessions (
    id              TEXT PRIMARY KEY,  -- SHA-256 of the cookie value
    user_id         TEXT NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    csrf_token_hash TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    ip              TEXT
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- At most one live setup code (SHA-256), printed to the log at start while no admin exists.
CREATE TABLE admin_setup (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    code_hash  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
