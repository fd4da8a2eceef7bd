"""The coordination team's tools, shared by the chat commands and the command line; transport-free.

Rules of this module:
- Only ADMIN_IDS reach the chat commands (`bot.telegram.admin` routes them); nothing here
  reveals anything to anyone else. Nothing here knows Telegram: results are replies and files.
- Invitation tokens are shown once, at creation; only their hashes are stored.
- A city name that matches nothing or several cities gets a clear message, not a guess.
- Invitations are personal by default: one account, expiring after INVITATION_DAYS; a shared link
  (`uses` above 1) is always asked for explicitly.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bot.exports import export_reports
from bot.storage import City, Contact, ContactListing, Invitation, Storage
from conversation import engine
from conversation.i18n import Translator
from conversation.model import Survey
from conversation.render import Reply, esc
from conversation.state import Report, ReportStatus
from conversation.validation import is_month_value

logger = logging.getLogger(__name__)

DEFAULT_INVITATION_DAYS = 60
EXPORT_FILENAME = "gnlc-reports.xlsx"


class AdminError(Exception):
    """A coordination-team request that cannot be carried out; the message says why."""


def deep_link(bot_username: str, token: str) -> str:
    """The personal link that binds whoever opens it to the city's report."""
    return f"https://t.me/{bot_username}?start={token}"


async def invite(
    storage: Storage,
    survey: Survey,
    bot_username: str,
    city: str,
    country: str,
    joined: str | None,
    now: dt.datetime,
    *,
    name: str | None = None,
    email: str | None = None,
    uses: int = 1,
    days: int = DEFAULT_INVITATION_DAYS,
) -> tuple[City, str]:
    """Create (or find) the city's report and a fresh personal link: `uses` accounts, `days` days."""
    city, country = city.strip(), country.strip()
    if not city or not country:
        raise AdminError("a city and a country are both needed")
    if uses < 1 or days < 1:
        raise AdminError("a link needs at least one use and one day")
    report = await storage.find_or_create_report(survey.id, city, country, joined, now)
    token = await storage.create_invitation(
        report.id,
        now,
        max_uses=uses,
        expires_at=now + dt.timedelta(days=days),
        name=(name or "").strip() or None,
        email=(email or "").strip() or None,
    )
    return report, deep_link(bot_username, token)


def person_label(display_name: str, username: str | None) -> str:
    """A contact as the team sees them: Telegram name and @username (HTML-escaped)."""
    label = esc(display_name or "?")
    return f"{label} @{esc(username)}" if username else label


def link_line(invitation: Invitation, tr: Translator) -> str:
    """One invitation link: for whom, how many accounts used it of how many, until when."""
    _ = tr.t
    if invitation.max_uses is None:
        text = _(
            "link {id}: shared link from before personal invitations — any number of accounts, no expiry "
            "({used} used it)",
            id=invitation.id,
            used=invitation.uses,
        )
    else:
        assert invitation.expires_at is not None
        text = _(
            "link {id}: {used} of {uses} accounts, until {date}",
            id=invitation.id,
            used=invitation.uses,
            uses=invitation.max_uses,
            date=tr.format_date(invitation.expires_at.date()),
        )
    if invitation.name:
        text += " — " + _("Invitation made for: {name}", name=esc(invitation.name))
    return text


def contact_lines(
    listing: list[ContactListing], links: dict[int, list[Invitation]], cities: list[City], tr: Translator
) -> list[str]:
    """The team's list of each city's contacts, and of the links that could still let someone in."""
    _ = tr.t
    heading = _("Contacts")
    lines = [f"<b>{esc(heading)}</b>"]
    by_city: dict[int, list[ContactListing]] = {}
    for row in listing:
        by_city.setdefault(row.city.id, []).append(row)
    shown = [city for city in cities if by_city.get(city.id) or links.get(city.id)]
    if not shown:
        lines.append(_("No contacts yet."))
    for city in shown:
        lines += ["", f"<b>{esc(city.name)} ({esc(city.country)})</b>"]
        for row in by_city.get(city.id, []):
            c = row.contact
            who = person_label(c.display_name, c.username) if c.telegram_user_id is not None else esc(c.display_name)
            parts = [
                who,
                _("Telegram user id: {id}", id=c.telegram_user_id) if c.telegram_user_id is not None else "console",
                _("joined {date}", date=tr.format_date(row.joined_at.date())) if row.joined_at else "",
                _("last active {date}", date=tr.format_date(row.last_active.date())),
                c.language,
                _("reminders paused") if c.reminders_paused else "",
                _("Invitation made for: {name}", name=esc(row.invitation.name))
                if row.invitation is not None and row.invitation.name
                else "",
                _("Invited by {person}, a contact of the city.", person=person_label(*_name_of(row.inviter)))
                if row.inviter is not None
                else "",
            ]
            lines.append("• " + " — ".join(p for p in parts if p))
        lines += ["  " + link_line(invitation, tr) for invitation in links.get(city.id, [])]
    return lines


def _name_of(contact: Contact) -> tuple[str, str | None]:
    return contact.display_name, contact.username


async def contacts_report(
    storage: Storage, survey: Survey, city_query: str | None, tr: Translator, now: dt.datetime
) -> list[str]:
    """`contacts [City]`: each city's contacts and its links that still work."""
    cities = [await find_one_city(storage, survey, city_query)] if city_query else await storage.list_reports(survey.id)
    listing = await storage.contact_listing(survey.id, cities[0].id if city_query else None)
    links = {city.id: [i for i in await storage.invitations_of(city.id) if i.live(now)] for city in cities}
    return contact_lines(listing, links, cities, tr)


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


def _split_invite(arg: str) -> list[str]:
    for sep in ("|", ";", ","):
        if sep in arg:
            return [p.strip() for p in arg.split(sep)]
    return [arg.strip()]


@dataclass(frozen=True)
class TeamFile:
    """A file for the team (the spreadsheet of every report)."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class TeamResult:
    """What one team command produced: a file to hand over first (if any), then replies to show."""

    replies: list[Reply]
    document: TeamFile | None = None


async def team_command(
    storage: Storage,
    survey: Survey,
    name: str,
    arg: str | None,
    tr: Translator,
    now: dt.datetime,
    *,
    bot_username: str,
    invitation_days: int,
) -> TeamResult:
    """Run one coordination-team command (`invite`, `status`, `reopen`, `export`, `contacts`) and say
    what happened."""
    _ = tr.t
    try:
        if name == "invite":
            parts = _split_invite(arg or "")
            if len(parts) < 2:
                return TeamResult(
                    [
                        Reply(
                            _(
                                "Usage: /invite City | Country | YYYY-MM | Full name "
                                "(the joining month and the name are optional)"
                            )
                        )
                    ]
                )
            joined = parts[2] if len(parts) > 2 and parts[2] else None
            if joined is not None and not is_month_value(joined):
                return TeamResult([Reply(_("The joining month must look like 2019-03."))])
            person = parts[3] if len(parts) > 3 and parts[3] else None
            city, link = await invite(
                storage, survey, bot_username, parts[0], parts[1], joined, now, name=person, days=invitation_days
            )
            text = _(
                "Invitation for {city} ({country}). Send this personal link to the contact person:",
                city=esc(city.name),
                country=esc(city.country),
            )
            return TeamResult([Reply(text + f"\n{esc(link)}")])
        if name == "status":
            return TeamResult([Reply("\n".join(status_lines(await city_progress(storage, survey), tr)))])
        if name == "reopen":
            if not arg:
                return TeamResult([Reply(_("Usage: /reopen City"))])
            city = await find_one_city(storage, survey, arg)
            await storage.reopen(city.id, now)
            return TeamResult([Reply(_("The report of {city} can be changed again.", city=esc(city.name)))])
        if name == "export":
            document, count = await export_spreadsheet(storage, survey, tr.language)
            return TeamResult([Reply(tr.n("{count} report exported.", "{count} reports exported.", count))], document)
        if name == "contacts":
            lines = await contacts_report(storage, survey, (arg or "").strip() or None, tr, now)
            return TeamResult([Reply("\n".join(lines))])
    except AdminError as exc:
        return TeamResult([Reply("⚠️ " + esc(str(exc)))])
    return TeamResult([])


async def export_spreadsheet(storage: Storage, survey: Survey, header_language: str) -> tuple[TeamFile, int]:
    """Every report as one XLSX file (headers in the team member's language), and how many reports."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / EXPORT_FILENAME
        count = await export_reports(storage, survey, "xlsx", path, header_language=header_language)
        return TeamFile(EXPORT_FILENAME, path.read_bytes()), count
