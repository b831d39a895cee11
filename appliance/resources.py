"""Where bundled, read-only files live: from the source tree, or inside a PyInstaller build."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def sql_dir(kind: str) -> Path:
    return resource_root() / "sql" / kind


def web_dist() -> Path:
    return resource_root() / "web" / "dist"
