from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon
from tests.fixtures.pg import running_postgres


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
async def atlas(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path / "state", pg) as running:
        yield running


@pytest.fixture(autouse=True)
def _product_log_handlers_do_not_outlive_a_test() -> Iterator[None]:
    """A test that calls setup_logging (directly or through the CLI's main) binds a handler to a
    stream that pytest closes afterwards; later log lines would then fail to write."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_atlashub", False):
            root.removeHandler(handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A control-plane connection left open keeps a non-daemon thread alive, and the interpreter
    would wait for it forever after the summary (a CI run that never ends). Fail loudly instead."""
    import os
    import sys
    import threading

    left = [t.name for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    if left:
        sys.stderr.write(f"\n{len(left)} SQLite connection thread(s) were never closed: a test leaks a ControlPlane\n")
        sys.stderr.flush()
        os._exit(3)
