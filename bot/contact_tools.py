"""The contact's own commands outside the questionnaire (/reminders, /colleague, /mydata), for both front ends.

Rules of this module:
- Which commands these are is declared in `conversation.commands` (`CONTACT_TOOLS`); Telegram and the
  console both call `run`, so they accept the same commands and say the same things.
- A contact sees only what is stored about themselves and their own city.
- A colleague link needs the bot's Telegram username; without one (the console) the contact is told,
  politely, to ask for it in Telegram.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from bot import admin, privacy
from bot.storage import Contact, Storage, TooManyLinks
from conversation import commands
from conversation.i18n import get_translator
from conversation.model import Survey
from conversation.render import Reply, esc

logger = logging.getLogger(__name__)

# Unused colleague links one contact may hold at a time (each is single-use and expires).
COLLEAGUE_LINK_CAP = 5


@dataclass(frozen=True)
class ColleagueLinks:
    """How colleague links are made: the bot's Telegram username and how many days a link works."""

    bot_username: str
    days: int


async def run(
    name: str,
    storage: Storage,
    survey: Survey,
    contact: Contact,
    *,
    now: dt.datetime,
    links: ColleagueLinks | None,
) -> Reply:
    """Carry out one of `commands.CONTACT_TOOLS` for `contact` and say what happened (`links`: how
    colleague links are made here; None where they cannot be, the console)."""
    if name == commands.REMINDERS.name:
        return await toggle_reminders(storage, contact, now=now)
    if name == commands.COLLEAGUE.name:
        return await colleague_link(storage, contact, now=now, links=links)
    if name == commands.MYDATA.name:
        city = await storage.get_report(contact.report_id)
        data = await storage.personal_data(contact.id)
        return privacy.my_data(data, city, get_translator(contact.language), survey.contact_email)
    raise ValueError(f"not a contact tool: {name!r}")


async def toggle_reminders(storage: Storage, contact: Contact, *, now: dt.datetime) -> Reply:
    """/reminders: pause or resume deadline reminders for this contact."""
    paused = not contact.reminders_paused
    await storage.set_reminders_paused(contact.id, paused, now=now)
    _ = get_translator(contact.language).t
    return Reply(
        _("Deadline reminders are paused. Send /reminders again to resume them.")
        if paused
        else _("Deadline reminders are on again.")
    )


async def colleague_link(
    storage: Storage, contact: Contact, *, now: dt.datetime, links: ColleagueLinks | None
) -> Reply:
    """/colleague: a personal, single-use link to this contact's city for one colleague."""
    tr = get_translator(contact.language)
    if links is None:
        return Reply(
            tr.t(
                "Links for colleagues are made in Telegram: send /colleague to the bot there. "
                "Here, in the terminal, the bot has no Telegram name to put in a link."
            )
        )
    expires = now + dt.timedelta(days=links.days)
    try:
        ((token, _id),) = await storage.create_invitations(
            [(contact.report_id, None, None)],
            now,
            max_uses=1,
            expires_at=expires,
            invited_by=contact.id,
            colleague_cap=COLLEAGUE_LINK_CAP,
        )
    except TooManyLinks:
        return Reply(
            tr.t(
                "You already have {count} colleague links that nobody has used yet. "
                "Please wait until they are used or expire.",
                count=COLLEAGUE_LINK_CAP,
            )
        )
    city = await storage.get_report(contact.report_id)
    text = tr.t(
        "Send this personal link to one colleague of {city}. It works for one Telegram account "
        "and until {date}; the coordination team sees that you invited them:",
        city=esc(city.name if city else ""),
        date=tr.format_date(expires.date()),
    )
    return Reply(f"{text}\n{esc(admin.deep_link(links.bot_username, token))}")
