"""Personal data accounted for: what a contact can see about themselves, and erasing cities.

Rules of this module:
- `/mydata` shows a contact only what is stored about them and their city's name; never another
  contact's data.
- A purge erases rows first (one transaction, SQLite's secure_delete on), then the files no
  report refers to any more; a file still used by another report stays.
- Nothing here logs a name, an answer or an address: counts and ids only.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from bot.storage import City, Purged, Storage
from conversation.i18n import Translator
from conversation.render import Reply, esc

logger = logging.getLogger(__name__)


def my_data(data: dict[str, Any], city: City | None, tr: Translator, email: str) -> Reply:
    """/mydata: what is stored about this contact, in their language."""
    _ = tr.t

    def day(value: str | None) -> str:
        return tr.format_date(dt.datetime.fromisoformat(value).date()) if value else "—"

    heading = _("What is stored about you")
    lines = [
        f"<b>{esc(heading)}</b>",
        _("Name: {name}", name=esc(data["display_name"] or "—")),
        _("Telegram username: {username}", username=esc("@" + data["username"]) if data["username"] else "—"),
        _("Telegram user id: {id}", id=data["telegram_user_id"]),
        _("Language: {language}", language=esc(data["language"])),
    ]
    if city is not None:
        lines.append(_("City: {city} ({country})", city=esc(city.name), country=esc(city.country)))
    lines += [_("Joined: {date}", date=day(data["joined_at"])), _("Last active: {date}", date=day(data["updated_at"]))]
    if data["invitation_name"]:
        lines.append(_("Invitation made for: {name}", name=esc(data["invitation_name"])))
    if data["invitation_email"]:
        lines.append(_("E-mail address the invitation was sent to: {email}", email=esc(data["invitation_email"])))
    lines += [
        _("Deadline reminders: paused") if data["reminders_paused"] else _("Deadline reminders: on"),
        _("Answers last given by you: {count}", count=data["answers"]),
        _("Changes by you in the report's history: {count}", count=data["audit_rows"]),
        _("Files you sent: {count}", count=data["files"]),
        _("Messages remembered so that editing them updates the answer: {count}", count=data["messages"]),
        "",
        _(
            "The answers belong to your city's report and are shared with the UNESCO GNLC Coordination Team. "
            "To have your data corrected or erased, write to {email}.",
            email=email,
        ),
    ]
    return Reply("\n".join(lines))


async def purge_reports(storage: Storage, cities: list[City], files_dir: Path) -> Purged:
    """Erase these cities' reports and everything about them, then the files left unreferenced."""
    purged = await storage.purge(city.id for city in cities)
    for sha in purged.orphaned_files:
        path = files_dir / sha[:2] / sha
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the rows are gone; a file left behind is reported, not fatal
            logger.warning("file %s could not be deleted: %s", sha, exc)
    logger.info("purge: %d file(s) deleted", len(purged.orphaned_files))
    return purged
