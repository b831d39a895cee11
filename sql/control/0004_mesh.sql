-- The cluster: one-time join tokens, where to reach each node's agent, and the command log.
-- `nodes` (0001) is the peer table on every node: on the master its workers (and itself),
-- on a worker its master (and itself). A removed node keeps its row and its WireGuard
-- address, so an address is never handed out twice.

-- Only SHA-256 of the secret is stored; the token itself is shown once.
CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     TEXT
);

-- Where the node's agent listens (its WireGuard address and port, reported at join).
ALTER TABLE nodes ADD COLUMN agent_url TEXT;

-- Commands sent (master) and received (worker). A worker never runs a command_id twice.
CREATE TABLE mesh_commands (
    id          TEXT PRIMARY KEY,
    node_id     TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    name        TEXT NOT NULL,
    args_json   TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'ok', 'failed')),
    result_json TEXT,
    error_json  TEXT,
    created_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX mesh_commands_node ON mesh_commands (node_id, created_at);
