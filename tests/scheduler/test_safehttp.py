from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from appliance.errors import BadRequest
from appliance.scheduler.safehttp import (
    BODY_EXCERPT_BYTES,
    AllowEntry,
    Allowlist,
    AllowlistError,
    HttpJobSpec,
    SafeHttpClient,
    backoff_delay,
    is_restricted_address,
    run_http_job,
    validate_http_job,
)

# ---------------------------------------------------------------- allowlist parsing (pure)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("hooks.example.com", AllowEntry("hooks.example.com")),
        (" Hooks.Example.COM. ", AllowEntry("hooks.example.com")),
        ("hooks.example.com:8443", AllowEntry("hooks.example.com", 8443)),
        ("*.example.com", AllowEntry("example.com", wildcard=True)),
        ("127.0.0.1:9999", AllowEntry("127.0.0.1", 9999, ip=ipaddress.ip_address("127.0.0.1"))),
        ("[::1]:8080", AllowEntry("::1", 8080, ip=ipaddress.ip_address("::1"))),
        ("[fd00::1]", AllowEntry("fd00::1", ip=ipaddress.ip_address("fd00::1"))),
        ("2001:db8::1", AllowEntry("2001:db8::1", ip=ipaddress.ip_address("2001:db8::1"))),
    ],
)
def test_allowlist_entries(entry: str, expected: AllowEntry) -> None:
    assert Allowlist.parse([entry]).entries == (expected,)


@pytest.mark.parametrize(
    "entry",
    [
        "http://hooks.example.com",
        "hooks example.com",
        "host:0",
        "host:65536",
        "host:http",
        "*.com",
        "foo.*.example.com",
        "[::1",
        "[127.0.0.1]",
        "::1::2",
        "1.2.3.999",
        "exämple.com",
        "-bad.example.com",
    ],
)
def test_invalid_allowlist_entries_are_named(entry: str) -> None:
    with pytest.raises(AllowlistError) as info:
        Allowlist.parse(["ok.example.com", entry])
    assert len(info.value.problems) == 1
    assert "scheduler.http_allowlist" in info.value.problems[0]
    assert repr(entry.strip()) in info.value.problems[0]


def test_allowlist_reports_all_problems_and_reads_the_config_form() -> None:
    with pytest.raises(AllowlistError) as info:
        Allowlist.from_config("a b,ok.example.com,host:0,")
    assert len(info.value.problems) == 2
    assert len(Allowlist.from_config("127.0.0.1:9999, hooks.example.com,").entries) == 2


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("hooks.example.com", 443, True),
        ("hooks.example.com", 80, True),
        ("evil-hooks.example.com", 443, False),
        ("api.internal.example.org", 8443, True),
        ("api.internal.example.org", 443, False),
        ("internal.example.org", 8443, False),  # a wildcard covers subdomains only
        ("127.0.0.1", 9999, True),
        ("127.0.0.1", 9998, False),
        ("::1", 8080, True),
        ("0:0::1", 8080, True),
    ],
)
def test_permits_host(host: str, port: int, allowed: bool) -> None:
    allowlist = Allowlist.parse(["hooks.example.com", "*.internal.example.org:8443", "127.0.0.1:9999", "[::1]:8080"])
    assert allowlist.permits_host(host, port) is allowed


@pytest.mark.parametrize(
    ("address", "restricted"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("127.0.0.2", True),
        ("169.254.169.254", True),
        ("168.63.129.16", True),
        ("192.0.0.192", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("239.1.2.3", True),
        ("240.0.0.1", True),
        ("::", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("64:ff9b::a9fe:a9fe", True),
        ("2002:c0a8:0101::1", True),
    ],
)
def test_restricted_addresses(address: str, restricted: bool) -> None:
    assert is_restricted_address(ipaddress.ip_address(address)) is restricted


ALLOW = Allowlist.parse(["hooks.example.com"])


@pytest.mark.parametrize(
    ("spec", "field", "code"),
    [
        (HttpJobSpec("not a url"), "http_url", "invalid_url"),
        (HttpJobSpec("ftp://hooks.example.com/x"), "http_url", "invalid_url"),
        (HttpJobSpec("http://[::1/x"), "http_url", "invalid_url"),
        (HttpJobSpec("https://other.example.com/x"), "http_url", "target_not_allowed"),
        (HttpJobSpec("https://user:pw@hooks.example.com/x"), "http_url", "target_not_allowed"),
        (HttpJobSpec("http://169.254.169.254/latest"), "http_url", "target_not_allowed"),
        (HttpJobSpec("https://hooks.example.com/", method="TRACE"), "http_method", "invalid_value"),
        (HttpJobSpec("https://hooks.example.com/", headers={"Host": "x"}), "http_headers_json", "invalid_value"),
        (
            HttpJobSpec("https://hooks.example.com/", headers={"X-A": "1\r\nX-B: 2"}),
            "http_headers_json",
            "invalid_value",
        ),
        (HttpJobSpec("https://hooks.example.com/", headers={"bad name": "1"}), "http_headers_json", "invalid_value"),
        (HttpJobSpec("https://hooks.example.com/", timeout_ms=0), "timeout_ms", "invalid_value"),
        (HttpJobSpec("https://hooks.example.com/", retries=11), "retries", "invalid_value"),
        (HttpJobSpec("https://hooks.example.com/", retry_backoff_ms=-1), "retry_backoff_ms", "invalid_value"),
    ],
)
def test_validate_http_job_names_the_field(spec: HttpJobSpec, field: str, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_http_job(spec, ALLOW)
    assert (info.value.status, info.value.code, info.value.details) == (400, code, {"field": field})


def test_validate_http_job_normalizes_the_method() -> None:
    spec = validate_http_job(HttpJobSpec("https://hooks.example.com/", method="post"), ALLOW)
    assert spec.method == "POST"


@pytest.mark.parametrize(
    ("backoff_ms", "retry", "jitter", "rand", "seconds"),
    [
        (100, 0, 0.0, 0.5, 0.1),
        (100, 3, 0.0, 0.5, 0.8),
        (100, 20, 0.0, 0.5, 60.0),  # capped by max_backoff_ms
        (100, 1, 0.5, 1.0, 0.1),
        (100, 1, 0.5, 0.0, 0.2),
    ],
)
def test_backoff_delay(backoff_ms: int, retry: int, jitter: float, rand: float, seconds: float) -> None:
    spec = HttpJobSpec("https://x", retry_backoff_ms=backoff_ms, jitter=jitter)
    assert backoff_delay(spec, retry, lambda: rand) == pytest.approx(seconds)


# ---------------------------------------------------------------- real HTTP targets on loopback


@dataclass
class Target:
    port: int
    hits: dict[str, int]
    seen: list[dict[str, Any]] = field(default_factory=list)


RELEASE = web.AppKey("release", asyncio.Event)
TARGET = web.AppKey("target", Target)


async def _handler(request: web.Request) -> web.StreamResponse:
    target = request.app[TARGET]
    name = request.match_info["name"]
    target.hits[name] = target.hits.get(name, 0) + 1
    port = target.port
    if name == "ok":
        return web.Response(text="hello")
    if name == "big":
        return web.Response(body=b"x" * (BODY_EXCERPT_BYTES + 5000) + b"\xff")
    if name == "flaky":
        return web.Response(status=500 if target.hits[name] <= 2 else 200, text=f"try {target.hits[name]}")
    if name == "error":
        return web.Response(status=500, text="boom")
    if name == "missing":
        return web.Response(status=404)
    if name == "hang":
        await request.app[RELEASE].wait()
        return web.Response(text="late")
    if name == "echo":
        body = await request.json() if request.can_read_body else None
        target.seen.append({"method": request.method, "body": body, "secret": request.headers.get("X-Secret")})
        return web.Response(text="echo")
    redirects = {
        "to-ok": "/ok",
        "to-loopback-2": f"http://127.0.0.2:{port}/ok",
        "to-metadata": "http://169.254.169.254/latest/meta-data/",
        "to-metadata-name": f"http://metadata.test:{port}/ok",
        "loop": "/loop",
        "to-other-origin": f"http://localhost:{port}/echo",
        "see-other": "/echo",
    }
    status = 303 if name == "see-other" else 302
    raise web.HTTPFound(redirects[name]) if status == 302 else web.HTTPSeeOther(redirects[name])


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app[TARGET] = state = Target(0, {})
    app.router.add_route("*", "/{name}", _handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    state.port = server.port
    yield state
    app[RELEASE].set()
    await server.close()


class MapResolver(AbstractResolver):
    """Test DNS: fixed answers, to prove the address rules apply to resolved IPs."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.answers:
            raise OSError(f"unknown host {host}")
        address = self.answers[host]
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


FAST = {"timeout_ms": 2000, "retry_backoff_ms": 10}


@pytest.mark.parametrize(
    ("case", "path", "spec", "allow", "dns", "status", "http_status", "attempts", "delays", "error"),
    [
        ("200", "http://127.0.0.1:{port}/ok", {}, ["127.0.0.1:{port}"], None, "success", 200, 1, [], None),
        (
            "500 then 200",
            "http://127.0.0.1:{port}/flaky",
            {"retries": 3},
            ["127.0.0.1:{port}"],
            None,
            "success",
            200,
            3,
            [0.01, 0.02],
            None,
        ),
        (
            "500 until retries run out",
            "http://127.0.0.1:{port}/error",
            {"retries": 2},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            500,
            3,
            [0.01, 0.02],
            "HTTP 500",
        ),
        (
            "404 is not retried",
            "http://127.0.0.1:{port}/missing",
            {"retries": 2},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            404,
            1,
            [],
            "HTTP 404",
        ),
        (
            "hang: timeout, retry, timeout",
            "http://127.0.0.1:{port}/hang",
            {"retries": 1, "timeout_ms": 150},
            ["127.0.0.1:{port}"],
            None,
            "timeout",
            None,
            2,
            [0.01],
            "timed out after 150 ms",
        ),
        (
            "not allowlisted",
            "http://127.0.0.1:{port}/ok",
            {"retries": 2},
            ["hooks.example.com"],
            None,
            "fail",
            None,
            1,
            [],
            "not in scheduler.http_allowlist",
        ),
        (
            "port not allowlisted",
            "http://127.0.0.1:{port}/ok",
            {},
            ["127.0.0.1:1"],
            None,
            "fail",
            None,
            1,
            [],
            "not in scheduler.http_allowlist",
        ),
        (
            "localhost not allowlisted",
            "http://localhost:{port}/ok",
            {},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            None,
            1,
            [],
            "not in scheduler.http_allowlist",
        ),
        (
            "localhost allowlisted, its loopback address not",
            "http://localhost:{port}/ok",
            {},
            ["localhost:{port}"],
            None,
            "fail",
            None,
            1,
            [],
            "resolves only to addresses that are not allowed",
        ),
        (
            "localhost and its address allowlisted",
            "http://localhost:{port}/ok",
            {},
            ["localhost:{port}", "127.0.0.1:{port}"],
            None,
            "success",
            200,
            1,
            [],
            None,
        ),
        (
            "name resolving to metadata",
            "http://metadata.test:{port}/ok",
            {"retries": 2},
            ["metadata.test:{port}", "127.0.0.1:{port}"],
            {"metadata.test": "169.254.169.254"},
            "fail",
            None,
            1,
            [],
            "resolves only to addresses that are not allowed",
        ),
        (
            "connection goes to the resolved address",
            "http://svc.test:{port}/ok",
            {},
            ["svc.test", "127.0.0.1:{port}"],
            {"svc.test": "127.0.0.1"},
            "success",
            200,
            1,
            [],
            None,
        ),
        (
            "redirect within allowlist",
            "http://127.0.0.1:{port}/to-ok",
            {},
            ["127.0.0.1:{port}"],
            None,
            "success",
            200,
            1,
            [],
            None,
        ),
        (
            "redirect to 127.0.0.2",
            "http://127.0.0.1:{port}/to-loopback-2",
            {"retries": 2},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            None,
            1,
            [],
            "127.0.0.2:{port} is not in",
        ),
        (
            "redirect to 169.254.169.254",
            "http://127.0.0.1:{port}/to-metadata",
            {},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            None,
            1,
            [],
            "169.254.169.254:80 is not in",
        ),
        (
            "redirect to a name resolving to metadata",
            "http://127.0.0.1:{port}/to-metadata-name",
            {},
            ["127.0.0.1:{port}", "metadata.test"],
            {"metadata.test": "169.254.169.254"},
            "fail",
            None,
            1,
            [],
            "resolves only to addresses that are not allowed",
        ),
        (
            "redirect loop",
            "http://127.0.0.1:{port}/loop",
            {"retries": 2},
            ["127.0.0.1:{port}"],
            None,
            "fail",
            None,
            1,
            [],
            "more than 5 redirects",
        ),
    ],
)
async def test_run_http_job(
    target: Target,
    case: str,
    path: str,
    spec: dict[str, Any],
    allow: list[str],
    dns: dict[str, str] | None,
    status: str,
    http_status: int | None,
    attempts: int,
    delays: list[float],
    error: str | None,
) -> None:
    port = target.port
    allowlist = Allowlist.parse([entry.format(port=port) for entry in allow])
    client = SafeHttpClient(allowlist, resolver=MapResolver(dns) if dns is not None else None)
    sleep = SleepRecorder()
    try:
        result = await run_http_job(client, HttpJobSpec(path.format(port=port), **{**FAST, **spec}), sleep=sleep)
    finally:
        await client.close()
    assert (result.status, result.http_status, len(result.attempts)) == (status, http_status, attempts), case
    assert sleep.delays == pytest.approx(delays)
    if error is None:
        assert result.error_text is None
    else:
        assert result.error_text is not None and error.format(port=port) in result.error_text
    assert [a.number for a in result.attempts] == list(range(1, attempts + 1))
    assert result.duration_ms >= sum(a.duration_ms for a in result.attempts) - attempts


async def test_success_keeps_a_truncated_body(target: Target) -> None:
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{target.port}"]))
    try:
        result = await run_http_job(client, HttpJobSpec(f"http://127.0.0.1:{target.port}/big"))
        flaky = await run_http_job(
            client, HttpJobSpec(f"http://127.0.0.1:{target.port}/flaky", retries=1, retry_backoff_ms=1)
        )
    finally:
        await client.close()
    assert result.status == "success"
    assert result.body_excerpt == "x" * BODY_EXCERPT_BYTES
    assert flaky.status == "fail" and flaky.body_excerpt == "try 2"
    assert [a.outcome for a in flaky.attempts] == ["fail", "fail"]


async def test_post_json_headers_and_redirect_rules(target: Target, caplog: pytest.LogCaptureFixture) -> None:
    port = target.port
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{port}", f"localhost:{port}"]))
    secret = {"X-Secret": "s3cr3t-token"}
    caplog.set_level(logging.DEBUG)
    try:
        direct = await run_http_job(client, HttpJobSpec(f"http://127.0.0.1:{port}/echo", "POST", secret, {"a": 1}))
        see_other = await run_http_job(
            client, HttpJobSpec(f"http://127.0.0.1:{port}/see-other", "POST", secret, {"a": 2})
        )
        cross_origin = await run_http_job(
            client, HttpJobSpec(f"http://127.0.0.1:{port}/to-other-origin", "PUT", secret, {"a": 3})
        )
    finally:
        await client.close()
    assert [r.status for r in (direct, see_other)] == ["success", "success"]
    # localhost:port is allowlisted but its loopback address only as 127.0.0.1:port — which it is.
    assert cross_origin.status == "success"
    assert target.seen == [
        {"method": "POST", "body": {"a": 1}, "secret": "s3cr3t-token"},
        {"method": "GET", "body": None, "secret": "s3cr3t-token"},  # 303: same origin keeps headers
        {"method": "PUT", "body": {"a": 3}, "secret": None},  # other origin: headers dropped
    ]
    assert caplog.records, "requests are logged"
    assert all("s3cr3t" not in record.getMessage() for record in caplog.records)
    assert any(f"127.0.0.1:{port} -> 200" in record.getMessage() for record in caplog.records)


async def test_refused_connection_is_retried_as_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{port}"]))
    sleep = SleepRecorder()
    try:
        result = await run_http_job(
            client, HttpJobSpec(f"http://127.0.0.1:{port}/", retries=1, retry_backoff_ms=5), sleep=sleep
        )
    finally:
        await client.close()
    assert result.status == "fail" and len(result.attempts) == 2
    assert result.error_text is not None and "ClientConnectorError" in result.error_text


async def test_client_close_is_idempotent() -> None:
    client = SafeHttpClient(Allowlist())
    await client.close()
    await client.close()


async def test_garbage_response_fails_without_leaking_the_url() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{port}"]))
    try:
        result = await run_http_job(client, HttpJobSpec(f"http://127.0.0.1:{port}/hook?token=s3cr3t"))
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert result.status == "fail" and result.http_status is None
    assert result.error_text is not None and "s3cr3t" not in result.error_text
