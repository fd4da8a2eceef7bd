"""Delivery bookkeeping: the inbox of fetched updates, handled updates, live keyboards, which
message carried which answer, and reminders sent.

Rules of this module:
- Fetched updates are kept until handled and answered, so a crash loses none; an update whose
  changes are committed is marked handled, so a redelivery is not applied twice.
- What only serves recent updates is pruned while the bot runs.
- Cosmetic or not-yet-acknowledged state is committed without waiting for the disk (`fsync=False`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from bot.storage.connection import Connection
from bot.storage.rows import (
    _CONTACT_COLUMNS,
    Contact,
    Db,
    _all,
    _contact,
    _ts,
)

logger = logging.getLogger(__name__)

ANSWER_MESSAGES_KEPT = 2000  # per contact: edits of messages further back are not applied


class Delivery(Connection):
    """Inbox, handled updates, keyboards, answer messages and reminders."""

    async def remember_answer_message(
        self, contact_id: int, message_id: int, question_id: str, text: str | None = None
    ) -> None:
        """Remember that the contact's message (with this text) answered this question."""
        await self._change(
            "INSERT OR REPLACE INTO answer_messages (contact_id, message_id, question_id, text) VALUES (?, ?, ?, ?)",
            (contact_id, message_id, question_id, text),
        )

    async def answer_message(self, contact_id: int, message_id: int) -> tuple[str, str | None] | None:
        """Return the question the contact's message answered and the text it had, or None."""
        row = await self._fetch_one(
            "SELECT question_id, text FROM answer_messages WHERE contact_id = ? AND message_id = ?",
            (contact_id, message_id),
        )
        return None if row is None else (str(row["question_id"]), row["text"])

    async def record_reminder(self, contact_id: int, key: str, now: dt.datetime) -> bool:
        """Record the reminder as sent; True only the first time."""
        claimed = await self._change(
            "INSERT OR IGNORE INTO reminders_sent (contact_id, reminder_key, sent_at) VALUES (?, ?, ?)",
            (contact_id, key, _ts(now)),
        )
        return claimed == 1

    async def contacts_awaiting_reminder(self, survey_id: str, key: str) -> list[Contact]:
        """Contacts of open reports who can be reached, want reminders, and have not had `key`."""
        columns = ", ".join(f"c.{name.strip()}" for name in _CONTACT_COLUMNS.split(","))
        rows = await self._fetch(
            f"SELECT {columns} FROM contacts AS c JOIN reports AS r ON r.id = c.report_id"
            " LEFT JOIN reminders_sent AS s ON s.contact_id = c.id AND s.reminder_key = ?"
            " WHERE r.survey_id = ? AND r.status = 'open' AND c.chat_id IS NOT NULL"
            " AND c.blocked = 0 AND c.reminders_paused = 0 AND c.removed_at IS NULL AND s.contact_id IS NULL"
            " ORDER BY c.report_id, c.id",
            (key, survey_id),
        )
        return [_contact(row) for row in rows]

    async def forget_reminder(self, contact_id: int, key: str) -> None:
        """Release a claimed reminder whose send failed, so a later run retries it."""
        await self._change("DELETE FROM reminders_sent WHERE contact_id = ? AND reminder_key = ?", (contact_id, key))

    async def inbox_add(
        self, updates: list[tuple[int, str]], now: dt.datetime, *, done: Iterable[int] = ()
    ) -> set[int]:
        """Keep fetched updates (id, JSON) until they are handled; return those handled already.

        The updates are kept before Telegram is told to forget them. Ids returned were redelivered
        after their changes had been committed (a crash before Telegram heard they were fetched).
        `done` are earlier updates now handled and answered, forgotten in the same transaction.
        """
        at = _ts(now)
        finished = [(update_id,) for update_id in done]

        async def work(db: Db) -> set[int]:
            if finished:
                await db.executemany("DELETE FROM inbox WHERE update_id = ?", finished)
            await db.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
                [(update_id, payload, at) for update_id, payload in updates],
            )
            return await _handled(db, [update_id for update_id, _ in updates])

        # Not yet acknowledged to anyone, so no fsync wait on the hot path: a killed process keeps it
        # (WAL), and the answer's own FULL commit right after flushes it to disk as well.
        return await self._run(work, write=True, fsync=False)

    async def inbox_done(self, update_ids: Iterable[int]) -> None:
        """Forget updates once handled and answered (kept until then so a crash before the reply
        is followed by showing the contact where they are)."""
        finished = list(update_ids)
        if finished:
            marks = ",".join("?" * len(finished))
            await self._change(f"DELETE FROM inbox WHERE update_id IN ({marks})", finished, fsync=False)

    async def handled(self, update_ids: list[int]) -> set[int]:
        """Which of these updates already had their changes committed."""
        if not update_ids:
            return set()
        return await self._alone(partial(_handled, update_ids=update_ids))

    async def prune(self, handled_before: dt.datetime) -> None:
        """Drop what only serves recent updates: handled-update marks older than `handled_before`, and
        the message -> answer mapping of messages more than `ANSWER_MESSAGES_KEPT` behind each contact's newest
        (an edit of such an old message is no longer applied). Run while the bot runs, not only at start."""

        async def work(db: Db) -> None:
            await db.execute("DELETE FROM handled_updates WHERE handled_at < ?", (_ts(handled_before),))
            await db.execute(
                "DELETE FROM answer_messages WHERE message_id < (SELECT max(m.message_id) FROM answer_messages AS m"
                " WHERE m.contact_id = answer_messages.contact_id) - ?",
                (ANSWER_MESSAGES_KEPT,),
            )

        await self._run(work, write=True, fsync=False)

    async def inbox_pending(self) -> list[tuple[int, str]]:
        """Updates fetched but not handled when the bot last stopped, oldest first."""
        rows = await self._fetch("SELECT update_id, payload FROM inbox ORDER BY update_id")
        return [(int(row["update_id"]), str(row["payload"])) for row in rows]

    async def live_keyboards(self) -> dict[int, int]:
        """Chat id → message id of each chat's live inline keyboard."""
        rows = await self._fetch("SELECT chat_id, message_id FROM keyboards")
        return {int(row["chat_id"]): int(row["message_id"]) for row in rows}

    async def update_keyboards(self, changes: dict[int, int | None]) -> None:
        """Record live keyboards (chat id → message id; None: the chat has none any more)."""
        live = [(chat_id, message_id) for chat_id, message_id in changes.items() if message_id is not None]
        gone = [chat_id for chat_id, message_id in changes.items() if message_id is None]
        # One statement each (usually only one is needed, and a single statement needs no transaction).
        statements = []
        if live:
            rows = ", ".join("(?, ?)" for _ in live)
            statements.append((f"INSERT OR REPLACE INTO keyboards (chat_id, message_id) VALUES {rows}", _flat(live)))
        if gone:
            statements.append((f"DELETE FROM keyboards WHERE chat_id IN ({','.join('?' * len(gone))})", gone))

        async def work(db: Db) -> None:
            for sql, params in statements:
                await db.execute(sql, params)

        # Cosmetic state: no fsync wait (a killed process keeps it; the next full commit flushes it).
        if len(statements) == 1:
            await self._change(*statements[0], fsync=False)
        elif statements:
            await self._run(work, write=True, fsync=False)


async def _forget_inbox_of(db: Db, users: set[int]) -> None:
    """Drop the kept updates sent by these Telegram users."""
    if not users:
        return
    doomed = []
    for row in await _all(db, "SELECT update_id, payload FROM inbox"):
        try:
            payload = json.loads(row["payload"])
        except ValueError:
            continue
        if _senders(payload) & users:
            doomed.append((row["update_id"],))
    await db.executemany("DELETE FROM inbox WHERE update_id = ?", doomed)


def _senders(value: Any) -> set[int]:
    """Every user id under a "from" key of an update's JSON."""
    found: set[int] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "from" and isinstance(item, dict) and isinstance(item.get("id"), int):
                found.add(item["id"])
            found |= _senders(item)
    elif isinstance(value, list):
        for item in value:
            found |= _senders(item)
    return found


async def _handled(db: Db, update_ids: list[int]) -> set[int]:
    """Which of these updates already had their changes committed."""
    marks = ",".join("?" * len(update_ids))
    rows = await _all(db, f"SELECT update_id FROM handled_updates WHERE update_id IN ({marks})", update_ids)
    return {int(row["update_id"]) for row in rows}


def _flat(rows: list[tuple[int, int]]) -> list[int]:
    """The values of rows, in order, as the parameters of a multi-row VALUES clause."""
    return [value for row in rows for value in row]
