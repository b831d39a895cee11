from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from appliance.scheduler.notify import (
    DiscordChannel,
    EmailChannel,
    JobRunNotice,
    Notice,
    Notifier,
    SmtpSettings,
)
from appliance.scheduler.safehttp import Allowlist, SafeHttpClient
from tests.fixtures.discord import Receiver, discord_receiver

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class RecordingChannel:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


def run(status: str, job: str = "j1") -> JobRunNotice:
    return JobRunNotice(job, f"name-{job}", status, http_status=500 if status == "fail" else 200)  # type: ignore[arg-type]


# (minutes since start, job, status) -> kind of notice sent, or None
SCENARIOS: dict[str, list[tuple[int, str, str, str | None]]] = {
    "first failure is announced, recovery once": [
        (0, "j1", "fail", "failed"),
        (1, "j1", "fail", None),
        (2, "j1", "success", "recovered"),
        (3, "j1", "success", None),
    ],
    "flapping job: one failure/recovery pair per 15 minutes": [
        (0, "j1", "fail", "failed"),
        (1, "j1", "success", "recovered"),
        (2, "j1", "fail", None),
        (3, "j1", "success", None),
        (4, "j1", "fail", None),
        (15, "j1", "fail", "failed"),
        (16, "j1", "success", "recovered"),
    ],
    "a long outage is reminded every 15 minutes": [
        (0, "j1", "timeout", "failed"),
        (5, "j1", "fail", None),
        (14, "j1", "fail", None),
        (15, "j1", "fail", "failed"),
        (29, "j1", "fail", None),
        (30, "j1", "fail", "failed"),
    ],
    "jobs are limited independently": [
        (0, "j1", "fail", "failed"),
        (1, "j2", "fail", "failed"),
        (2, "j1", "fail", None),
        (3, "j2", "success", "recovered"),
    ],
    "success alone says nothing": [(0, "j1", "success", None), (20, "j1", "success", None)],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_rate_limited_failure_and_recovery(steps: list[tuple[int, str, str, str | None]]) -> None:
    clock = FakeClock()
    channel = RecordingChannel()
    notifier = Notifier([channel], clock=clock)
    for minutes, job, status, expected in steps:
        clock.now = T0 + timedelta(minutes=minutes)
        sent = await notifier.run_finished(run(status, job))
        assert (sent.kind if sent else None) == expected, (minutes, job, status)
    assert [n.kind for n in channel.sent] == [kind for *_, kind in steps if kind]


async def test_failure_notice_counts_suppressed_failures() -> None:
    clock = FakeClock()
    channel = RecordingChannel()
    notifier = Notifier([channel], clock=clock)
    for minutes in (0, 1, 2, 15):
        clock.now = T0 + timedelta(minutes=minutes)
        await notifier.run_finished(run("fail"))
    await notifier.run_finished(run("success"))
    assert "failed: fail, HTTP 500" in channel.sent[0].text
    assert "2 more failure(s) since the last notice" in channel.sent[1].text
    assert "after 4 failed run(s)" in channel.sent[2].text


async def test_recovery_after_restart_uses_the_stored_previous_status() -> None:
    channel = RecordingChannel()
    notifier = Notifier([channel])
    sent = await notifier.run_finished(run("success"), previously_failing=True)
    assert sent is not None and sent.kind == "recovered"


class BrokenChannel:
    name = "broken"

    async def send(self, notice: Notice) -> None:
        raise RuntimeError("channel down")


class HangingChannel:
    name = "hanging"

    async def send(self, notice: Notice) -> None:
        await asyncio.sleep(30)


async def test_channel_failures_are_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    good = RecordingChannel()
    notifier = Notifier([BrokenChannel(), HangingChannel(), good], channel_timeout=0.05)
    sent = await notifier.run_finished(run("fail"))
    assert sent is not None and good.sent == [sent]
    messages = [r.getMessage() for r in caplog.records]
    assert any("via broken failed: RuntimeError: channel down" in m for m in messages)
    assert any("via hanging timed out" in m for m in messages)


# ---------------------------------------------------------------- Discord: a real local receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with discord_receiver() as state:
        yield state


async def test_discord_webhook_receives_the_notice(receiver: Receiver) -> None:
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{receiver.port}"]))
    url = f"http://127.0.0.1:{receiver.port}/api/webhooks/123/tok3n"
    try:
        notifier = Notifier([DiscordChannel(client, url)])
        await notifier.run_finished(
            JobRunNotice("j1", "nightly @everyone", "timeout", project_id="p1", error_text="timed out after 5 ms")
        )
        await notifier.run_finished(JobRunNotice("j1", "nightly @everyone", "success"))
    finally:
        await client.close()
    assert [p["path"] for p in receiver.payloads] == ["/api/webhooks/123/tok3n"] * 2
    failed, recovered = (p["json"] for p in receiver.payloads)
    assert failed["allowed_mentions"] == {"parse": []}
    assert failed["content"] == ("AtlasHub job 'nightly @everyone' (project p1) failed: timeout — timed out after 5 ms")
    assert recovered["content"] == "AtlasHub job 'nightly @everyone' succeeded again after 1 failed run(s)."


async def test_discord_error_status_is_logged(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 500
    client = SafeHttpClient(Allowlist.parse([f"127.0.0.1:{receiver.port}"]))
    try:
        channel = DiscordChannel(client, f"http://127.0.0.1:{receiver.port}/api/webhooks/1/tok3n")
        assert await Notifier([channel]).run_finished(run("fail")) is not None
    finally:
        await client.close()
    assert any("discord webhook answered HTTP 500" in r.getMessage() for r in caplog.records)
    assert all("tok3n" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "url",
    ["https://discord.com/api/webhooks/1/tok3n", "http://169.254.169.254/api/webhooks/1/tok3n", "nonsense"],
)
async def test_discord_webhook_must_pass_the_allowlist(url: str) -> None:
    client = SafeHttpClient(Allowlist.parse(["hooks.example.com"]))
    try:
        with pytest.raises(ValueError, match="discord webhook URL") as info:
            DiscordChannel(client, url)
    finally:
        await client.close()
    assert "tok3n" not in str(info.value)


# ---------------------------------------------------------------- email: a real SMTP server


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"hunter2"
        if ok:
            self.logins.append(data.login)
        return AuthResult(success=ok)


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[int, Inbox]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, authenticator=inbox.authenticate, auth_require_tls=False, hostname="mx.test"),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    yield port, inbox
    server.close()
    await server.wait_closed()


async def test_email_is_delivered_over_smtp(smtp_server: tuple[int, Inbox]) -> None:
    port, inbox = smtp_server
    settings = SmtpSettings(
        host="127.0.0.1",
        port=port,
        sender="atlashub@example.com",
        recipients=("ops@example.com", "dev@example.com"),
        starttls=False,
        username="atlas",
        password="hunter2",
    )
    assert "hunter2" not in repr(settings)
    notifier = Notifier([EmailChannel(settings)])
    sent = await notifier.run_finished(run("fail"))
    assert sent is not None
    assert inbox.logins == [b"atlas"]
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "atlashub@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[AtlasHub] Job name-j1 failed"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "AtlasHub job 'name-j1' failed: fail, HTTP 500" in body.decode()


async def test_unreachable_smtp_server_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=1, sender="a@example.com", recipients=("b@example.com",))
    caplog.set_level(logging.WARNING)
    assert await Notifier([EmailChannel(settings)]).run_finished(run("fail")) is not None
    assert any("via email failed" in r.getMessage() for r in caplog.records)


def test_email_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        EmailChannel(SmtpSettings(host="h", port=25, sender="a@example.com", recipients=()))
