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
import logging
from collections.abc import AsyncGenerator
from functools import partial

from bot.storage.connection import Connection
from bot.storage.rows import (
    _ACTIVE,
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
    _bump,
    _city,
    _contact_of_user,
    _decode,
    _encode,
    _one,
    _parse_ts,
    _scalar_p,
    _session,
    _split_languages,
    _status_json,
    _ts,
    _ts_opt,
)
from conversation.state import AnswerValue, Attachment, Report, ReportStatus, Session

logger = logging.getLogger(__name__)


class Answers(Connection):
    """Reports' answers, files and the contacts' sessions."""

    async def contact_with_state(self, user_id: int) -> tuple[Contact, Report, Session] | None:
        """The contact bound to this Telegram user with their report and session (one snapshot), or None."""

        def work(db: Db) -> tuple[Contact, Report, Session] | None:
            contact = _contact_of_user(db, user_id)
            return None if contact is None else (contact, *_load(db, contact=contact))

        return await self._run(work, write=False)

    async def load(self, contact: Contact) -> tuple[Report, Session]:
        """Return the contact's report and their own session, read in one snapshot."""
        return await self._run(partial(_load, contact=contact), write=False)

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
        changed = sorted(
            q for q in before.answers.keys() | after.answers.keys() if before.answers.get(q) != after.answers.get(q)
        )
        work = partial(
            _save,
            contact=contact,
            changed={q: after.answers.get(q) for q in changed},
            status_changed=before.status != after.status or before.submitted_at != after.submitted_at,
            after=after,
            session=session,
            now=now,
            answer_message=answer_message,
            update_id=update_id,
            expected_version=before.version,
        )
        await self._run(work, write=True)

    async def answers_of(self, report_id: int) -> dict[str, AnswerValue]:
        """Return the report's answers by question id."""
        return await self._run(lambda db: _answers(db, report_id), write=False)

    async def iter_reports_with_answers(self, survey_id: str, batch: int = 100) -> AsyncGenerator[ReportExport, None]:
        """Yield (city, answers, attachments) for each report of the survey, in id order.

        Reports are read `batch` at a time (three queries in one transaction per batch), so memory
        stays flat in the number of reports while a thousand reports take ten round trips.
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

        def work(db: Db) -> bool:
            if max_files is not None:
                row = _one(db, "SELECT status FROM reports WHERE id = ?", (report_id,))
                if row is None:
                    raise LookupError(f"no report with id {report_id}")
                if row["status"] != ReportStatus.OPEN.value:
                    raise ReportClosed(f"report {report_id} is {row['status']}")
            if update_id is not None:
                db.execute(
                    "INSERT OR IGNORE INTO handled_updates (update_id, handled_at) VALUES (?, ?)", (update_id, _ts(now))
                )
            if _one(db, "SELECT 1 FROM attachments WHERE report_id = ? AND sha256 = ?", (report_id, attachment.sha256)):
                return False
            if max_files is not None:
                count = int(_scalar_p(db, "SELECT count(*) FROM attachments WHERE report_id = ?", (report_id,)))
                if count >= max_files:
                    raise FilesFull(f"report {report_id} has {count} files")
            cur = db.execute(
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
            _bump(db, report_id)
            _audit(db, report_id, contact_id, None, "attach", None, attachment.model_dump_json(), now)
            return True

        return await self._run(work, write=True)

    async def describe_attachment(
        self, report_id: int, sha256: str, caption: str, *, contact_id: int | None = None, now: dt.datetime
    ) -> bool:
        """Give the report's file a new description (caption); False if there is no such file or no change."""

        def work(db: Db) -> bool:
            row = _one(
                db,
                "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? AND sha256 = ?",
                (report_id, sha256),
            )
            if row is None or row["caption"] == caption:
                return False
            before = _attachment(row)
            db.execute(
                "UPDATE attachments SET caption = ? WHERE report_id = ? AND sha256 = ?", (caption, report_id, sha256)
            )
            _bump(db, report_id)
            after = before.model_copy(update={"caption": caption})
            _audit(db, report_id, contact_id, None, "describe", before.model_dump_json(), after.model_dump_json(), now)
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
        def work(db: Db) -> Attachment | None:
            if only_open:
                status = _one(db, "SELECT status FROM reports WHERE id = ?", (report_id,))
                if status is not None and status["status"] != ReportStatus.OPEN.value:
                    raise ReportClosed(f"report {report_id} is {status['status']}")
            row = _one(
                db,
                "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? AND sha256 = ?",
                (report_id, sha256),
            )
            if row is None:
                return None
            attachment = _attachment(row)
            db.execute("DELETE FROM attachments WHERE report_id = ? AND sha256 = ?", (report_id, sha256))
            _bump(db, report_id)
            _audit(db, report_id, contact_id, None, "detach", attachment.model_dump_json(), None, now)
            return attachment

        return await self._run(work, write=True)

    async def attachment_hashes(self) -> set[str]:
        """The content hashes of every stored file some report refers to."""
        rows = await self._run(lambda db: _all(db, "SELECT DISTINCT sha256 FROM attachments"), write=False)
        return {str(row["sha256"]) for row in rows}

    async def attachments(self, report_id: int) -> tuple[Attachment, ...]:
        """Return the report's files in upload order."""
        return await self._run(lambda db: _attachments(db, report_id), write=False)


def _load(db: Db, *, contact: Contact) -> tuple[Report, Session]:
    """Read the contact's report and session (see `Storage.load`)."""
    crow = _one(db, "SELECT language, session_json FROM contacts WHERE id = ?", (contact.id,))
    if crow is None:
        raise LookupError(f"no contact with id {contact.id}")
    rrow = _one(db, "SELECT status, submitted_at, version FROM reports WHERE id = ?", (contact.report_id,))
    if rrow is None:
        raise LookupError(f"no report with id {contact.report_id}")
    report = Report(
        answers=_answers(db, contact.report_id),
        status=ReportStatus(rrow["status"]),
        attachments=_attachments(db, contact.report_id),
        submitted_at=_parse_ts(rrow["submitted_at"]),
        version=int(rrow["version"]),
    )
    if crow["session_json"] is None:
        return report, Session(language=crow["language"])
    return report, _session(crow["session_json"], crow["language"], contact.id)


def _save(
    db: Db,
    *,
    contact: Contact,
    changed: dict[str, AnswerValue | None],
    status_changed: bool,
    after: Report,
    session: Session,
    now: dt.datetime,
    answer_message: tuple[int, str, str] | None,
    update_id: int | None,
    expected_version: int,
) -> None:
    """Write one save (see `Storage.save`): changed answers with their audit rows, status, session."""
    at = _ts(now)
    report_id = contact.report_id
    answered = False
    if changed or status_changed:
        row = _one(db, "SELECT version FROM reports WHERE id = ?", (report_id,))
        if row is None:
            raise LookupError(f"no report with id {report_id}")
        if int(row["version"]) != expected_version:
            raise ReportChanged(f"report {report_id} is at version {row['version']}, not {expected_version}")
        _bump(db, report_id)
    for question_id, value in changed.items():
        new_json = None if value is None else _encode(value)
        row = _one(
            db, "SELECT value_json FROM answers WHERE report_id = ? AND question_id = ?", (report_id, question_id)
        )
        old_json = None if row is None else str(row["value_json"])
        if old_json == new_json:
            continue
        if new_json is None:
            db.execute("DELETE FROM answers WHERE report_id = ? AND question_id = ?", (report_id, question_id))
            action = "clear"
        else:
            db.execute(
                "INSERT INTO answers (report_id, question_id, value_json, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_id, question_id) DO UPDATE SET"
                " value_json = excluded.value_json, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (report_id, question_id, new_json, contact.id, at),
            )
            action = "answer"
            answered = True
            # Only the new value: the old one is the previous audit row's, so history grows linearly
            # (an append does not store the whole text twice).
            old_json = None
        _audit(db, report_id, contact.id, question_id, action, old_json, new_json, now)
    if status_changed:
        _write_status(db, report_id, contact.id, after, now)
    cur = db.execute(
        "UPDATE contacts SET session_json = ?, language = ?, updated_at = ?"
        f" WHERE id = ? AND report_id = ? AND {_ACTIVE}",
        (session.model_dump_json(), session.language, at, contact.id, report_id),
    )
    if cur.rowcount != 1:  # removed (or moved) since the update was read: nothing of this save is kept
        raise ContactRemoved(f"contact {contact.id} is no longer a member of report {report_id}")
    if answered:
        _add_language(db, report_id, session.language)
    if update_id is not None:
        db.execute("INSERT OR IGNORE INTO handled_updates (update_id, handled_at) VALUES (?, ?)", (update_id, at))
    if answer_message is not None:
        db.execute(
            "INSERT OR REPLACE INTO answer_messages (contact_id, message_id, question_id, text) VALUES (?, ?, ?, ?)",
            (contact.id, *answer_message),
        )


def _report_batch(db: Db, *, survey_id: str, after_id: int, limit: int) -> list[ReportExport]:
    """Read up to `limit` reports with id above `after_id`, with their answers and files."""
    rows = _all(
        db,
        f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ? AND id > ? ORDER BY id LIMIT ?",
        (survey_id, after_id, limit),
    )
    if not rows:
        return []
    cities = [_city(row) for row in rows]
    first, last = cities[0].id, cities[-1].id
    answers: dict[int, dict[str, AnswerValue]] = {c.id: {} for c in cities}
    # Iterated, not fetched whole: each row is decoded and dropped, so the raw texts are not held twice.
    for row in db.execute(
        "SELECT report_id, question_id, value_json FROM answers"
        " WHERE report_id BETWEEN ? AND ? ORDER BY report_id, question_id",
        (first, last),
    ):
        if row["report_id"] in answers:
            answers[row["report_id"]][str(row["question_id"])] = _decode(row["value_json"])
    files: dict[int, list[Attachment]] = {c.id: [] for c in cities}
    for row in _all(
        db,
        "SELECT report_id, sha256, name, mime_type, size, caption FROM attachments"
        " WHERE report_id BETWEEN ? AND ? ORDER BY report_id, uploaded_at, id",
        (first, last),
    ):
        if row["report_id"] in files:
            files[row["report_id"]].append(_attachment(row))
    return [(city, answers[city.id], tuple(files[city.id])) for city in cities]


def _write_status(db: Db, report_id: int, contact_id: int, after: Report, now: dt.datetime) -> None:
    """Store `after`'s status and submission time if they differ from the database's."""
    row = _one(db, "SELECT status, submitted_at FROM reports WHERE id = ?", (report_id,))
    if row is None:
        raise LookupError(f"no report with id {report_id}")
    new_status, new_submitted = after.status.value, _ts_opt(after.submitted_at)
    if (row["status"], row["submitted_at"]) == (new_status, new_submitted):
        return
    db.execute("UPDATE reports SET status = ?, submitted_at = ? WHERE id = ?", (new_status, new_submitted, report_id))
    _audit(
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


def _add_language(db: Db, report_id: int, language: str) -> None:
    """Add the language to the report's answer languages if it is not listed yet."""
    row = _one(db, "SELECT languages FROM reports WHERE id = ?", (report_id,))
    if row is None:
        raise LookupError(f"no report with id {report_id}")
    languages = _split_languages(row["languages"])
    if language not in languages:
        db.execute("UPDATE reports SET languages = ? WHERE id = ?", (",".join((*languages, language)), report_id))
