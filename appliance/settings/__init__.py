"""Runtime settings: the few values an admin may change from the dashboard, applied live.

Everything else (listeners, paths, PostgreSQL, the storage backend...) lives in the
configuration file and needs a restart; see docs/decisions/0007-runtime-settings.md.
:mod:`registry` defines the keys and checks values (pure), :mod:`service` stores them in the
control plane and tells the roles, :mod:`fileview` shows the file configuration redacted.
"""
