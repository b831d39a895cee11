"""Every module of the package imports on its own, first: no import cycle hides behind the order
in which the daemon happens to load things (a node with fewer roles loads them differently)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import appliance

SCRIPT = """
import importlib, pkgutil, sys
import appliance
modules = pkgutil.walk_packages(appliance.__path__, "appliance.")
names = sorted(m.name for m in modules if not m.name.endswith("__main__"))
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "appliance" or m.startswith("appliance.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first() -> None:
    root = Path(appliance.__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) > 100  # the walk found the package
