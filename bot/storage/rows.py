"""What the storage returns (cities, contacts, invitations, …) and how table rows become them.

Rules of this module:
- Plain functions of an open `sqlite3.Connection`, run inside a transaction that `Connection._run`
  opened; none of them commits.
- Times are stored as ISO 8601 text, aware times in UTC (`_ts`); answers as compact JSON (`_encode`).
- Invitation tokens are never stored or logged; only their sha256 is kept (`_token_hash`).
- Every change to answers, status and attachments leaves an `audit` row (`_audit`) and raises the
  report's version (`_bump`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite
from pydantic import ValidationError

from conversation.state import AnswerValue, Attachment, ReportStatus, Session

logger = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


_STATUS_ACTION = {
    ReportStatus.OPEN: "reopen",
    ReportStatus.SUBMITTED: "submit",
    ReportStatus.EXEMPT: "exempt",
}


_CONTACT_COLUMNS = (
    "id, report_id, telegram_user_id, chat_id, console_key, display_name, language, reminders_paused, blocked, username"
)


# Contacts the team removed keep their row (the audit trail names them) but see nothing any more.
_ACTIVE = "removed_at IS NULL"


_INVITATION_COLUMNS = (
    "id, report_id, created_at, revoked_at, used_count, max_uses, expires_at, name, email, invited_by,"
    " (SELECT count(*) FROM invitation_uses AS u WHERE u.invitation_id = invitations.id) AS uses"
)


_REPORT_COLUMNS = "id, survey_id, city, country, joined, status, submitted_at, languages"


class ReportChanged(Exception):
    """The report changed since it was read (another contact's save): nothing was written."""


class ReportClosed(Exception):
    """The report is submitted or exempt: its files cannot change (nothing was written)."""


class FilesFull(Exception):
    """The report already has the most files allowed (nothing was written)."""


@dataclass(frozen=True)
class City:
    """A member city's report row (without its answers)."""

    id: int
    survey_id: str
    name: str
    country: str
    joined: str | None
    status: ReportStatus
    submitted_at: dt.datetime | None
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Contact:
    """A person (Telegram user or console user) working on one city's report."""

    id: int
    report_id: int
    telegram_user_id: int | None
    chat_id: int | None
    console_key: str | None
    display_name: str
    language: str
    reminders_paused: bool
    blocked: bool
    username: str | None = None


@dataclass(frozen=True)
class Invitation:
    """One invitation link (its token is not stored). `max_uses`/`expires_at` None: the shared,
    never-expiring links made before personal invitations."""

    id: int
    report_id: int
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    max_uses: int | None
    expires_at: dt.datetime | None
    uses: int
    name: str | None
    email: str | None
    invited_by: int | None

    def live(self, now: dt.datetime) -> bool:
        """Whether a new account could still join with it."""
        return (
            self.revoked_at is None
            and (self.expires_at is None or now < self.expires_at)
            and (self.max_uses is None or self.uses < self.max_uses)
        )


class Redeemed(enum.Enum):
    """What opening an invitation link did."""

    JOINED = "joined"  # a new member of the city (the team is told)
    AGAIN = "again"  # already a member of this city: nothing changes
    UNKNOWN = "unknown"  # no such link, or withdrawn
    EXPIRED = "expired"
    USED = "used"  # every use of the link went to other accounts
    REMOVED = "removed"  # this account was removed from the city after the link was made


@dataclass(frozen=True)
class Redemption:
    """The outcome of opening a link, with what the team's join notice names."""

    outcome: Redeemed
    contact: Contact | None = None
    invitation: Invitation | None = None
    inviter: Contact | None = None


@dataclass(frozen=True)
class ContactListing:
    """One contact as the team's contact list shows them."""

    contact: Contact
    city: City
    joined_at: dt.datetime | None
    last_active: dt.datetime
    invitation: Invitation | None
    inviter: Contact | None


@dataclass(frozen=True)
class Purged:
    """What a purge erased; `orphaned_files` are content hashes no report refers to any more."""

    reports: int
    contacts: int
    answers: int
    audit_rows: int
    attachments: int
    orphaned_files: tuple[str, ...]


class ContactRemoved(LookupError):
    """The contact was removed from the city (or left it) while their input was being handled."""


class TooManyLinks(Exception):
    """A contact already has the most unused colleague links allowed."""


ReportExport = tuple[City, dict[str, AnswerValue], tuple[Attachment, ...]]


Db = aiosqlite.Connection


async def _one(db: Db, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    """Return the first row of a query, or None."""
    rows = await db.execute_fetchall(sql, tuple(params))
    return next(iter(rows), None)


async def _all(db: Db, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Return every row of a query."""
    return list(await db.execute_fetchall(sql, tuple(params)))


async def _scalar(db: Db, sql: str) -> Any:
    """Return the first column of the first row of a query."""
    row = await _one(db, sql)
    return None if row is None else row[0]


async def _scalar_args(db: Db, sql: str, *params: Any) -> int:
    """Return the first column of the first row of a query with parameters, as an int."""
    row = await _one(db, sql, params)
    return 0 if row is None or row[0] is None else int(row[0])


async def _scalar_p(db: Db, sql: str, params: Iterable[Any]) -> Any:
    """Return the first column of the first row of a query with parameters."""
    row = await _one(db, sql, params)
    return None if row is None else row[0]


async def _rollback(db: Db) -> None:
    """Roll back the open transaction, if any, without raising."""
    try:
        if db.in_transaction:
            await db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.error("rollback failed: %s", exc)


def _rowid(cur: aiosqlite.Cursor) -> int:
    """Return the rowid of the row just inserted."""
    if cur.lastrowid is None:
        raise RuntimeError("INSERT did not report a rowid")
    return cur.lastrowid


async def _bump(db: Db, report_id: int) -> None:
    """Raise the report's version: its answers, status or files changed."""
    await db.execute("UPDATE reports SET version = version + 1 WHERE id = ?", (report_id,))


async def _require_report(db: Db, report_id: int) -> None:
    """Raise LookupError unless the report exists."""
    if await _one(db, "SELECT 1 FROM reports WHERE id = ?", (report_id,)) is None:
        raise LookupError(f"no report with id {report_id}")


async def _contact_of_user(db: Db, user_id: int) -> Contact | None:
    """Return the contact bound to this Telegram user, or None."""
    row = await _one(
        db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE telegram_user_id = ? AND {_ACTIVE}", (user_id,)
    )
    return None if row is None else _contact(row)


async def _contact_by_id(db: Db, contact_id: int) -> Contact:
    """Return the contact with this id (which must exist)."""
    row = await _one(db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE id = ?", (contact_id,))
    if row is None:
        raise LookupError(f"no contact with id {contact_id}")
    return _contact(row)


async def _answers(db: Db, report_id: int) -> dict[str, AnswerValue]:
    """Return the report's decoded answers by question id."""
    rows = await _all(
        db, "SELECT question_id, value_json FROM answers WHERE report_id = ? ORDER BY question_id", (report_id,)
    )
    return {str(row["question_id"]): _decode(row["value_json"]) for row in rows}


async def _attachments(db: Db, report_id: int) -> tuple[Attachment, ...]:
    """Return the report's attachments in upload order."""
    rows = await _all(
        db,
        "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? ORDER BY uploaded_at, id",
        (report_id,),
    )
    return tuple(_attachment(row) for row in rows)


async def _audit(
    db: Db,
    report_id: int,
    contact_id: int | None,
    question_id: str | None,
    action: str,
    old_json: str | None,
    new_json: str | None,
    now: dt.datetime,
) -> None:
    """Append one audit row."""
    await db.execute(
        "INSERT INTO audit (report_id, contact_id, question_id, action, old_json, new_json, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (report_id, contact_id, question_id, action, old_json, new_json, _ts(now)),
    )


async def _audit_many(db: Db, rows: list[tuple[int, int | None, str | None, str, str | None, str | None, str]]) -> None:
    """Append audit rows (report, contact, question, action, old JSON, new JSON, time as stored)."""
    await db.executemany(
        "INSERT INTO audit (report_id, contact_id, question_id, action, old_json, new_json, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _status_json(status: str, submitted_at: str | None) -> str:
    """Encode a status and submission time for the audit log."""
    return json.dumps({"status": status, "submitted_at": submitted_at})


def _city(row: sqlite3.Row, *, joined: str | None = None) -> City:
    """Build a City from a reports row (optionally overriding `joined`)."""
    return City(
        id=int(row["id"]),
        survey_id=str(row["survey_id"]),
        name=str(row["city"]),
        country=str(row["country"]),
        joined=joined if joined is not None else row["joined"],
        status=ReportStatus(row["status"]),
        submitted_at=_parse_ts(row["submitted_at"]),
        languages=_split_languages(row["languages"]),
    )


def _contact(row: sqlite3.Row) -> Contact:
    """Build a Contact from a contacts row."""
    return Contact(
        id=int(row["id"]),
        report_id=int(row["report_id"]),
        telegram_user_id=row["telegram_user_id"],
        chat_id=row["chat_id"],
        console_key=row["console_key"],
        display_name=str(row["display_name"]),
        language=str(row["language"]),
        reminders_paused=bool(row["reminders_paused"]),
        blocked=bool(row["blocked"]),
        username=row["username"],
    )


def _invitation(row: sqlite3.Row) -> Invitation:
    """Build an Invitation from an invitations row (selected with `_INVITATION_COLUMNS`)."""
    created = _parse_ts(row["created_at"])
    assert created is not None
    return Invitation(
        id=int(row["id"]),
        report_id=int(row["report_id"]),
        created_at=created,
        revoked_at=_parse_ts(row["revoked_at"]),
        max_uses=row["max_uses"],
        expires_at=_parse_ts(row["expires_at"]),
        uses=int(row["uses"]),
        name=row["name"],
        email=row["email"],
        invited_by=row["invited_by"],
    )


def _attachment(row: sqlite3.Row) -> Attachment:
    """Build an Attachment from an attachments row."""
    return Attachment(
        sha256=row["sha256"], name=row["name"], mime_type=row["mime_type"], size=row["size"], caption=row["caption"]
    )


def _session(session_json: str, language: str, contact_id: int) -> Session:
    """Decode a saved session; an unreadable one restarts at the default session."""
    try:
        return Session.model_validate_json(session_json)
    except ValidationError as exc:
        logger.warning(
            "contact %d: unreadable saved session, starting afresh (%d errors)", contact_id, exc.error_count()
        )
        return Session(language=language)


def _split_languages(value: str | None) -> tuple[str, ...]:
    """Split a comma-separated language list."""
    return tuple(part for part in (value or "").split(",") if part)


def _encode(value: AnswerValue) -> str:
    """Encode an answer as JSON (a tuple becomes a list)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False, separators=(",", ":"))


def _decode(value_json: str) -> AnswerValue:
    """Decode a stored answer (a JSON list becomes a tuple)."""
    value = json.loads(value_json)
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return str(value)


def _token_hash(token: str) -> str:
    """Return the sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _ts(moment: dt.datetime) -> str:
    """Format a time for storage (aware times are stored in UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat()


def _ts_opt(moment: dt.datetime | None) -> str | None:
    """Format an optional time for storage."""
    return None if moment is None else _ts(moment)


def _parse_ts(value: str | None) -> dt.datetime | None:
    """Parse a stored time."""
    return None if value is None else dt.datetime.fromisoformat(value)
