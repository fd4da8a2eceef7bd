"""Contacts (the people working on a city's report), the team's admins, and erasing reports.

Rules of this module:
- A removed contact keeps its row (the audit trail names it), but no look-up by Telegram user
  returns it, and a save for it is refused whole (`ContactRemoved`).
- A purge erases a report and everything about it, then empties the write-ahead log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from bot.storage.connection import Connection
from bot.storage.delivery import _forget_inbox_of
from bot.storage.rows import (
    _ACTIVE,
    _CONTACT_COLUMNS,
    _INVITATION_COLUMNS,
    _REPORT_COLUMNS,
    Contact,
    ContactListing,
    Db,
    Purged,
    _all,
    _audit,
    _city,
    _contact,
    _contact_by_id,
    _contact_of_user,
    _invitation,
    _one,
    _parse_ts,
    _require_report,
    _rowid,
    _scalar_args,
    _ts,
)

logger = logging.getLogger(__name__)


class Contacts(Connection):
    """Contacts, admins, personal data and purges."""

    async def contact_by_telegram_user(self, user_id: int) -> Contact | None:
        """Return the contact bound to this Telegram user, or None."""
        return await self._alone(partial(_contact_of_user, user_id=user_id))

    async def console_contact(self, console_key: str, report_id: int, language: str, now: dt.datetime) -> Contact:
        """Return the console contact with this key on the report, creating or rebinding it."""
        at = _ts(now)

        async def work(db: Db) -> Contact:
            await _require_report(db, report_id)
            row = await _one(db, "SELECT id, report_id FROM contacts WHERE console_key = ?", (console_key,))
            if row is None:
                cur = await db.execute(
                    "INSERT INTO contacts (report_id, console_key, display_name, language, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (report_id, console_key, console_key, language, at, at),
                )
                contact_id = _rowid(cur)
            else:
                contact_id = int(row["id"])
                if int(row["report_id"]) != report_id:
                    await db.execute(
                        "UPDATE contacts SET report_id = ?, session_json = NULL, updated_at = ? WHERE id = ?",
                        (report_id, at, contact_id),
                    )
            return await _contact_by_id(db, contact_id)

        return await self._run(work, write=True)

    async def console_contact_if_exists(self, console_key: str) -> Contact | None:
        """Return the console contact with this key, or None."""
        row = await self._fetch_one(f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE console_key = ?", (console_key,))
        return None if row is None else _contact(row)

    async def rebind_chat(self, contact_id: int, chat_id: int, *, now: dt.datetime) -> None:
        """Record the contact's current private chat and that they can be reached there."""
        at = _ts(now)
        await self._change(
            "UPDATE contacts SET chat_id = ?, blocked = 0, updated_at = ? WHERE id = ?", (chat_id, at, contact_id)
        )

    async def contact_listing(self, survey_id: str, report_id: int | None = None) -> list[ContactListing]:
        """The current contacts of every city (or one), by city then joining order, for the team."""

        async def work(db: Db) -> list[ContactListing]:
            where = "r.survey_id = ? AND c.removed_at IS NULL" + (" AND r.id = ?" if report_id is not None else "")
            params: tuple[Any, ...] = (survey_id,) if report_id is None else (survey_id, report_id)
            columns = ", ".join(f"c.{name.strip()}" for name in _CONTACT_COLUMNS.split(","))
            rows = await _all(
                db,
                f"SELECT {columns}, c.joined_at, c.updated_at, c.invitation_id FROM contacts AS c"
                f" JOIN reports AS r ON r.id = c.report_id WHERE {where}"
                " ORDER BY r.city COLLATE NOCASE, r.country COLLATE NOCASE, c.id",
                params,
            )
            listing: list[ContactListing] = []
            for row in rows:
                contact = _contact(row)
                city_row = await _one(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (contact.report_id,))
                assert city_row is not None
                invitation = None
                inviter = None
                if row["invitation_id"] is not None:
                    inv_row = await _one(
                        db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = ?", (row["invitation_id"],)
                    )
                    invitation = None if inv_row is None else _invitation(inv_row)
                    if invitation is not None and invitation.invited_by is not None:
                        inviter = await _contact_by_id(db, invitation.invited_by)
                updated = _parse_ts(row["updated_at"])
                assert updated is not None
                listing.append(
                    ContactListing(contact, _city(city_row), _parse_ts(row["joined_at"]), updated, invitation, inviter)
                )
            return listing

        return await self._run(work, write=False)

    async def remove_contact(
        self, report_id: int, *, telegram_user_id: int | None = None, contact_id: int | None = None, now: dt.datetime
    ) -> Contact | None:
        """Take a contact out of the city: from now on the account sees nothing of it. Their answers
        stay, attributed in the audit trail; the records of which message carried which answer go.
        None if no current contact of the report matches."""
        if (telegram_user_id is None) == (contact_id is None):
            raise ValueError("give exactly one of telegram_user_id and contact_id")

        async def work(db: Db) -> Contact | None:
            column, value = ("telegram_user_id", telegram_user_id) if contact_id is None else ("id", contact_id)
            row = await _one(
                db,
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE {column} = ? AND report_id = ? AND {_ACTIVE}",
                (value, report_id),
            )
            if row is None:
                return None
            contact = _contact(row)
            await db.execute(
                "UPDATE contacts SET removed_at = ?, session_json = NULL, updated_at = ? WHERE id = ?",
                (_ts(now), _ts(now), contact.id),
            )
            await db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact.id,))
            await _audit(db, report_id, contact.id, None, "remove", json.dumps({"contact": contact.id}), None, now)
            return contact

        removed = await self._run(work, write=True)
        if removed is not None:
            logger.info("contact %d removed from report %d", removed.id, report_id)
        return removed

    async def personal_data(self, contact_id: int) -> dict[str, Any]:
        """What is stored about one contact (for /mydata): their own fields and what they gave."""

        async def work(db: Db) -> dict[str, Any]:
            row = await _one(
                db,
                "SELECT telegram_user_id, chat_id, display_name, username, language, reminders_paused, joined_at,"
                " updated_at, invitation_id, report_id FROM contacts WHERE id = ?",
                (contact_id,),
            )
            if row is None:
                raise LookupError(f"no contact with id {contact_id}")
            data: dict[str, Any] = dict(row)
            invitation = None
            if row["invitation_id"] is not None:
                invitation = await _one(db, "SELECT name, email FROM invitations WHERE id = ?", (row["invitation_id"],))
            data["invitation_name"] = None if invitation is None else invitation["name"]
            data["invitation_email"] = None if invitation is None else invitation["email"]
            data["answers"] = await _scalar_args(db, "SELECT count(*) FROM answers WHERE updated_by = ?", contact_id)
            data["audit_rows"] = await _scalar_args(db, "SELECT count(*) FROM audit WHERE contact_id = ?", contact_id)
            data["files"] = await _scalar_args(db, "SELECT count(*) FROM attachments WHERE uploaded_by = ?", contact_id)
            data["messages"] = await _scalar_args(
                db, "SELECT count(*) FROM answer_messages WHERE contact_id = ?", contact_id
            )
            data["reminders"] = await _scalar_args(
                db, "SELECT count(*) FROM reminders_sent WHERE contact_id = ?", contact_id
            )
            return data

        return await self._run(work, write=False)

    async def purge(self, report_ids: Iterable[int]) -> Purged:
        """Erase these reports and everything about them: answers, audit rows, attachments, contacts
        (with their per-message records, reminders and kept updates), invitations. Returns the
        content hashes of files no other report refers to, for the caller to delete."""
        ids = sorted(set(report_ids))

        async def work(db: Db) -> Purged:
            counts = [0, 0, 0, 0, 0]
            shas: set[str] = set()
            for report_id in ids:
                contacts = [
                    int(r["id"]) for r in await _all(db, "SELECT id FROM contacts WHERE report_id = ?", (report_id,))
                ]
                users = {
                    int(r["telegram_user_id"])
                    for r in await _all(db, "SELECT telegram_user_id FROM contacts WHERE report_id = ?", (report_id,))
                    if r["telegram_user_id"] is not None
                }
                chats = {
                    int(r["chat_id"])
                    for r in await _all(db, "SELECT chat_id FROM contacts WHERE report_id = ?", (report_id,))
                    if r["chat_id"] is not None
                }
                files = await _all(db, "SELECT sha256 FROM attachments WHERE report_id = ?", (report_id,))
                shas |= {str(r["sha256"]) for r in files}
                counts[2] += (await db.execute("DELETE FROM answers WHERE report_id = ?", (report_id,))).rowcount
                counts[3] += (await db.execute("DELETE FROM audit WHERE report_id = ?", (report_id,))).rowcount
                counts[4] += (await db.execute("DELETE FROM attachments WHERE report_id = ?", (report_id,))).rowcount
                links = await _all(db, "SELECT id FROM invitations WHERE report_id = ?", (report_id,))
                invitations = [(r["id"],) for r in links]
                await db.executemany("DELETE FROM invitation_uses WHERE invitation_id = ?", invitations)
                for contact_id in contacts:
                    # What these people did in other cities stays, no longer naming them.
                    for table, column in (("answers", "updated_by"), ("audit", "contact_id"),
                                          ("attachments", "uploaded_by"), ("invitations", "invited_by")):  # fmt: skip
                        await db.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = ?", (contact_id,))
                    await db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact_id,))
                    await db.execute("DELETE FROM reminders_sent WHERE contact_id = ?", (contact_id,))
                await db.execute(
                    "UPDATE contacts SET invitation_id = NULL WHERE invitation_id IN"
                    " (SELECT id FROM invitations WHERE report_id = ?)",
                    (report_id,),
                )
                counts[1] += (await db.execute("DELETE FROM contacts WHERE report_id = ?", (report_id,))).rowcount
                await db.execute("DELETE FROM invitations WHERE report_id = ?", (report_id,))
                await db.executemany("DELETE FROM keyboards WHERE chat_id = ?", [(c,) for c in chats])
                await _forget_inbox_of(db, users)
                counts[0] += (await db.execute("DELETE FROM reports WHERE id = ?", (report_id,))).rowcount
            marks = ",".join("?" * len(shas))
            kept = await _all(db, f"SELECT DISTINCT sha256 FROM attachments WHERE sha256 IN ({marks})", sorted(shas))
            orphaned = tuple(sorted(shas - {str(r["sha256"]) for r in kept}))
            reports, contacts_, answers, audit_rows, attachments = counts
            return Purged(reports, contacts_, answers, audit_rows, attachments, orphaned_files=orphaned)

        purged = await self._run(work, write=True)
        await self.checkpoint()
        logger.info("purged %d report(s), %d contact(s)", purged.reports, purged.contacts)
        return purged

    async def set_reminders_paused(self, contact_id: int, paused: bool, *, now: dt.datetime) -> None:
        """Pause or resume reminders for the contact."""
        await self._set_contact_flag(contact_id, "reminders_paused", paused, now)

    async def mark_blocked(self, contact_id: int, blocked: bool = True, *, now: dt.datetime) -> None:
        """Record that the contact blocked the bot (or unblocked it)."""
        await self._set_contact_flag(contact_id, "blocked", blocked, now)

    async def _set_contact_flag(self, contact_id: int, column: str, value: bool, now: dt.datetime) -> None:
        """Set one boolean column of a contact."""
        assert column in {"reminders_paused", "blocked"}
        changed = await self._change(
            f"UPDATE contacts SET {column} = ?, updated_at = ? WHERE id = ?", (int(value), _ts(now), contact_id)
        )
        if changed != 1:
            raise LookupError(f"no contact with id {contact_id}")

    async def remember_admin(self, user_id: int, chat_id: int, language: str) -> None:
        """Remember (or update) an admin's chat for notifications."""
        await self._change(
            "INSERT INTO admins (telegram_user_id, chat_id, language) VALUES (?, ?, ?)"
            " ON CONFLICT (telegram_user_id) DO UPDATE SET chat_id = excluded.chat_id,"
            " language = excluded.language",
            (user_id, chat_id, language),
        )

    async def admin_chats(self) -> list[tuple[int, int, str]]:
        """Return (user id, chat id, language) of every admin who started the bot."""
        rows = await self._fetch("SELECT telegram_user_id, chat_id, language FROM admins ORDER BY telegram_user_id")
        return [(int(r["telegram_user_id"]), int(r["chat_id"]), str(r["language"])) for r in rows]
