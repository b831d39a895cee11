from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.auth.helpers import RELAXED
from tests.fixtures.daemon import RunningDaemon, running_daemon


@pytest.fixture
async def relaxed(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[RunningDaemon]:
    """A daemon whose sign-in rate limits do not get in the way of flow tests."""
    async with running_daemon(tmp_path / "state", pg, **RELAXED) as running:
        yield running
