"""Outbound HTTP for scheduled jobs and webhooks, restricted to allowlisted targets.

Rules, for the first request and every redirect hop: the URL is http(s) without credentials
and its host(:port) matches an entry of ``scheduler.http_allowlist``; then ``GuardedResolver``,
inside aiohttp's connector, drops private, loopback, link-local, cloud-metadata, unspecified,
multicast and reserved addresses unless that very IP (and port) is itself an allowlist entry.
aiohttp connects to the addresses the resolver returns, so the address checked is the address
connected to: a DNS answer cannot change between check and use. An allowlisted *name* never
unlocks a private address.

Header values may carry secrets: they are never logged, and they are dropped when a redirect
leaves the original origin. Logs name only method, host and status.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from appliance.errors import BadRequest

log = logging.getLogger("appliance.scheduler.http")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BODY_EXCERPT_BYTES = 64 * 1024
# A run keeps up to this much of the answer; past the excerpt it goes to storage (log_object_key).
FULL_BODY_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 5
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 429})
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Addresses Python still calls global that reach cloud metadata or protocol services.
_EXTRA_BLOCKED = tuple(ipaddress.ip_network(n) for n in ("168.63.129.16/32", "192.0.0.0/24", "fd00:ec2::254/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The request target breaks the allowlist or address rules. Never retried."""


class AllowlistError(ValueError):
    """Invalid allowlist entries; ``problems`` names every bad entry (for ConfigError)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def is_restricted_address(ip: IPAddress) -> bool:
    """True for any address that is not plainly public unicast."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and is_restricted_address(embedded):
            return True
    return not ip.is_global or ip.is_multicast or any(ip in net for net in _EXTRA_BLOCKED)


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class AllowEntry:
    host: str  # lowercase name, suffix (for wildcards) or canonical IP text
    port: int | None = None
    wildcard: bool = False
    ip: IPAddress | None = None


def _parse_port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("port must be a number from 1 to 65535")
    return int(text)


def _parse_entry(text: str) -> AllowEntry:
    if text.startswith("[") or text.count(":") > 1:
        inner, sep, rest = text[1:].partition("]") if text.startswith("[") else (text, "]", "")
        ip6 = _ip_or_none(inner)
        if not sep or (rest and not rest.startswith(":")) or not isinstance(ip6, ipaddress.IPv6Address):
            raise ValueError("expected an IPv6 address, [IPv6] or [IPv6]:port")
        return AllowEntry(str(ip6), _parse_port(rest[1:]) if rest else None, ip=ip6)
    host, sep, port_text = text.partition(":")
    port = _parse_port(port_text) if sep else None
    ip = _ip_or_none(host)
    if ip is not None:
        return AllowEntry(str(ip), port, ip=ip)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    labels = name.rstrip(".").split(".")
    if not all(_LABEL.match(label) for label in labels) or len(name) > 253:
        raise ValueError("not a valid host name (ASCII/punycode only; '*.' only as a prefix)")
    if labels[-1].isdigit():
        raise ValueError("looks like an IP address but is not one")
    if wildcard and len(labels) < 2:
        raise ValueError("a wildcard needs at least two labels after '*.'")
    return AllowEntry(".".join(labels), port, wildcard=wildcard)


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str], *, key: str = "scheduler.http_allowlist") -> Allowlist:
        """Entries: ``host``, ``host:port``, ``*.domain`` (subdomains only), IPv4, ``[IPv6]:port``.

        Blank entries are ignored; every invalid one is reported at once (AllowlistError).
        """
        parsed: list[AllowEntry] = []
        problems: list[str] = []
        for raw in entries:
            text = raw.strip().lower()
            if not text:
                continue
            try:
                parsed.append(_parse_entry(text))
            except ValueError as exc:
                problems.append(f"{key}: entry {raw.strip()!r} is invalid: {exc}")
        if problems:
            raise AllowlistError(problems)
        return cls(tuple(parsed))

    @classmethod
    def from_config(cls, value: str, *, key: str = "scheduler.http_allowlist") -> Allowlist:
        """Parse the comma-separated config form, e.g. ``127.0.0.1:9999,hooks.example.com``."""
        return cls.parse(value.split(","), key=key)

    def permits_host(self, host: str, port: int) -> bool:
        ip = _ip_or_none(host)
        for entry in self.entries:
            if entry.port is not None and entry.port != port:
                continue
            if entry.ip is not None:
                if ip == entry.ip:
                    return True
            elif ip is None and (host.endswith("." + entry.host) if entry.wildcard else host == entry.host):
                return True
        return False

    def permits_ip(self, ip: IPAddress, port: int) -> bool:
        """Whether this address may be used: public, or itself listed as an IP entry."""
        if not is_restricted_address(ip):
            return True
        return any(e.ip == ip and e.port in (None, port) for e in self.entries)

    def check_url(self, url: URL) -> tuple[str, int]:
        """Return (host, port) of an acceptable target or raise TargetRefused."""
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise TargetRefused("only absolute http(s) URLs are allowed")
        if url.user is not None or url.password is not None:
            raise TargetRefused("credentials in URLs are not allowed; send them in a header")
        host = url.raw_host.lower().rstrip(".")
        port = url.explicit_port or (443 if url.scheme == "https" else 80)
        if not self.permits_host(host, port):
            raise TargetRefused(f"{_hostport(host, port)} is not in scheduler.http_allowlist")
        ip = _ip_or_none(host)
        if ip is not None and not self.permits_ip(ip, port):
            raise TargetRefused(f"address {ip} is not allowed")
        return host, port


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GuardedResolver(AbstractResolver):
    """Resolves through ``inner`` and keeps only addresses the allowlist lets us connect to."""

    def __init__(self, allowlist: Allowlist, inner: AbstractResolver | None = None) -> None:
        self._allowlist = allowlist
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._permitted(r["host"], port)]
        if not allowed:
            raise TargetRefused(f"{_hostport(host, port)} resolves only to addresses that are not allowed")
        return allowed

    def _permitted(self, address: str, port: int) -> bool:
        ip = _ip_or_none(address.split("%", 1)[0])
        return ip is not None and self._allowlist.permits_ip(ip, port)

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class FetchResult:
    status: int
    body: bytes


class SafeHttpClient:
    """One guarded aiohttp session. ``close()`` is idempotent; call it on shutdown."""

    def __init__(self, allowlist: Allowlist, *, resolver: AbstractResolver | None = None) -> None:
        self.allowlist = allowlist
        self._resolver = GuardedResolver(allowlist, resolver)
        connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False)
        # trust_env=False: an HTTP(S)_PROXY from the environment would bypass the address rules.
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        if not self._session.closed:
            await self._session.close()
            await self._resolver.close()

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        max_body: int = BODY_EXCERPT_BYTES,
    ) -> FetchResult:
        """One request, following up to MAX_REDIRECTS redirects, each hop checked again."""
        try:
            current = URL(url)
        except (ValueError, TypeError):
            raise TargetRefused("the URL cannot be parsed") from None
        send_headers = dict(headers or {})
        for hop in range(MAX_REDIRECTS + 1):
            host, port = self.allowlist.check_url(current)
            kwargs: dict[str, Any] = {"headers": send_headers, "allow_redirects": False}
            if json_body is not None:
                kwargs["json"] = json_body
            async with self._session.request(method, current, **kwargs) as resp:
                log.info("http %s %s -> %s", method, _hostport(host, port), resp.status)
                location = resp.headers.get("Location")
                if resp.status not in _REDIRECTS or not location:
                    return FetchResult(resp.status, await _read_limited(resp, max_body))
            if hop == MAX_REDIRECTS:
                raise TargetRefused(f"more than {MAX_REDIRECTS} redirects")
            try:
                target = current.join(URL(location))
            except ValueError:
                raise TargetRefused("redirect Location cannot be parsed") from None
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else method
                json_body = None
            if target.origin() != current.origin():
                send_headers = {}
            current = target
        raise AssertionError("unreachable")


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    body = b""
    while len(body) < limit and (chunk := await resp.content.read(limit - len(body))):
        body += chunk
    return body


@dataclass(frozen=True)
class HttpJobSpec:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    timeout_ms: int = 10_000
    retries: int = 0
    retry_backoff_ms: int = 1_000
    max_backoff_ms: int = 60_000
    jitter: float = 0.0  # 0..1: each delay is shortened by up to this fraction, at random


Outcome = Literal["success", "fail", "timeout"]


@dataclass(frozen=True)
class AttemptResult:
    number: int
    outcome: Outcome
    http_status: int | None
    duration_ms: int
    error_text: str | None


@dataclass(frozen=True)
class HttpJobResult:
    status: Outcome
    http_status: int | None
    duration_ms: int
    body_excerpt: str | None
    error_text: str | None
    attempts: list[AttemptResult]
    # The whole answer (up to FULL_BODY_BYTES) when it is longer than the excerpt.
    full_body: bytes | None = None


def _field_error(field_name: str, message: str, code: str = "invalid_value") -> BadRequest:
    return BadRequest(message, code=code, details={"field": field_name})


def validate_http_job(spec: HttpJobSpec, allowlist: Allowlist) -> HttpJobSpec:
    """Check a job definition at creation time; BadRequest (400) names the field."""
    try:
        url = URL(spec.url)
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise ValueError("not an absolute http(s) URL")
        allowlist.check_url(url)
    except (ValueError, TypeError):
        raise _field_error("http_url", "http_url must be an absolute http(s) URL", "invalid_url") from None
    except TargetRefused as exc:
        raise _field_error("http_url", f"http_url refused: {exc}", "target_not_allowed") from None
    method = spec.method.upper()
    if method not in METHODS:
        raise _field_error("http_method", f"http_method must be one of {', '.join(sorted(METHODS))}")
    for name, value in spec.headers.items():
        if not isinstance(value, str) or not _HEADER_NAME.match(name) or name.lower() in _FORBIDDEN_HEADERS:
            raise _field_error("http_headers_json", f"header {name!r} is not allowed or not a string")
        if "\r" in value or "\n" in value:
            raise _field_error("http_headers_json", f"header {name!r} contains a line break")
    for key, number, low, high in (
        ("timeout_ms", spec.timeout_ms, 1, 300_000),
        ("retries", spec.retries, 0, 10),
        ("retry_backoff_ms", spec.retry_backoff_ms, 0, 3_600_000),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise _field_error(key, f"{key} must be an integer from {low} to {high}")
    return spec if method == spec.method else replace(spec, method=method)


def backoff_delay(spec: HttpJobSpec, retry_index: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``retry_index`` (0-based): exponential, capped, jittered."""
    delay_ms = min(spec.retry_backoff_ms * 2**retry_index, spec.max_backoff_ms)
    return delay_ms * (1 - spec.jitter * rand()) / 1000


async def run_http_job(
    client: SafeHttpClient,
    spec: HttpJobSpec,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> HttpJobResult:
    """Run one job: up to ``1 + retries`` attempts; success only on a 2xx answer.

    Retried: timeouts, connection errors, 5xx, 408 and 429. Not retried: refused targets
    and other 4xx. The result's duration covers all attempts and waits.
    """
    started = clock()
    attempts: list[AttemptResult] = []
    body_excerpt: str | None = None
    full_body: bytes | None = None
    for number in range(1, spec.retries + 2):
        attempt_start, http_status, error_text, retryable = clock(), None, None, True
        try:
            async with asyncio.timeout(spec.timeout_ms / 1000):
                fetched = await client.fetch(
                    spec.method, spec.url, headers=spec.headers, json_body=spec.json_body, max_body=FULL_BODY_BYTES
                )
            http_status = fetched.status
            body_excerpt = fetched.body[:BODY_EXCERPT_BYTES].decode("utf-8", errors="replace")
            full_body = fetched.body if len(fetched.body) > BODY_EXCERPT_BYTES else None
            outcome: Outcome = "success" if 200 <= fetched.status < 300 else "fail"
            if outcome == "fail":
                error_text = f"HTTP {fetched.status}"
                retryable = fetched.status >= 500 or fetched.status in _RETRYABLE_STATUS
        except TimeoutError:
            outcome, error_text = "timeout", f"timed out after {spec.timeout_ms} ms"
        except TargetRefused as exc:
            outcome, error_text, retryable = "fail", f"target refused: {exc}", False
        except aiohttp.InvalidURL:
            outcome, error_text, retryable = "fail", "invalid URL", False
        except (aiohttp.ClientError, OSError) as exc:
            # ``message`` rather than str(): a ClientResponseError's text carries the full URL.
            outcome, error_text = "fail", f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:500]
        attempts.append(AttemptResult(number, outcome, http_status, int((clock() - attempt_start) * 1000), error_text))
        if outcome == "success" or not retryable or number > spec.retries:
            break
        await sleep(backoff_delay(spec, number - 1, rand))
    last = attempts[-1]
    return HttpJobResult(
        status=last.outcome,
        http_status=last.http_status,
        duration_ms=int((clock() - started) * 1000),
        body_excerpt=body_excerpt if last.http_status is not None else None,
        error_text=last.error_text,
        attempts=attempts,
        full_body=full_body if last.http_status is not None else None,
    )
