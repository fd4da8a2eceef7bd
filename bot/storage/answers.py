"""Answers, files and their audit trail: reading a contact's state and saving a step.

Rules of this module:
- `save` writes only the difference between `before` and `after`, so contacts sharing
  one city's report never overwrite each other's answers to other questions; and it writes a
  change of the report only if the report's `version` is still `before.version` (checked inside
  the write transaction; `ReportChanged` otherwise). Every change of a report's answers, status
  or files raises its version.
- A file is added only to an open report with room for it, checked in the transaction that adds it.
- Every change to answers, status and attachments leaves an `audit` row. An answer's row holds
  its new value only (the old one is the previous row's), so history grows linearly.
- Answers and session contents are never logged (they are personal data).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import AsyncGenerator
from functools import partial

from bot.storage.connection import Connection
from bot.storage.rows import (
    _ACTIVE,
    _CONTACT_COLUMNS,
    _REPORT_COLUMNS,
    _STATUS_ACTION,
    Contact,
    ContactRemoved,
    Db,
    FilesFull,
    ReportChanged,
    ReportClosed,
    ReportExport,
    _all,
    _answers,
    _attachment,
    _attachments,
    _audit,
    _audit_many,
    _bump,
    _city,
    _contact,
    _decode,
    _encode,
    _one,
    _parse_ts,
    _scalar_p,
    _session,
    _status_json,
    _ts,
    _ts_opt,
)
from conversation.state import AnswerValue, Attachment, Report, ReportStatus, Session

logger = logging.getLogger(__name__)

# A contact's report and session in one query (tables `c` and `r`), so one round trip reads one
# consistent snapshot: the report's answers and files come as JSON arrays.
_STATE_COLUMNS = (
    "c.language AS state_language, c.session_json, r.status, r.submitted_at, r.version,"
    " (SELECT json_group_array(json_array(a.question_id, a.value_json)) FROM answers AS a"
    " WHERE a.report_id = r.id) AS answers,"
    " (SELECT json_group_array(json_array(f.uploaded_at, f.id, f.sha256, f.name, f.mime_type, f.size, f.caption))"
    " FROM attachments AS f WHERE f.report_id = r.id) AS files"
)


class Answers(Connection):
    """Reports' answers, files and the contacts' sessions."""

    async def contact_with_state(self, user_id: int) -> tuple[Contact, Report, Session] | None:
        """The contact bound to this Telegram user with their report and session (one snapshot), or None."""

        columns = ", ".join(f"c.{name.strip()}" for name in _CONTACT_COLUMNS.split(","))
        row = await self._fetch_one(
            f"SELECT {columns}, {_STATE_COLUMNS} FROM contacts AS c JOIN reports AS r ON r.id = c.report_id"
            f" WHERE c.telegram_user_id = ? AND c.{_ACTIVE}",
            (user_id,),
        )
        if row is None:
            return None
        contact = _contact(row)
        return (contact, *_state(row, contact.id))

    async def load(self, contact: Contact) -> tuple[Report, Session]:
        """Return the contact's report and their own session, read in one snapshot."""
        row = await self._fetch_one(
            f"SELECT {_STATE_COLUMNS} FROM contacts AS c, reports AS r WHERE c.id = ? AND r.id = ?",
            (contact.id, contact.report_id),
        )
        if row is None:
            raise LookupError(f"no contact with id {contact.id} or no report with id {contact.report_id}")
        return _state(row, contact.id)

    async def save(
        self,
        contact: Contact,
        before: Report,
        after: Report,
        session: Session,
        now: dt.datetime,
        *,
        answer_message: tuple[int, str, str] | None = None,
        update_id: int | None = None,
    ) -> None:
        """Commit the answers and status that changed from `before` to `after`, and the session.

        A change of the report is written only if the report is still at `before.version`;
        otherwise `ReportChanged` is raised and nothing is written (re-read and decide again).

        `answer_message` (message id, question id, text) records, in the same transaction, which
        message carried the answer, so editing that message later can update it. `update_id` is
        the Telegram update that caused the change, remembered so a redelivery is not applied twice.
        """
        work = partial(
            _save,
            contact=contact,
            before=before,
            after=after,
            session=session,
            now=now,
            answer_message=answer_message,
            update_id=update_id,
        )
        await self._run(work, write=True)

    async def answers_of(self, report_id: int) -> dict[str, AnswerValue]:
        """Return the report's answers by question id."""
        return await self._alone(partial(_answers, report_id=report_id))

    async def iter_reports_with_answers(self, survey_id: str, batch: int = 100) -> AsyncGenerator[ReportExport, None]:
        """Yield (city, answers, attachments) for each report of the survey, in id order.

        Reports are read `batch` at a time (three queries in one transaction per batch), so memory
        stays flat in the number of reports while a thousand reports take ten transactions.
        """
        last_id = 0
        while True:
            reports = await self._run(
                partial(_report_batch, survey_id=survey_id, after_id=last_id, limit=batch), write=False
            )
            if not reports:
                return
            last_id = reports[-1][0].id
            for report in reports:
                yield report

    async def add_attachment(
        self,
        report_id: int,
        contact_id: int,
        attachment: Attachment,
        now: dt.datetime,
        *,
        max_files: int | None = None,
        update_id: int | None = None,
    ) -> bool:
        """Record a file for the report; False if a file with that sha256 is already there.

        Refused inside the same transaction (nothing written) with `ReportClosed` if the report is
        not open, and with `FilesFull` if it already has `max_files` files. `update_id` is the update
        that carried the file: it counts as handled only once the file is recorded.
        """

        async def work(db: Db) -> bool:
            if max_files is not None:
                row = await _one(db, "SELECT status FROM reports WHERE id = ?", (report_id,))
                if row is None:
                    raise LookupError(f"no report with id {report_id}")
                if row["status"] != ReportStatus.OPEN.value:
                    raise ReportClosed(f"report {report_id} is {row['status']}")
            if update_id is not None:
                await db.execute(
                    "INSERT OR IGNORE INTO handled_updates (update_id, handled_at) VALUES (?, ?)", (update_id, _ts(now))
                )
            if await _one(
                db, "SELECT 1 FROM attachments WHERE report_id = ? AND sha256 = ?", (report_id, attachment.sha256)
            ):
                return False
            if max_files is not None:
                count = int(await _scalar_p(db, "SELECT count(*) FROM attachments WHERE report_id = ?", (report_id,)))
                if count >= max_files:
                    raise FilesFull(f"report {report_id} has {count} files")
            cur = await db.execute(
                "INSERT OR IGNORE INTO attachments (report_id, sha256, name, mime_type, size, caption,"
                " uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    attachment.sha256,
                    attachment.name,
                    attachment.mime_type,
                    attachment.size,
                    attachment.caption,
                    contact_id,
                    _ts(now),
                ),
            )
            if cur.rowcount != 1:
                return False
            await _bump(db, report_id)
            await _audit(db, report_id, contact_id, None, "attach", None, attachment.model_dump_json(), now)
            return True

        return await self._run(work, write=True)

    async def describe_attachment(
        self, report_id: int, sha256: str, caption: str, *, contact_id: int | None = None, now: dt.datetime
    ) -> bool:
        """Give the report's file a new description (caption); False if there is no such file or no change."""

        async def work(db: Db) -> bool:
            row = await _one(
                db,
                "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? AND sha256 = ?",
                (report_id, sha256),
            )
            if row is None or row["caption"] == caption:
                return False
            before = _attachment(row)
            await db.execute(
                "UPDATE attachments SET caption = ? WHERE report_id = ? AND sha256 = ?", (caption, report_id, sha256)
            )
            await _bump(db, report_id)
            after = before.model_copy(update={"caption": caption})
            await _audit(
                db, report_id, contact_id, None, "describe", before.model_dump_json(), after.model_dump_json(), now
            )
            return True

        return await self._run(work, write=True)

    async def remove_attachment(
        self,
        report_id: int,
        sha256: str,
        *,
        contact_id: int | None = None,
        now: dt.datetime,
        only_open: bool = False,
    ) -> Attachment | None:
        """Remove the report's file with this sha256 and return it; None if there was none.
        With `only_open`, a report that is not open refuses (`ReportClosed`, nothing written)."""

        async def work(db: Db) -> Attachment | None:
            if only_open:
                status = await _one(db, "SELECT status FROM reports WHERE id = ?", (report_id,))
                if status is not None and status["status"] != ReportStatus.OPEN.value:
                    raise ReportClosed(f"report {report_id} is {status['status']}")
            row = await _one(
                db,
                "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? AND sha256 = ?",
                (report_id, sha256),
            )
            if row is None:
                return None
            attachment = _attachment(row)
            await db.execute("DELETE FROM attachments WHERE report_id = ? AND sha256 = ?", (report_id, sha256))
            await _bump(db, report_id)
            await _audit(db, report_id, contact_id, None, "detach", attachment.model_dump_json(), None, now)
            return attachment

        return await self._run(work, write=True)

    async def attachment_hashes(self) -> set[str]:
        """The content hashes of every stored file some report refers to."""
        rows = await self._fetch("SELECT DISTINCT sha256 FROM attachments")
        return {str(row["sha256"]) for row in rows}

    async def attachments(self, report_id: int) -> tuple[Attachment, ...]:
        """Return the report's files in upload order."""
        return await self._alone(partial(_attachments, report_id=report_id))


def _state(row: sqlite3.Row, contact_id: int) -> tuple[Report, Session]:
    """Decode a report and session selected with `_STATE_COLUMNS`."""
    answers = sorted((str(q), _decode(value_json)) for q, value_json in json.loads(row["answers"]))
    files = sorted(json.loads(row["files"]))  # by upload time, then id
    report = Report(
        answers=dict(answers),
        status=ReportStatus(row["status"]),
        attachments=tuple(
            Attachment(sha256=sha, name=name, mime_type=mime, size=size, caption=caption)
            for _, _, sha, name, mime, size, caption in files
        ),
        submitted_at=_parse_ts(row["submitted_at"]),
        version=int(row["version"]),
    )
    if row["session_json"] is None:
        return report, Session(language=row["state_language"])
    return report, _session(row["session_json"], row["state_language"], contact_id)


async def _save(
    db: Db,
    *,
    contact: Contact,
    before: Report,
    after: Report,
    session: Session,
    now: dt.datetime,
    answer_message: tuple[int, str, str] | None,
    update_id: int | None,
) -> None:
    """Write one save (see `Storage.save`): changed answers with their audit rows, status, session.

    Few statements, as each is a round trip to aiosqlite's thread: once the report is known to be
    at `before.version`, its stored answers are `before`'s, so they need not be read again.
    """
    at = _ts(now)
    report_id = contact.report_id
    changed = sorted(
        q for q in before.answers.keys() | after.answers.keys() if before.answers.get(q) != after.answers.get(q)
    )
    answered = [(q, _encode(value)) for q in changed if (value := after.answers.get(q)) is not None]
    cleared = [(q, _encode(before.answers[q])) for q in changed if after.answers.get(q) is None]
    status_changed = before.status != after.status or before.submitted_at != after.submitted_at
    if changed or status_changed:
        # Raise the version only if it is still `before`'s; an answer also lists its language.
        cur = await db.execute(
            "UPDATE reports SET version = version + 1, languages = CASE"
            " WHEN NOT ? OR instr(',' || languages || ',', ',' || ? || ',') > 0 THEN languages"
            " WHEN languages = '' THEN ? ELSE languages || ',' || ? END"
            " WHERE id = ? AND version = ?",
            (bool(answered), session.language, session.language, session.language, report_id, before.version),
        )
        if cur.rowcount != 1:
            row = await _one(db, "SELECT version FROM reports WHERE id = ?", (report_id,))
            if row is None:
                raise LookupError(f"no report with id {report_id}")
            raise ReportChanged(f"report {report_id} is at version {row['version']}, not {before.version}")
    if answered:
        await db.executemany(
            "INSERT INTO answers (report_id, question_id, value_json, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_id, question_id) DO UPDATE SET"
            " value_json = excluded.value_json, updated_by = excluded.updated_by,"
            " updated_at = excluded.updated_at",
            [(report_id, q, new_json, contact.id, at) for q, new_json in answered],
        )
    if cleared:
        await db.executemany(
            "DELETE FROM answers WHERE report_id = ? AND question_id = ?", [(report_id, q) for q, _ in cleared]
        )
    if changed:
        # An answer's row holds only the new value: the old one is the previous audit row's, so
        # history grows linearly (an append does not store the whole text twice).
        new_values, old_values = dict(answered), dict(cleared)
        await _audit_many(
            db,
            [
                (report_id, contact.id, q, "answer", None, new_values[q], at)
                if q in new_values
                else (report_id, contact.id, q, "clear", old_values[q], None, at)
                for q in changed
            ],
        )
    if status_changed:
        await _write_status(db, report_id, contact.id, after, now)
    cur = await db.execute(
        "UPDATE contacts SET session_json = ?, language = ?, updated_at = ?"
        f" WHERE id = ? AND report_id = ? AND {_ACTIVE}",
        (session.model_dump_json(), session.language, at, contact.id, report_id),
    )
    if cur.rowcount != 1:  # removed (or moved) since the update was read: nothing of this save is kept
        raise ContactRemoved(f"contact {contact.id} is no longer a member of report {report_id}")
    if update_id is not None:
        await db.execute("INSERT OR IGNORE INTO handled_updates (update_id, handled_at) VALUES (?, ?)", (update_id, at))
    if answer_message is not None:
        await db.execute(
            "INSERT OR REPLACE INTO answer_messages (contact_id, message_id, question_id, text) VALUES (?, ?, ?, ?)",
            (contact.id, *answer_message),
        )


async def _report_batch(db: Db, *, survey_id: str, after_id: int, limit: int) -> list[ReportExport]:
    """Read up to `limit` reports with id above `after_id`, with their answers and files."""
    rows = await _all(
        db,
        f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ? AND id > ? ORDER BY id LIMIT ?",
        (survey_id, after_id, limit),
    )
    if not rows:
        return []
    cities = [_city(row) for row in rows]
    first, last = cities[0].id, cities[-1].id
    answers: dict[int, dict[str, AnswerValue]] = {c.id: {} for c in cities}
    # One round trip for the batch's answers (a batch of reports bounds what is held at once).
    for row in await _all(
        db,
        "SELECT report_id, question_id, value_json FROM answers"
        " WHERE report_id BETWEEN ? AND ? ORDER BY report_id, question_id",
        (first, last),
    ):
        if row["report_id"] in answers:
            answers[row["report_id"]][str(row["question_id"])] = _decode(row["value_json"])
    files: dict[int, list[Attachment]] = {c.id: [] for c in cities}
    for row in await _all(
        db,
        "SELECT report_id, sha256, name, mime_type, size, caption FROM attachments"
        " WHERE report_id BETWEEN ? AND ? ORDER BY report_id, uploaded_at, id",
        (first, last),
    ):
        if row["report_id"] in files:
            files[row["report_id"]].append(_attachment(row))
    return [(city, answers[city.id], tuple(files[city.id])) for city in cities]


async def _write_status(db: Db, report_id: int, contact_id: int, after: Report, now: dt.datetime) -> None:
    """Store `after`'s status and submission time if they differ from the database's."""
    row = await _one(db, "SELECT status, submitted_at FROM reports WHERE id = ?", (report_id,))
    if row is None:
        raise LookupError(f"no report with id {report_id}")
    new_status, new_submitted = after.status.value, _ts_opt(after.submitted_at)
    if (row["status"], row["submitted_at"]) == (new_status, new_submitted):
        return
    await db.execute(
        "UPDATE reports SET status = ?, submitted_at = ? WHERE id = ?", (new_status, new_submitted, report_id)
    )
    await _audit(
        db,
        report_id,
        contact_id,
        None,
        _STATUS_ACTION[after.status],
        _status_json(row["status"], row["submitted_at"]),
        _status_json(new_status, new_submitted),
        now,
    )
    logger.info("report %d is now %s (contact %d)", report_id, new_status, contact_id)
