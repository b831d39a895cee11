-- Provisioning workers on a cloud provider (Hetzner Cloud), with rollback.

-- One row per provider. The API token is sealed with the node master key (context
-- "cloud-token:<provider>") and never shown again; the SSH public key is not secret.
CREATE TABLE cloud_settings (
    provider       TEXT PRIMARY KEY,
    token_enc      TEXT NOT NULL,
    api_url        TEXT NOT NULL,
    ssh_public_key TEXT,
    updated_at     TEXT NOT NULL
);

-- One row per provisioning or decommissioning run. The *_id columns name what the run
-- created (NULL: nothing, or reused and therefore not ours to delete); a failed run has
-- deleted them again and says in `step` where it stopped.
CREATE TABLE provisioning_runs (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('provision', 'decommission')),
    provider       TEXT NOT NULL,
    name           TEXT NOT NULL,
    server_type    TEXT,
    location       TEXT,
    server_id      INTEGER,
    server_ip      TEXT,
    ssh_key_id     INTEGER,
    firewall_id    INTEGER,
    token_id       TEXT,
    node_id        TEXT,
    state          TEXT NOT NULL CHECK (state IN ('running', 'cleaning_up', 'done', 'failed')),
    step           TEXT NOT NULL,
    error          TEXT,
    cleanup_json   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX provisioning_runs_node ON provisioning_runs (node_id);
CREATE INDEX provisioning_runs_created ON provisioning_runs (created_at);
