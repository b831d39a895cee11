"""Optional modules found by name: roles add route tables and commands without editing a shared list."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


def present(names: tuple[str, ...]) -> list[ModuleType]:
    """Import the modules of ``names`` that exist, in order."""
    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            found.append(importlib.import_module(name))
    return found
