"""What the ``atlashub`` subcommand modules share: exit codes, errors on stderr, opening the
node's core, the audit actor of a shell user, plain tables, and the note that keys are shown once.

Commands open the node's state themselves (the daemon may keep running: the control plane is
SQLite in WAL mode), so they need the same config and master key as the daemon.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from appliance.config import Config
from appliance.core import Core
from appliance.errors import AtlasError

EXIT_OK = 0
EXIT_FAILURE = 1  # the operation was refused or failed
EXIT_USAGE = 2  # the command line itself is wrong (argparse uses 2 too)

KEYS_SHOWN_ONCE = "The keys are shown once: store them now."


def fail(prefix: str, message: str, code: int = EXIT_FAILURE) -> int:
    """One line on stderr; the exit code to return."""
    print(f"{prefix}: {message}", file=sys.stderr)
    return code


def usage_error(prefix: str, message: str) -> int:
    return fail(prefix, message, EXIT_USAGE)


def run_async(prefix: str, action: Callable[[], Coroutine[Any, Any, int]], *, show_code: bool = False) -> int:
    """Run ``action`` to its exit code; an :class:`AtlasError` becomes one line on stderr and exit 1."""
    try:
        return asyncio.run(action())
    except AtlasError as exc:
        return fail(prefix, f"{exc.message} ({exc.code})" if show_code else exc.message)


@asynccontextmanager
async def opened_core(config: Config) -> AsyncIterator[Core]:
    """This node's core (control-plane migrations applied), closed on the way out. Interrupted
    work is left to the daemon, which may be running and mid-way through it."""
    core = Core(config)
    await core.open(finish_interrupted_work=False)
    try:
        yield core
    finally:
        await core.close()


def shell_actor() -> str:
    """The audit actor of a command run from a shell: ``cli:<unix user>`` (the sudo caller if any)."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    caller = os.environ.get("SUDO_USER")
    return f"cli:{caller} (sudo as {user})" if caller and caller != user else f"cli:{user}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns two spaces apart; ``None`` shows as ``-``."""
    cells = [[str(h) for h in header]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
