"""The coordination team's tools, shared by the chat commands and the command line.

Rules of this module:
- Only ADMIN_IDS reach the chat commands (the handlers check); nothing here reveals
  anything to anyone else.
- Invitation tokens are shown once, at creation; only their hashes are stored.
- A city name that matches nothing or several cities gets a clear message, not a guess.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.storage import City, Storage
from conversation import engine
from conversation.i18n import Translator
from conversation.model import Survey
from conversation.render import Reply, esc
from conversation.state import Report, ReportStatus

if TYPE_CHECKING:
    from bot.handlers import TelegramFrontEnd

logger = logging.getLogger(__name__)

CHAT_COMMANDS = frozenset({"invite", "status", "reopen", "export"})


class AdminError(Exception):
    """A coordination-team request that cannot be carried out; the message says why."""


def deep_link(bot_username: str, token: str) -> str:
    """The personal link that binds whoever opens it to the city's report."""
    return f"https://t.me/{bot_username}?start={token}"


async def invite(
    storage: Storage, survey: Survey, bot_username: str, city: str, country: str, joined: str | None, now: dt.datetime
) -> tuple[City, str]:
    """Create (or find) the city's report and a fresh personal link for one contact."""
    city, country = city.strip(), country.strip()
    if not city or not country:
        raise AdminError("a city and a country are both needed")
    report = await storage.find_or_create_report(survey.id, city, country, joined, now)
    token = await storage.create_invitation(report.id, now)
    return report, deep_link(bot_username, token)


async def find_one_city(storage: Storage, survey: Survey, query: str) -> City:
    """The single city a name refers to, or an error listing the candidates."""
    found = await storage.find_reports(survey.id, query.strip())
    if not found:
        raise AdminError(f"no city matches {query!r}")
    if len(found) > 1:
        names = ", ".join(f"{c.name} ({c.country})" for c in found[:10])
        raise AdminError(f"{query!r} matches several cities: {names}; be more specific")
    return found[0]


@dataclass(frozen=True)
class CityProgress:
    """One city's standing."""

    city: City
    state: str  # not_started / in_progress / submitted / exempt
    answered: int
    applicable: int
    required_missing: int


async def city_progress(storage: Storage, survey: Survey) -> list[CityProgress]:
    """Every city's progress, streamed from the database one report at a time."""
    rows: list[CityProgress] = []
    async for city, answers, attachments in storage.iter_reports_with_answers(survey.id):
        report = Report(answers=answers, attachments=attachments, status=city.status)
        p = engine.progress(survey, report, None)
        if city.status == ReportStatus.SUBMITTED:
            state = "submitted"
        elif city.status == ReportStatus.EXEMPT:
            state = "exempt"
        else:
            state = "in_progress" if engine.has_started(survey, report) else "not_started"
        rows.append(CityProgress(city, state, p.answered, p.question_count, p.required_missing))
    return rows


def status_lines(rows: list[CityProgress], tr: Translator) -> list[str]:
    """The /status summary: counts per state, then the cities behind."""
    _ = tr.t
    counts = Counter(r.state for r in rows)
    labels = {
        "not_started": _("Not started"),
        "in_progress": _("In progress"),
        "submitted": _("Submitted"),
        "exempt": _("Exempt this cycle"),
    }
    heading = _("Reports")
    lines = [f"<b>{esc(heading)}</b>"]
    lines += [f"{esc(labels[s])}: {counts.get(s, 0)}" for s in labels]
    for state in ("not_started", "in_progress"):
        behind = sorted((r for r in rows if r.state == state), key=lambda r: r.answered)
        if behind:
            lines.append("")
            lines.append(f"<b>{esc(labels[state])}</b>")
            for r in behind:
                lines.append(
                    f"• {esc(r.city.name)} ({esc(r.city.country)}) — "
                    + _(
                        "{answered} of {total} answered, {missing} required missing",
                        answered=r.answered,
                        total=r.applicable,
                        missing=r.required_missing,
                    )
                )
    return lines


def admin_welcome(front: TelegramFrontEnd, tr: Translator) -> list[Reply]:
    """What an admin without a city of their own sees."""
    _ = tr.t
    return [
        Reply(
            _("You are a member of the coordination team.")
            + "\n/invite "
            + _("City | Country | YYYY-MM — create a personal invitation link")
            + "\n/status — "
            + _("progress of every city")
            + "\n/export — "
            + _("all reports as a spreadsheet")
            + "\n/reopen "
            + _("City — allow a submitted report to be changed again")
        )
    ]


def _split_invite(arg: str) -> list[str]:
    for sep in ("|", ";", ","):
        if sep in arg:
            return [p.strip() for p in arg.split(sep)]
    return [arg.strip()]


async def chat_command(
    front: TelegramFrontEnd, chat_id: int, name: str, arg: str | None, tr: Translator
) -> list[Reply]:
    """Run one coordination-team chat command and say what happened."""
    _ = tr.t
    storage, survey = front.storage, front.service.survey
    now = front.service.clock()
    try:
        if name == "invite":
            parts = _split_invite(arg or "")
            if len(parts) < 2:
                return [Reply(_("Usage: /invite City | Country | YYYY-MM (the joining month is optional)"))]
            joined = parts[2] if len(parts) > 2 and parts[2] else None
            if joined is not None and not _is_month(joined):
                return [Reply(_("The joining month must look like 2019-03."))]
            username = front.bot_username or "bot"
            city, link = await invite(storage, survey, username, parts[0], parts[1], joined, now)
            return [
                Reply(
                    _(
                        "Invitation for {city} ({country}). Send this personal link to the contact person:",
                        city=esc(city.name),
                        country=esc(city.country),
                    )
                    + f"\n{esc(link)}"
                )
            ]
        if name == "status":
            return [Reply("\n".join(status_lines(await city_progress(storage, survey), tr)))]
        if name == "reopen":
            if not arg:
                return [Reply(_("Usage: /reopen City"))]
            city = await find_one_city(storage, survey, arg)
            await storage.reopen(city.id, now)
            return [Reply(_("The report of {city} can be changed again.", city=esc(city.name)))]
        if name == "export":
            return [await front.send_export(chat_id, tr)]
    except AdminError as exc:
        return [Reply("⚠️ " + esc(str(exc)))]
    return []


def _is_month(text: str) -> bool:
    return len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit() and 1 <= int(text[5:]) <= 12
