"""Failure and recovery notices for scheduled jobs: Discord webhooks and email (SMTP).

Rate limit, per job: at most one failure notice per ``failure_interval`` (15 minutes by
default); further failures in that window are counted and mentioned in the next notice. A
recovery notice is sent once, on the first success after a failure streak that was announced —
so a flapping job produces at most one failure/recovery pair per window.

``Notifier.run_finished`` never raises: a channel that fails is logged and the scheduler loop
goes on. Each channel send has its own timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Literal, Protocol

from yarl import URL

from appliance.scheduler.safehttp import SafeHttpClient, TargetRefused

log = logging.getLogger("appliance.scheduler.notify")

NoticeKind = Literal["failed", "recovered"]
DISCORD_CONTENT_LIMIT = 2000


class NotifyError(Exception):
    """A channel could not deliver a notice. The message never contains secrets."""


@dataclass(frozen=True)
class JobRunNotice:
    """The outcome of one run, as the notifier needs it."""

    job_id: str
    job_name: str
    status: Literal["success", "fail", "timeout"]
    project_id: str | None = None
    http_status: int | None = None
    error_text: str | None = None


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    subject: str
    text: str


class Channel(Protocol):
    name: str

    async def send(self, notice: Notice) -> None: ...


class DiscordChannel:
    """POSTs ``{"content": ...}`` to a Discord webhook through the guarded HTTP client."""

    name = "discord"

    def __init__(self, client: SafeHttpClient, webhook_url: str) -> None:
        try:
            client.allowlist.check_url(URL(webhook_url))
        except (ValueError, TypeError, TargetRefused) as exc:
            # The webhook URL embeds its token: name the setting, never the value.
            raise ValueError(f"discord webhook URL is not usable: {exc}") from None
        self._client = client
        self._url = webhook_url

    async def send(self, notice: Notice) -> None:
        payload = {
            "content": notice.text[:DISCORD_CONTENT_LIMIT],
            # Job names and error texts come from users: never let them ping anyone.
            "allowed_mentions": {"parse": []},
        }
        result = await self._client.fetch("POST", self._url, json_body=payload, max_body=1024)
        if not 200 <= result.status < 300:
            raise NotifyError(f"discord webhook answered HTTP {result.status}")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    use_tls: bool = False  # implicit TLS (port 465); excludes starttls
    username: str | None = None
    password: str | None = field(default=None, repr=False)


class EmailChannel:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.recipients:
            raise ValueError("email notifications need at least one recipient")
        self._settings = settings

    async def send(self, notice: Notice) -> None:
        s = self._settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = ", ".join(s.recipients)
        message["Subject"] = notice.subject
        message.set_content(notice.text)
        import aiosmtplib  # loaded only by nodes that send mail

        await aiosmtplib.send(
            message,
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.use_tls,
            start_tls=s.starttls and not s.use_tls,
            timeout=None,  # bounded by the notifier's per-channel timeout
        )


@dataclass
class _JobState:
    failing: bool = False
    announced: bool = False  # a failure notice went out for the current streak
    streak: int = 0
    suppressed: int = 0
    last_failure_notice: datetime | None = None


def _describe_failure(n: JobRunNotice) -> str:
    parts: list[str] = [n.status]
    if n.http_status is not None:
        parts.append(f"HTTP {n.http_status}")
    detail = f" — {n.error_text}" if n.error_text else ""
    return f"{', '.join(parts)}{detail}"


class Notifier:
    """Decides which notices a run deserves and fans them out to every channel."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        failure_interval: timedelta = timedelta(minutes=15),
        channel_timeout: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._channels = tuple(channels)
        self._interval = failure_interval
        self._timeout = channel_timeout
        self._clock = clock
        self._jobs: dict[str, _JobState] = {}

    async def run_finished(self, run: JobRunNotice, *, previously_failing: bool = False) -> Notice | None:
        """Record a run and send what it calls for; return the notice sent, if any.

        ``previously_failing``: the stored status of the job's previous run, so a recovery is
        still announced after a daemon restart lost the in-memory state. Never raises.
        """
        try:
            notice = self._decide(run, previously_failing)
            if notice is not None:
                await self._deliver(run.job_id, notice)
            return notice
        except Exception:
            log.exception("notification bookkeeping failed for job %s", run.job_id)
            return None

    def set_channels(self, channels: Sequence[Channel]) -> None:
        """Replace the channels (the notification targets are runtime settings); later notices use them."""
        self._channels = tuple(channels)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self._channels

    def forget(self, job_id: str) -> None:
        """Drop the state of a deleted job. Idempotent."""
        self._jobs.pop(job_id, None)

    def _decide(self, run: JobRunNotice, previously_failing: bool) -> Notice | None:
        now = self._clock()
        state = self._jobs.get(run.job_id)
        if state is None:
            state = _JobState(failing=previously_failing, announced=previously_failing)
            self._jobs[run.job_id] = state
        project = f" (project {run.project_id})" if run.project_id else ""
        if run.status != "success":
            state.failing = True
            state.streak += 1
            last = state.last_failure_notice
            if last is not None and now - last < self._interval:
                state.suppressed += 1
                return None
            more = f"\n{state.suppressed} more failure(s) since the last notice." if state.suppressed else ""
            state.last_failure_notice, state.suppressed, state.announced = now, 0, True
            return Notice(
                "failed",
                f"[AtlasHub] Job {run.job_name} failed",
                f"AtlasHub job '{run.job_name}'{project} failed: {_describe_failure(run)}{more}",
            )
        notice = None
        if state.failing and state.announced:
            runs = f" after {state.streak} failed run(s)" if state.streak else ""
            notice = Notice(
                "recovered",
                f"[AtlasHub] Job {run.job_name} recovered",
                f"AtlasHub job '{run.job_name}'{project} succeeded again{runs}.",
            )
        state.failing, state.announced, state.streak, state.suppressed = False, False, 0, 0
        last = state.last_failure_notice
        if last is None or now - last >= self._interval:
            del self._jobs[run.job_id]  # nothing left to rate-limit
        return notice

    async def broadcast(self, subject: str, text: str) -> None:
        """A platform alert that is not about one job (e.g. backups); not rate-limited per job."""
        await self._deliver("platform", Notice("failed", subject, text))

    async def _deliver(self, job_id: str, notice: Notice) -> None:
        await asyncio.gather(*(self._send_one(channel, job_id, notice) for channel in self._channels))

    async def _send_one(self, channel: Channel, job_id: str, notice: Notice) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await channel.send(notice)
            log.info("sent %s notice for job %s via %s", notice.kind, job_id, channel.name)
        except TimeoutError:
            log.warning("%s notice for job %s via %s timed out", notice.kind, job_id, channel.name)
        except Exception as exc:
            log.warning(
                "%s notice for job %s via %s failed: %s: %s",
                notice.kind,
                job_id,
                channel.name,
                type(exc).__name__,
                exc,
            )
