"""Deadline reminders: what is due, in each contact's language, sent politely and at most once.

Rules of this module:
- One function decides what is due (`due_reminders`, given `now`); one sends (`send_due`).
  The in-bot job and `python -m bot remind` both call `send_due`.
- Each (contact, offset) is claimed in the database before sending and released if the send
  fails, so restarts and a second run never send it twice.
- Only the newest due offset is sent: a bot that was down for a week does not send a backlog.
- Never to submitted or exempt cities, paused contacts, or contacts who blocked the bot.
- Sending stays under Telegram's ~30 messages per second; 429 retry_after is honoured.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.metrics import REMINDERS_SENT
from bot.service import Unreachable
from bot.settings import Settings
from bot.storage import City, Contact, Storage
from conversation import callbacks, engine
from conversation.i18n import Translator, get_translator
from conversation.model import Survey
from conversation.render import Button, Reply, esc, progress_summary
from conversation.state import Report, ReportStatus

logger = logging.getLogger(__name__)

AFTER_DEADLINE = -1  # the offset used for the single "the deadline has passed" notice


@dataclass(frozen=True)
class ReminderPolicy:
    """When reminders go out."""

    deadline: dt.date
    days_before: tuple[int, ...] = (30, 14, 7, 3, 1, 0)
    hour: int = 9
    timezone: str = "UTC"
    accept_late: bool = True

    def send_time(self, offset: int) -> dt.datetime:
        """The moment the reminder `offset` days before the deadline becomes due."""
        day = self.deadline - dt.timedelta(days=offset)
        return dt.datetime.combine(day, dt.time(self.hour), tzinfo=ZoneInfo(self.timezone))

    def deadline_end(self) -> dt.datetime:
        """The end of the deadline day, in the configured time zone."""
        return dt.datetime.combine(self.deadline + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(self.timezone))

    def key(self, survey_id: str, offset: int) -> str:
        """The database key of one reminder (a changed deadline makes new keys)."""
        which = "after" if offset == AFTER_DEADLINE else f"d{offset}"
        return f"{survey_id}:{self.deadline.isoformat()}:{which}"

    def current_offset(self, now: dt.datetime) -> int | None:
        """The newest reminder due at `now`, if any (AFTER_DEADLINE once the deadline is over)."""
        if now >= self.deadline_end():
            return AFTER_DEADLINE
        due = [o for o in sorted(self.days_before) if self.send_time(o) <= now]
        return due[0] if due else None


def policy_from(settings: Settings, survey: Survey) -> ReminderPolicy:
    """The reminder policy the settings describe."""
    return ReminderPolicy(
        deadline=settings.deadline or survey.deadline,
        days_before=settings.reminder_days,
        hour=settings.reminder_hour,
        timezone=settings.timezone,
        accept_late=settings.accept_late_submissions,
    )


@dataclass(frozen=True)
class DueReminder:
    """One reminder to send."""

    contact: Contact
    city: City
    report: Report
    offset: int
    key: str


@dataclass
class SendResult:
    """What a reminder run did."""

    sent: int = 0
    blocked: int = 0
    failed: int = 0
    skipped: int = 0
    keys: list[str] = field(default_factory=list)


async def due_reminders(
    storage: Storage, survey: Survey, policy: ReminderPolicy, now: dt.datetime
) -> list[DueReminder]:
    """Every reminder due at `now` that has not been sent yet."""
    offset = policy.current_offset(now)
    if offset is None:
        return []
    key = policy.key(survey.id, offset)
    waiting = await storage.contacts_awaiting_reminder(survey.id, key)  # one query, not one per contact
    by_report: dict[int, list[Contact]] = {}
    for contact in waiting:
        by_report.setdefault(contact.report_id, []).append(contact)
    due: list[DueReminder] = []
    for report_id, contacts in by_report.items():
        city = await storage.get_report(report_id)
        if city is None or city.status in (ReportStatus.SUBMITTED, ReportStatus.EXEMPT):
            continue
        report = Report(
            answers=await storage.answers_of(report_id),
            attachments=await storage.attachments(report_id),
            status=city.status,
        )
        due.extend(DueReminder(contact, city, report, offset, key) for contact in contacts)
    return due


def reminder_reply(
    survey: Survey, policy: ReminderPolicy, item: DueReminder, tr: Translator, now: dt.datetime
) -> Reply:
    """The reminder message, in the contact's language (days counted from `now`, not from the offset)."""
    _ = tr.t
    deadline = tr.format_date(policy.deadline, "long")
    city = esc(item.city.name)
    if item.offset == AFTER_DEADLINE:
        text = _(
            "The deadline for the Biennial Progress Report of {city} ({date}) has passed.", city=city, date=deadline
        )
        if policy.accept_late:
            text += " " + _("Late reports are still accepted; please complete and submit yours as soon as possible.")
        else:
            text += " " + _(
                "Reports can no longer be submitted. Please contact the coordination team: {email}",
                email=survey.contact_email,
            )
        return Reply("⏰ " + text, ((Button(_("Continue where I stopped"), callbacks.command("begin")),),))
    days_left = (policy.deadline - now.astimezone(ZoneInfo(policy.timezone)).date()).days
    if days_left <= 0:
        head = _("Reminder: the Biennial Progress Report of {city} is due today, {date}.", city=city, date=deadline)
    else:
        head = tr.n(
            "Reminder: the Biennial Progress Report of {city} is due in {count} day, on {date}.",
            "Reminder: the Biennial Progress Report of {city} is due in {count} days, on {date}.",
            days_left,
            city=city,
            date=deadline,
        )
    if not engine.has_started(survey, item.report):
        body = _("You have not started yet. It can be completed over several sessions; every answer is saved at once.")
        button = _("Start the report")
    else:
        body = progress_summary(tr, engine.progress(survey, item.report, None))
        button = _("Continue where I stopped")
    warning = _("Cities that do not submit a complete report by the deadline may not have their membership renewed.")
    return Reply(f"⏰ {head}\n{body}\n\n{warning}", ((Button(button, callbacks.command("begin")),),))


Send = Callable[[int, Reply], Awaitable[object]]


async def send_due(
    storage: Storage,
    survey: Survey,
    policy: ReminderPolicy,
    now: dt.datetime,
    send: Send,
    *,
    concurrency: int = 32,
) -> SendResult:
    """Send every due reminder (the sender paces the calls, see `outputs.Pacer`); report what happened."""
    items = await due_reminders(storage, survey, policy, now)
    result = SendResult()
    gate = asyncio.Semaphore(concurrency)

    async def deliver(item: DueReminder) -> None:
        async with gate:
            await deliver_one(item)

    async def deliver_one(item: DueReminder) -> None:
        if not await storage.record_reminder(item.contact.id, item.key, now):
            result.skipped += 1  # another run claimed it
            return
        tr = get_translator(item.contact.language)
        try:
            assert item.contact.chat_id is not None
            await send(item.contact.chat_id, reminder_reply(survey, policy, item, tr, now))
        except Unreachable:
            result.blocked += 1
            await storage.mark_blocked(item.contact.id, now=now)
        except Exception:  # a failed send is released so the next run tries again
            result.failed += 1
            logger.warning("reminder to contact %s failed", item.contact.id, exc_info=True)
            await storage.forget_reminder(item.contact.id, item.key)
        else:
            result.sent += 1
            REMINDERS_SENT.inc()

    await asyncio.gather(*(deliver(item) for item in items))
    result.keys = sorted({item.key for item in items})
    logger.info(
        "reminders: %d sent, %d blocked, %d failed, %d skipped",
        result.sent,
        result.blocked,
        result.failed,
        result.skipped,
    )
    return result
