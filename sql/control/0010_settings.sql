-- Runtime settings: values an admin changed from the dashboard, applied live without a restart.
-- A key absent here runs on its value from the configuration file (atlashub.toml); deleting a
-- row returns the key to that value. Plain values are JSON; secrets (a webhook URL with its
-- token, the SMTP password) are sealed with the node master key (context "setting:<key>") and
-- never shown again. The keys and their bounds are defined in appliance/settings/registry.py.
CREATE TABLE runtime_settings (
    key        TEXT PRIMARY KEY,
    value_json TEXT,
    value_enc  TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    CHECK ((value_json IS NULL) <> (value_enc IS NULL))
);
