"""Reminders with a controllable clock: each offset once per contact, in their language, never to the done."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.reminders import AFTER_DEADLINE, ReminderPolicy, send_due
from bot.service import Unreachable
from bot.storage import Storage
from conversation.loader import load_survey
from conversation.render import Reply
from conversation.state import Report, ReportStatus, Session

UTC = dt.UTC
SURVEY = load_survey()
POLICY = ReminderPolicy(deadline=dt.date(2021, 12, 31), days_before=(30, 14, 7, 3, 1, 0), hour=9, timezone="UTC")


class Outbox:
    """Records what a reminder run sent, and can play a blocked chat."""

    def __init__(self, blocked: set[int] | None = None) -> None:
        self.sent: list[tuple[int, Reply]] = []
        self.blocked = blocked or set()

    async def __call__(self, chat_id: int, reply: Reply) -> None:
        if chat_id in self.blocked:
            raise Unreachable("Forbidden: bot was blocked by the user")
        self.sent.append((chat_id, reply))

    def to(self, chat_id: int) -> list[str]:
        return [r.text for c, r in self.sent if c == chat_id]


@pytest.fixture
async def storage(tmp_path):
    s = await Storage.open(tmp_path / "db.sqlite3")
    yield s
    await s.close()


async def contact(storage, city, user_id, language="en", answers=None, status=None):
    now = dt.datetime(2021, 10, 1, tzinfo=UTC)
    report = await storage.find_or_create_report(SURVEY.id, city, "Country", None, now)
    token = await storage.create_invitation(report.id, now)
    c = (
        await storage.redeem(
            token, telegram_user_id=user_id, chat_id=user_id, display_name=city, language=language, now=now
        )
    ).contact
    if answers:
        before, _session = await storage.load(c)
        await storage.save(c, before, Report(answers=answers), Session(language=language), now)
    if status is not None:
        await storage.set_status(report.id, status, now)
    return c


def at(day: int, month: int = 12, hour: int = 9) -> dt.datetime:
    return dt.datetime(2021, month, day, hour, 0, tzinfo=UTC)


def test_policy_offsets():
    assert POLICY.current_offset(at(1, 12, 8)) is None  # before the 30-day reminder's hour
    assert POLICY.current_offset(at(1, 12, 9)) == 30
    assert POLICY.current_offset(at(20)) == 14
    assert POLICY.current_offset(at(30)) == 1
    assert POLICY.current_offset(at(31, 12, 10)) == 0
    assert POLICY.current_offset(dt.datetime(2022, 1, 1, 0, 1, tzinfo=UTC)) == AFTER_DEADLINE


async def test_each_offset_once_per_contact_in_language_skipping_done_cities(storage):
    fr = await contact(storage, "Lyon", 101, "fr", answers={"city_name": "Lyon", "core_team": "yes"})
    en = await contact(storage, "Cork", 102, "en")
    await contact(storage, "Done", 103, "en", status=ReportStatus.SUBMITTED)
    await contact(storage, "Yeosu", 104, "en", status=ReportStatus.EXEMPT)
    paused = await contact(storage, "Paused", 105, "en")
    await storage.set_reminders_paused(paused.id, True, now=dt.datetime(2021, 10, 1, tzinfo=UTC))

    out = Outbox()
    result = await send_due(storage, SURVEY, POLICY, at(24), out)  # 7 days before
    assert result.sent == 2
    assert sorted(c for c, _ in out.sent) == [fr.chat_id, en.chat_id]
    (fr_text,) = out.to(101)
    assert "7 jours" in fr_text and "31 décembre 2021" in fr_text  # French words, French date
    (en_text,) = out.to(102)
    assert "in 7 days, on 31 December 2021" in en_text
    assert "not started yet" in en_text
    assert "You have answered" not in en_text
    assert out.sent[0][1].buttons  # a button that continues the report

    # Second run at the same offset, even after a "restart" (new Storage object): nothing.
    again = await send_due(storage, SURVEY, POLICY, at(25), Outbox())
    assert again.sent == 0

    # Next offset fires once more.
    later = Outbox()
    assert (await send_due(storage, SURVEY, POLICY, at(28), later)).sent == 2
    assert "in 3 days" in later.to(102)[0]


async def test_blocked_contact_recorded_and_others_reached(storage):
    await contact(storage, "A", 201)
    await contact(storage, "B", 202)
    out = Outbox(blocked={201})
    result = await send_due(storage, SURVEY, POLICY, at(1), out)
    assert (result.sent, result.blocked) == (1, 1)
    assert (await storage.contact_by_telegram_user(201)).blocked
    # A blocked contact is not tried again.
    assert (await send_due(storage, SURVEY, POLICY, at(18), Outbox())).blocked == 0


async def test_failed_send_is_retried_next_run(storage):
    await contact(storage, "A", 301)

    async def broken(chat_id, reply):
        raise ConnectionError("network down")

    first = await send_due(storage, SURVEY, POLICY, at(1), broken)
    assert first.failed == 1
    out = Outbox()
    assert (await send_due(storage, SURVEY, POLICY, at(1, 12, 10), out)).sent == 1


async def test_after_deadline_notice_mentions_late_policy(storage):
    await contact(storage, "A", 401)
    out = Outbox()
    strict = ReminderPolicy(deadline=POLICY.deadline, accept_late=False)
    await send_due(storage, SURVEY, strict, dt.datetime(2022, 1, 2, 9, tzinfo=UTC), out)
    (text,) = out.to(401)
    assert "has passed" in text and "can no longer be submitted" in text


async def test_restart_between_runs_sends_nothing_twice(tmp_path):
    path = tmp_path / "db.sqlite3"
    s1 = await Storage.open(path)
    await contact(s1, "A", 501)
    assert (await send_due(s1, SURVEY, POLICY, at(2), Outbox())).sent == 1
    await s1.close()
    s2 = await Storage.open(path)
    try:
        assert (await send_due(s2, SURVEY, POLICY, at(3), Outbox())).sent == 0
    finally:
        await s2.close()


async def test_broadcast_over_the_bot_api_keeps_pace_and_reaches_everyone_once(storage):
    """90 contacts through python-telegram-bot against the fake server limiting to 30 messages/s."""
    import time

    from telegram import Bot

    from bot.telegram.outputs import broadcaster
    from tests.fakes.bot_api import FakeBotAPI

    with FakeBotAPI() as api:
        api.rate_limit_per_second = 30
        for user_id in range(2000, 2090):
            api.add_user(user_id)
            await contact(storage, f"City {user_id}", user_id)
        api.block(2005)
        async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
            started = time.monotonic()
            result = await send_due(storage, SURVEY, POLICY, at(24), broadcaster(bot))
            elapsed = time.monotonic() - started
        assert (result.sent, result.blocked, result.failed) == (89, 1, 0)
        delivered = [int(r.int_param("chat_id") or 0) for r in api.calls_to("sendMessage", ok=True)]
        assert sorted(delivered) == [u for u in range(2000, 2090) if u != 2005]  # each exactly once
        assert elapsed >= 89 / 30 - 0.2  # under Telegram's limit
        blocked = await storage.contact_by_telegram_user(2005)
        assert blocked is not None and blocked.blocked
