from __future__ import annotations

from appliance.gateway.usage import RequestCounter
from tests.fixtures.daemon import RunningDaemon


def test_counts_the_last_24_hours_only() -> None:
    now = [1_000_000.0]
    counter = RequestCounter(clock=lambda: now[0])
    for _ in range(3):
        counter.hit("a")
    counter.hit("b")
    now[0] += 23 * 3600
    counter.hit("a")
    assert (counter.last_24h("a"), counter.last_24h("b"), counter.last_24h("c")) == (4, 1, 0)
    now[0] += 2 * 3600
    assert counter.last_24h("a") == 1
    assert counter.last_24h("b") == 0


async def test_project_overview_reports_requests(atlas: RunningDaemon) -> None:
    _, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "counted"})
    for _ in range(3):
        assert (await atlas.public("GET", "/v1/db/tables", project["secret_key"]))[0] == 200
    await atlas.public("GET", "/v1/db/tables", "ah_sec_" + "x" * 43)  # a refused key counts nowhere
    _, detail = await atlas.admin("GET", f"/admin/api/projects/{project['id']}")
    assert detail["usage"]["requests_24h"] == 3
