from __future__ import annotations

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
