"""Durable storage of reports, contacts and sessions in one SQLite file.

Rules of this module:
- Every write is one `BEGIN IMMEDIATE … COMMIT` transaction; the bot replies only
  after `save` returns, so an acknowledged answer is on disk (WAL, synchronous=FULL).
- A failed write rolls back completely; the database is never left half-updated.
- `save` writes only the difference between `before` and `after`, so contacts sharing
  one city's report never overwrite each other's answers to other questions; and it writes a
  change of the report only if the report's `version` is still `before.version` (checked inside
  the write transaction; `ReportChanged` otherwise). Every change of a report's answers, status
  or files raises its version.
- A file is added only to an open report with room for it, checked in the transaction that adds it.
- Every change to answers, status and attachments leaves an `audit` row. An answer's row holds
  its new value only (the old one is the previous row's), so history grows linearly.
- Invitation tokens are never stored or logged; only their sha256 is kept. A link admits at most
  `max_uses` accounts until `expires_at` (both NULL for links made before schema v6: unlimited).
- A removed contact keeps its row (the audit trail names it), but no look-up by Telegram user
  returns it, and a save for it is refused whole (`ContactRemoved`).
- Deleted rows are overwritten (`secure_delete`); a purge also empties the write-ahead log.
- Answers and session contents are never logged (they are personal data).
- The schema is versioned by `PRAGMA user_version`; `MIGRATIONS` only grows, and
  applied migrations are never edited.
- Locked, read-only and full databases raise `StorageUnavailable` (try again later);
  anything else is a bug and propagates unchanged.
- One connection per `Storage`. Each operation is one plain function run as one transaction on
  aiosqlite's worker thread (`_run`): a single round trip to that thread, however many
  statements it runs, and no other coroutine's statement can slip into it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import json
import logging
import re
import secrets
import sqlite3
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite
from pydantic import ValidationError

from conversation.state import AnswerValue, Attachment, Report, ReportStatus, Session
from conversation.validation import is_month_value

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Migration i (0-based) takes the schema from user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    # v1: reports, contacts, invitations, answers, audit, attachments.
    """
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        survey_id TEXT NOT NULL,
        city TEXT NOT NULL,
        country TEXT NOT NULL,
        joined TEXT CHECK (joined IS NULL OR joined GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'submitted', 'exempt')),
        submitted_at TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (survey_id, city COLLATE NOCASE, country COLLATE NOCASE)
    );
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        report_id INTEGER NOT NULL REFERENCES reports (id),
        telegram_user_id INTEGER UNIQUE,
        chat_id INTEGER,
        console_key TEXT UNIQUE,
        display_name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT 'en',
        session_json TEXT,
        reminders_paused INTEGER NOT NULL DEFAULT 0 CHECK (reminders_paused IN (0, 1)),
        blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK (telegram_user_id IS NOT NULL OR console_key IS NOT NULL)
    );
    CREATE INDEX contacts_by_report ON contacts (report_id);
    CREATE TABLE invitations (
        id INTEGER PRIMARY KEY,
        report_id INTEGER NOT NULL REFERENCES reports (id),
        token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        used_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX invitations_by_report ON invitations (report_id);
    CREATE TABLE answers (
        report_id INTEGER NOT NULL REFERENCES reports (id),
        question_id TEXT NOT NULL,
        value_json TEXT NOT NULL,
        updated_by INTEGER REFERENCES contacts (id),
        updated_at TEXT NOT NULL,
        PRIMARY KEY (report_id, question_id)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        report_id INTEGER NOT NULL REFERENCES reports (id),
        contact_id INTEGER REFERENCES contacts (id),
        question_id TEXT,
        action TEXT NOT NULL,
        old_json TEXT,
        new_json TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX audit_by_report ON audit (report_id, id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        report_id INTEGER NOT NULL REFERENCES reports (id),
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        mime_type TEXT,
        size INTEGER NOT NULL,
        uploaded_by INTEGER REFERENCES contacts (id),
        uploaded_at TEXT NOT NULL,
        telegram_file_unique_id TEXT,
        UNIQUE (report_id, sha256)
    );
    """,
    # v2: answer languages, edited-message mapping, reminder log, admins.
    """
    ALTER TABLE reports ADD COLUMN languages TEXT NOT NULL DEFAULT '';
    UPDATE reports SET languages = coalesce(
        (SELECT group_concat(DISTINCT c.language) FROM contacts AS c WHERE c.report_id = reports.id), '')
    WHERE EXISTS (SELECT 1 FROM answers AS a WHERE a.report_id = reports.id);
    CREATE TABLE answer_messages (
        contact_id INTEGER NOT NULL REFERENCES contacts (id),
        message_id INTEGER NOT NULL,
        question_id TEXT NOT NULL,
        text TEXT,
        PRIMARY KEY (contact_id, message_id)
    ) WITHOUT ROWID;
    CREATE TABLE reminders_sent (
        contact_id INTEGER NOT NULL REFERENCES contacts (id),
        reminder_key TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (contact_id, reminder_key)
    ) WITHOUT ROWID;
    CREATE TABLE admins (
        telegram_user_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        language TEXT NOT NULL DEFAULT 'en'
    );
    """,
    # v3: updates fetched from Telegram but not yet handled (so a crash loses none), and the
    # updates whose changes are committed (so a redelivered one is not applied twice). Update ids
    # are compared only within days: Telegram may restart them at random after a quiet week.
    """
    CREATE TABLE handled_updates (
        update_id INTEGER PRIMARY KEY,
        handled_at TEXT NOT NULL
    );
    CREATE TABLE inbox (
        update_id INTEGER PRIMARY KEY,
        payload TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    """,
    # v4: the caption a contact wrote with a file, kept as the file's description.
    """
    ALTER TABLE attachments ADD COLUMN caption TEXT;
    """,
    # v5: the message carrying each chat's live inline keyboard (retired by the next reply).
    """
    CREATE TABLE keyboards (
        chat_id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # v6: personal invitations (how many accounts may use a link, until when, for whom, invited by
    # which contact), the accounts that used each link, and contacts the team removed. Links made
    # before keep max_uses and expires_at NULL: any number of accounts, no expiry, as they were.
    """
    ALTER TABLE invitations ADD COLUMN max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1);
    ALTER TABLE invitations ADD COLUMN expires_at TEXT;
    ALTER TABLE invitations ADD COLUMN name TEXT;
    ALTER TABLE invitations ADD COLUMN email TEXT;
    ALTER TABLE invitations ADD COLUMN invited_by INTEGER REFERENCES contacts (id);
    CREATE TABLE invitation_uses (
        invitation_id INTEGER NOT NULL REFERENCES invitations (id),
        telegram_user_id INTEGER NOT NULL,
        used_at TEXT NOT NULL,
        PRIMARY KEY (invitation_id, telegram_user_id)
    ) WITHOUT ROWID;
    ALTER TABLE contacts ADD COLUMN username TEXT;
    ALTER TABLE contacts ADD COLUMN invitation_id INTEGER REFERENCES invitations (id);
    ALTER TABLE contacts ADD COLUMN joined_at TEXT;
    ALTER TABLE contacts ADD COLUMN removed_at TEXT;
    UPDATE contacts SET joined_at = created_at;
    """,
    # v7: a version per report, raised by every change of its answers, status or files, so a save
    # commits only if the report is still what the step decided on.
    """
    ALTER TABLE reports ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_STATUS_ACTION = {
    ReportStatus.OPEN: "reopen",
    ReportStatus.SUBMITTED: "submit",
    ReportStatus.EXEMPT: "exempt",
}
# Primary SQLite result codes that mean "the database cannot be used right now".
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_BUSY: "database is locked",
    sqlite3.SQLITE_LOCKED: "database is locked",
    sqlite3.SQLITE_READONLY: "database is read-only",
    sqlite3.SQLITE_IOERR: "disk I/O error",
    sqlite3.SQLITE_FULL: "disk is full",
    sqlite3.SQLITE_CANTOPEN: "database file cannot be opened",
}
ANSWER_MESSAGES_KEPT = 2000  # per contact: edits of messages further back are not applied
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


class StorageUnavailable(Exception):
    """The database is locked, read-only or full; the operation may succeed later."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the bot; this code must not touch it."""


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
Db = sqlite3.Connection


class Storage:
    """Async access to the bot's SQLite database."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        """Wrap an open, migrated connection; use `Storage.open` instead."""
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path) -> Storage:
        """Open (creating if needed) and migrate the database at `path`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create the directory for database {path}: {exc}") from exc
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.OperationalError as exc:
            wrapped = _unavailable(exc, path)
            if wrapped is None:
                raise
            raise wrapped from exc
        try:
            db.row_factory = sqlite3.Row
            await _on_thread(db, partial(_prepare, path=path))
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.OperationalError) and (wrapped := _unavailable(exc, path)):
                raise wrapped from exc
            raise
        logger.info("opened database %s (schema v%d)", path, SCHEMA_VERSION)
        return cls(db, path)

    async def close(self) -> None:
        """Close the connection; further calls fail."""
        async with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                await db.close()
                logger.info("closed database %s", self._path)

    async def __aenter__(self) -> Storage:
        """Enter `async with`; the storage is already open."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on leaving `async with`."""
        await self.close()

    async def _run(self, work: Callable[[Db], T], *, write: bool, fsync: bool = True) -> T:
        """Run `work(connection)` as one transaction (IMMEDIATE for writes) on the connection's thread.

        Any error rolls the whole transaction back. `fsync=False` commits without waiting for the
        disk (WAL with synchronous=NORMAL): safe when the process is killed, not on power loss; the
        next full commit makes it durable too.
        """
        async with self._lock:
            db = self._db
            if db is None:
                raise RuntimeError("storage is closed")
            try:
                return await _on_thread(db, partial(_transact, work, write=write, fsync=fsync))
            except sqlite3.OperationalError as exc:
                if wrapped := _unavailable(exc, self._path):
                    raise wrapped from exc
                raise

    # ------------------------------------------------------------ reports

    async def find_or_create_report(
        self, survey_id: str, city: str, country: str, joined: str | None, now: dt.datetime
    ) -> City:
        """Return the report of this city (case-insensitive), creating it if needed."""
        report, created = await self._run(
            partial(_find_or_create, survey_id=survey_id, city=city, country=country, joined=joined, now=now),
            write=True,
        )
        if created:
            logger.info("created report %d for survey %s", report.id, survey_id)
        return report

    async def get_report(self, report_id: int) -> City | None:
        """Return the report with this id, or None."""
        row = await self._run(
            lambda db: _one(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,)), write=False
        )
        return None if row is None else _city(row)

    async def find_reports(self, survey_id: str, query: str) -> list[City]:
        """Return the cities named `query` (any case), else those whose name contains it."""
        needle = query.strip().casefold()
        if not needle:
            return []
        cities = await self.list_reports(survey_id)
        exact = [c for c in cities if c.name.casefold() == needle]
        return exact or [c for c in cities if needle in c.name.casefold()]

    async def list_reports(self, survey_id: str) -> list[City]:
        """Return every report of the survey, ordered by city and country."""
        rows = await self._run(
            lambda db: _all(
                db,
                f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ?"
                " ORDER BY city COLLATE NOCASE, country COLLATE NOCASE, id",
                (survey_id,),
            ),
            write=False,
        )
        return [_city(row) for row in rows]

    async def reopen(self, report_id: int, now: dt.datetime) -> None:
        """Set the report back to open (clearing its submission time)."""
        await self.set_status(report_id, ReportStatus.OPEN, now)

    async def set_status(self, report_id: int, status: ReportStatus, now: dt.datetime) -> None:
        """Set the report's status; submitted records `now` as its submission time."""
        status = ReportStatus(status)
        submitted_at = _ts(now) if status is ReportStatus.SUBMITTED else None

        def work(db: Db) -> bool:
            row = _one(db, "SELECT status, submitted_at FROM reports WHERE id = ?", (report_id,))
            if row is None:
                raise LookupError(f"no report with id {report_id}")
            if row["status"] == status.value:
                return False
            db.execute(
                "UPDATE reports SET status = ?, submitted_at = ?, version = version + 1 WHERE id = ?",
                (status.value, submitted_at, report_id),
            )
            _audit(
                db,
                report_id,
                None,
                None,
                _STATUS_ACTION[status],
                _status_json(row["status"], row["submitted_at"]),
                _status_json(status.value, submitted_at),
                now,
            )
            return True

        if await self._run(work, write=True):
            logger.info("report %d is now %s", report_id, status.value)

    # ------------------------------------------------------------ invitations

    async def create_invitation(
        self,
        report_id: int,
        now: dt.datetime,
        *,
        max_uses: int | None = None,
        expires_at: dt.datetime | None = None,
        name: str | None = None,
        email: str | None = None,
        invited_by: int | None = None,
    ) -> str:
        """Create an invitation to the report and return its token (only its hash is stored).

        `max_uses` accounts may join with it (None: any number), until `expires_at` (None: no end);
        the team's policy (personal, single-use, expiring) is chosen by the callers in `bot.admin`.
        """
        ((token, _),) = await self.create_invitations(
            [(report_id, name, email)], now, max_uses=max_uses, expires_at=expires_at, invited_by=invited_by
        )
        return token

    async def create_invitations(
        self,
        rows: list[tuple[int, str | None, str | None]],
        now: dt.datetime,
        *,
        max_uses: int | None,
        expires_at: dt.datetime | None,
        invited_by: int | None = None,
        colleague_cap: int | None = None,
    ) -> list[tuple[str, int]]:
        """Create one invitation per (report id, name, e-mail), all in one transaction; return
        (token, invitation id) in order. `colleague_cap` refuses (TooManyLinks) when `invited_by`
        already has that many links nobody has used yet and that still work."""
        if max_uses is not None and max_uses < 1:
            raise ValueError("max_uses must be at least 1")
        tokens = [new_token() for _ in rows]

        def work(db: Db) -> list[tuple[str, int]]:
            if colleague_cap is not None and invited_by is not None:
                open_links = [
                    inv
                    for inv in map(_invitation, _all(
                        db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE invited_by = ?", (invited_by,)
                    ))
                    if inv.uses == 0 and inv.live(now)
                ]  # fmt: skip
                if len(open_links) >= colleague_cap:
                    raise TooManyLinks(f"contact {invited_by} has {len(open_links)} unused links")
            made: list[tuple[str, int]] = []
            for token, (report_id, name, email) in zip(tokens, rows, strict=True):
                _require_report(db, report_id)
                cur = db.execute(
                    "INSERT INTO invitations (report_id, token_hash, created_at, max_uses, expires_at, name, email,"
                    " invited_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (report_id, _token_hash(token), _ts(now), max_uses, _ts_opt(expires_at), name, email, invited_by),
                )
                invitation_id = _rowid(cur)
                _audit(db, report_id, invited_by, None, "invite", None, json.dumps({"invitation": invitation_id}), now)
                made.append((token, invitation_id))
            return made

        made = await self._run(work, write=True)
        for _, invitation_id in made:
            logger.info("created invitation %d (uses %s)", invitation_id, max_uses or "any")
        return made

    async def invite_cities(
        self,
        survey_id: str,
        rows: list[tuple[str, str, str | None, str | None, str | None]],
        tokens: list[str],
        now: dt.datetime,
        *,
        max_uses: int,
        expires_at: dt.datetime,
    ) -> list[City]:
        """For each (city, country, joined, name, e-mail): find or create the city's report and make an
        invitation with the given token. All in one transaction: every row, or (on any error) none."""
        if len(rows) != len(tokens) or not all(_TOKEN_RE.fullmatch(t) for t in tokens):
            raise ValueError("one well-formed token per row is needed")

        def work(db: Db) -> list[City]:
            cities = []
            for token, (city, country, joined, name, email) in zip(tokens, rows, strict=True):
                report, _ = _find_or_create(db, survey_id=survey_id, city=city, country=country, joined=joined, now=now)
                cur = db.execute(
                    "INSERT INTO invitations (report_id, token_hash, created_at, max_uses, expires_at, name, email)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (report.id, _token_hash(token), _ts(now), max_uses, _ts(expires_at), name, email),
                )
                _audit(db, report.id, None, None, "invite", None, json.dumps({"invitation": _rowid(cur)}), now)
                cities.append(report)
            return cities

        cities = await self._run(work, write=True)
        logger.info("created %d invitations at once", len(cities))
        return cities

    async def redeem_invitation(
        self,
        token: str,
        *,
        telegram_user_id: int,
        chat_id: int,
        display_name: str,
        language: str,
        now: dt.datetime,
        username: str | None = None,
    ) -> Contact | None:
        """Bind the Telegram user to the token's report; None if the link does not let them in."""
        result = await self.redeem(
            token,
            telegram_user_id=telegram_user_id,
            chat_id=chat_id,
            display_name=display_name,
            language=language,
            now=now,
            username=username,
        )
        return result.contact

    async def redeem(
        self,
        token: str,
        *,
        telegram_user_id: int,
        chat_id: int,
        display_name: str,
        language: str,
        now: dt.datetime,
        username: str | None = None,
    ) -> Redemption:
        """Open an invitation link for a Telegram account.

        A link binds to the accounts that use it first, up to its `max_uses`; a member of the city
        opening one of its links changes nothing and uses nothing up; an account removed from the
        city cannot come back through a link made before its removal.
        """
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return Redemption(Redeemed.UNKNOWN)
        at = _ts(now)

        def work(db: Db) -> Redemption:
            row = _one(db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?", (_token_hash(token),))
            if row is None or row["revoked_at"] is not None:
                return Redemption(Redeemed.UNKNOWN)
            invitation = _invitation(row)
            report_id = invitation.report_id
            existing = _one(
                db, "SELECT id, report_id, removed_at FROM contacts WHERE telegram_user_id = ?", (telegram_user_id,)
            )
            used_before = (
                _one(
                    db,
                    "SELECT 1 FROM invitation_uses WHERE invitation_id = ? AND telegram_user_id = ?",
                    (invitation.id, telegram_user_id),
                )
                is not None
            )
            if existing is not None and int(existing["report_id"]) == report_id:
                removed = _parse_ts(existing["removed_at"])
                if removed is not None and (used_before or invitation.created_at <= removed):
                    return Redemption(Redeemed.REMOVED, invitation=invitation)
                if removed is None:
                    db.execute("UPDATE invitations SET used_count = used_count + 1 WHERE id = ?", (invitation.id,))
                    db.execute(
                        "UPDATE contacts SET chat_id = ?, blocked = 0, updated_at = ? WHERE id = ?",
                        (chat_id, at, existing["id"]),
                    )
                    return Redemption(Redeemed.AGAIN, _contact_by_id(db, int(existing["id"])), invitation)
            if not used_before:
                if invitation.expires_at is not None and now >= invitation.expires_at:
                    return Redemption(Redeemed.EXPIRED, invitation=invitation)
                if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
                    return Redemption(Redeemed.USED, invitation=invitation)
                db.execute(
                    "INSERT INTO invitation_uses (invitation_id, telegram_user_id, used_at) VALUES (?, ?, ?)",
                    (invitation.id, telegram_user_id, at),
                )
            db.execute("UPDATE invitations SET used_count = used_count + 1 WHERE id = ?", (invitation.id,))
            if existing is None:
                cur = db.execute(
                    "INSERT INTO contacts (report_id, telegram_user_id, chat_id, display_name, language, username,"
                    " invitation_id, created_at, updated_at, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (report_id, telegram_user_id, chat_id, display_name, language, username, invitation.id, at, at, at),
                )
                contact_id = _rowid(cur)
            else:
                contact_id = int(existing["id"])
                # Another city (or back after a removal): the old place in the questionnaire no longer
                # applies, and the messages that carried answers elsewhere map to nothing here.
                db.execute(
                    "UPDATE contacts SET report_id = ?, chat_id = ?, display_name = ?, username = ?, blocked = 0,"
                    " updated_at = ?, joined_at = ?, invitation_id = ?, removed_at = NULL, session_json = NULL"
                    " WHERE id = ?",
                    (report_id, chat_id, display_name, username, at, at, invitation.id, contact_id),
                )
                db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact_id,))
            _audit(db, report_id, contact_id, None, "join", None, json.dumps({"invitation": invitation.id}), now)
            inviter = None if invitation.invited_by is None else _contact_by_id(db, invitation.invited_by)
            return Redemption(Redeemed.JOINED, _contact_by_id(db, contact_id), invitation, inviter)

        result = await self._run(work, write=True)
        if result.outcome is Redeemed.JOINED:
            assert result.contact is not None and result.invitation is not None
            logger.info(
                "contact %d joined report %d by invitation %d",
                result.contact.id,
                result.contact.report_id,
                result.invitation.id,
            )
        elif result.outcome is not Redeemed.AGAIN and result.invitation is not None:
            logger.info("invitation %d refused to an account: %s", result.invitation.id, result.outcome.value)
        return result

    async def invitations_of(self, report_id: int) -> list[Invitation]:
        """Every invitation of the report, oldest first."""
        rows = await self._run(
            lambda db: _all(
                db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE report_id = ? ORDER BY id", (report_id,)
            ),
            write=False,
        )
        return [_invitation(row) for row in rows]

    async def invited_emails(self, report_id: int) -> set[str]:
        """The e-mail addresses (case-folded) the report's links were made for."""
        rows = await self._run(
            lambda db: _all(
                db, "SELECT email FROM invitations WHERE report_id = ? AND email IS NOT NULL", (report_id,)
            ),
            write=False,
        )
        return {str(row["email"]).casefold() for row in rows}

    async def revoke_invitation(self, token: str, *, now: dt.datetime | None = None) -> bool:
        """Revoke one invitation; False if the token is unknown or already revoked."""
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return False
        when = now or _utcnow()

        def work(db: Db) -> int | None:
            row = _one(
                db,
                "SELECT id, report_id FROM invitations WHERE token_hash = ? AND revoked_at IS NULL",
                (_token_hash(token),),
            )
            if row is None:
                return None
            db.execute("UPDATE invitations SET revoked_at = ? WHERE id = ?", (_ts(when), row["id"]))
            _audit(db, row["report_id"], None, None, "revoke", json.dumps({"invitation": row["id"]}), None, when)
            return int(row["id"])

        invitation_id = await self._run(work, write=True)
        if invitation_id is None:
            return False
        logger.info("revoked invitation %d", invitation_id)
        return True

    async def revoke_report_invitations(self, report_id: int, now: dt.datetime) -> int:
        """Revoke every live invitation of the report; return how many were revoked."""

        def work(db: Db) -> int:
            cur = db.execute(
                "UPDATE invitations SET revoked_at = ? WHERE report_id = ? AND revoked_at IS NULL",
                (_ts(now), report_id),
            )
            count = max(cur.rowcount, 0)
            if count:
                _audit(db, report_id, None, None, "revoke", json.dumps({"invitations": count}), None, now)
            return count

        count = await self._run(work, write=True)
        logger.info("revoked %d invitations of report %d", count, report_id)
        return count

    # ------------------------------------------------------------ contacts

    async def contact_by_telegram_user(self, user_id: int) -> Contact | None:
        """Return the contact bound to this Telegram user, or None."""
        return await self._run(lambda db: _contact_of_user(db, user_id), write=False)

    async def contact_with_state(self, user_id: int) -> tuple[Contact, Report, Session] | None:
        """The contact bound to this Telegram user with their report and session (one snapshot), or None."""

        def work(db: Db) -> tuple[Contact, Report, Session] | None:
            contact = _contact_of_user(db, user_id)
            return None if contact is None else (contact, *_load(db, contact=contact))

        return await self._run(work, write=False)

    async def console_contact(self, console_key: str, report_id: int, language: str, now: dt.datetime) -> Contact:
        """Return the console contact with this key on the report, creating or rebinding it."""
        at = _ts(now)

        def work(db: Db) -> Contact:
            _require_report(db, report_id)
            row = _one(db, "SELECT id, report_id FROM contacts WHERE console_key = ?", (console_key,))
            if row is None:
                cur = db.execute(
                    "INSERT INTO contacts (report_id, console_key, display_name, language, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (report_id, console_key, console_key, language, at, at),
                )
                contact_id = _rowid(cur)
            else:
                contact_id = int(row["id"])
                if int(row["report_id"]) != report_id:
                    db.execute(
                        "UPDATE contacts SET report_id = ?, session_json = NULL, updated_at = ? WHERE id = ?",
                        (report_id, at, contact_id),
                    )
            return _contact_by_id(db, contact_id)

        return await self._run(work, write=True)

    async def console_contact_if_exists(self, console_key: str) -> Contact | None:
        """Return the console contact with this key, or None."""
        row = await self._run(
            lambda db: _one(db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE console_key = ?", (console_key,)),
            write=False,
        )
        return None if row is None else _contact(row)

    async def rebind_chat(self, contact_id: int, chat_id: int) -> None:
        """Record the contact's current private chat and that they can be reached there."""
        at = _ts(_utcnow())
        await self._run(
            lambda db: db.execute(
                "UPDATE contacts SET chat_id = ?, blocked = 0, updated_at = ? WHERE id = ?", (chat_id, at, contact_id)
            ),
            write=True,
        )

    async def contacts_of_report(self, report_id: int) -> list[Contact]:
        """Return the report's contacts, oldest first."""
        rows = await self._run(
            lambda db: _all(
                db,
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE report_id = ? AND {_ACTIVE} ORDER BY id",
                (report_id,),
            ),
            write=False,
        )
        return [_contact(row) for row in rows]

    async def all_contacts(self) -> list[Contact]:
        """Return every contact, oldest first."""
        rows = await self._run(
            lambda db: _all(db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE {_ACTIVE} ORDER BY id"), write=False
        )
        return [_contact(row) for row in rows]

    async def contact_listing(self, survey_id: str, report_id: int | None = None) -> list[ContactListing]:
        """The current contacts of every city (or one), by city then joining order, for the team."""

        def work(db: Db) -> list[ContactListing]:
            where = "r.survey_id = ? AND c.removed_at IS NULL" + (" AND r.id = ?" if report_id is not None else "")
            params: tuple[Any, ...] = (survey_id,) if report_id is None else (survey_id, report_id)
            columns = ", ".join(f"c.{name.strip()}" for name in _CONTACT_COLUMNS.split(","))
            rows = _all(
                db,
                f"SELECT {columns}, c.joined_at, c.updated_at, c.invitation_id FROM contacts AS c"
                f" JOIN reports AS r ON r.id = c.report_id WHERE {where}"
                " ORDER BY r.city COLLATE NOCASE, r.country COLLATE NOCASE, c.id",
                params,
            )
            listing: list[ContactListing] = []
            for row in rows:
                contact = _contact(row)
                city_row = _one(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (contact.report_id,))
                assert city_row is not None
                invitation = None
                inviter = None
                if row["invitation_id"] is not None:
                    inv_row = _one(
                        db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = ?", (row["invitation_id"],)
                    )
                    invitation = None if inv_row is None else _invitation(inv_row)
                    if invitation is not None and invitation.invited_by is not None:
                        inviter = _contact_by_id(db, invitation.invited_by)
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

        def work(db: Db) -> Contact | None:
            column, value = ("telegram_user_id", telegram_user_id) if contact_id is None else ("id", contact_id)
            row = _one(
                db,
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE {column} = ? AND report_id = ? AND {_ACTIVE}",
                (value, report_id),
            )
            if row is None:
                return None
            contact = _contact(row)
            db.execute(
                "UPDATE contacts SET removed_at = ?, session_json = NULL, updated_at = ? WHERE id = ?",
                (_ts(now), _ts(now), contact.id),
            )
            db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact.id,))
            _audit(db, report_id, contact.id, None, "remove", json.dumps({"contact": contact.id}), None, now)
            return contact

        removed = await self._run(work, write=True)
        if removed is not None:
            logger.info("contact %d removed from report %d", removed.id, report_id)
        return removed

    async def personal_data(self, contact_id: int) -> dict[str, Any]:
        """What is stored about one contact (for /mydata): their own fields and what they gave."""

        def work(db: Db) -> dict[str, Any]:
            row = _one(
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
                invitation = _one(db, "SELECT name, email FROM invitations WHERE id = ?", (row["invitation_id"],))
            data["invitation_name"] = None if invitation is None else invitation["name"]
            data["invitation_email"] = None if invitation is None else invitation["email"]
            data["answers"] = _scalar_args(db, "SELECT count(*) FROM answers WHERE updated_by = ?", contact_id)
            data["audit_rows"] = _scalar_args(db, "SELECT count(*) FROM audit WHERE contact_id = ?", contact_id)
            data["files"] = _scalar_args(db, "SELECT count(*) FROM attachments WHERE uploaded_by = ?", contact_id)
            data["messages"] = _scalar_args(db, "SELECT count(*) FROM answer_messages WHERE contact_id = ?", contact_id)
            data["reminders"] = _scalar_args(db, "SELECT count(*) FROM reminders_sent WHERE contact_id = ?", contact_id)
            return data

        return await self._run(work, write=False)

    async def purge(self, report_ids: Iterable[int]) -> Purged:
        """Erase these reports and everything about them: answers, audit rows, attachments, contacts
        (with their per-message records, reminders and kept updates), invitations. Returns the
        content hashes of files no other report refers to, for the caller to delete."""
        ids = sorted(set(report_ids))

        def work(db: Db) -> Purged:
            counts = [0, 0, 0, 0, 0]
            shas: set[str] = set()
            for report_id in ids:
                contacts = [int(r["id"]) for r in _all(db, "SELECT id FROM contacts WHERE report_id = ?", (report_id,))]
                users = {
                    int(r["telegram_user_id"])
                    for r in _all(db, "SELECT telegram_user_id FROM contacts WHERE report_id = ?", (report_id,))
                    if r["telegram_user_id"] is not None
                }
                chats = {
                    int(r["chat_id"])
                    for r in _all(db, "SELECT chat_id FROM contacts WHERE report_id = ?", (report_id,))
                    if r["chat_id"] is not None
                }
                shas |= {str(r["sha256"]) for r in _all(db, "SELECT sha256 FROM attachments WHERE report_id = ?",
                                                        (report_id,))}  # fmt: skip
                counts[2] += db.execute("DELETE FROM answers WHERE report_id = ?", (report_id,)).rowcount
                counts[3] += db.execute("DELETE FROM audit WHERE report_id = ?", (report_id,)).rowcount
                counts[4] += db.execute("DELETE FROM attachments WHERE report_id = ?", (report_id,)).rowcount
                invitations = [(r["id"],) for r in _all(db, "SELECT id FROM invitations WHERE report_id = ?",
                                                        (report_id,))]  # fmt: skip
                db.executemany("DELETE FROM invitation_uses WHERE invitation_id = ?", invitations)
                for contact_id in contacts:
                    # What these people did in other cities stays, no longer naming them.
                    for table, column in (("answers", "updated_by"), ("audit", "contact_id"),
                                          ("attachments", "uploaded_by"), ("invitations", "invited_by")):  # fmt: skip
                        db.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = ?", (contact_id,))
                    db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact_id,))
                    db.execute("DELETE FROM reminders_sent WHERE contact_id = ?", (contact_id,))
                db.execute("UPDATE contacts SET invitation_id = NULL WHERE invitation_id IN"
                           " (SELECT id FROM invitations WHERE report_id = ?)", (report_id,))  # fmt: skip
                counts[1] += db.execute("DELETE FROM contacts WHERE report_id = ?", (report_id,)).rowcount
                db.execute("DELETE FROM invitations WHERE report_id = ?", (report_id,))
                db.executemany("DELETE FROM keyboards WHERE chat_id = ?", [(c,) for c in chats])
                _forget_inbox_of(db, users)
                counts[0] += db.execute("DELETE FROM reports WHERE id = ?", (report_id,)).rowcount
            orphaned = tuple(
                sorted(sha for sha in shas if _one(db, "SELECT 1 FROM attachments WHERE sha256 = ?", (sha,)) is None)
            )
            reports, contacts_, answers, audit_rows, attachments = counts
            return Purged(reports, contacts_, answers, audit_rows, attachments, orphaned_files=orphaned)

        purged = await self._run(work, write=True)
        await self.checkpoint()
        logger.info("purged %d report(s), %d contact(s)", purged.reports, purged.contacts)
        return purged

    async def reports_submitted_before(self, survey_id: str, moment: dt.datetime) -> list[City]:
        """The reports submitted before this time."""
        return [
            city
            for city in await self.list_reports(survey_id)
            if city.submitted_at is not None and city.submitted_at < moment
        ]

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and empty it, so erased rows linger in neither."""
        async with self._lock:
            db = self._db
            if db is None:
                raise RuntimeError("storage is closed")
            await _on_thread(db, lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    async def set_contact_language(self, contact_id: int, lang: str) -> None:
        """Set the contact's language (also in their saved session)."""
        at = _ts(_utcnow())

        def work(db: Db) -> None:
            row = _one(db, "SELECT session_json FROM contacts WHERE id = ?", (contact_id,))
            if row is None:
                raise LookupError(f"no contact with id {contact_id}")
            session_json = row["session_json"]
            if session_json is not None:
                session = _session(session_json, lang, contact_id)
                session_json = session.model_copy(update={"language": lang}).model_dump_json()
            db.execute(
                "UPDATE contacts SET language = ?, session_json = ?, updated_at = ? WHERE id = ?",
                (lang, session_json, at, contact_id),
            )

        await self._run(work, write=True)

    async def set_reminders_paused(self, contact_id: int, paused: bool) -> None:
        """Pause or resume reminders for the contact."""
        await self._set_contact_flag(contact_id, "reminders_paused", paused)

    async def mark_blocked(self, contact_id: int, blocked: bool = True) -> None:
        """Record that the contact blocked the bot (or unblocked it)."""
        await self._set_contact_flag(contact_id, "blocked", blocked)

    async def _set_contact_flag(self, contact_id: int, column: str, value: bool) -> None:
        """Set one boolean column of a contact."""
        assert column in {"reminders_paused", "blocked"}
        at = _ts(_utcnow())

        def work(db: Db) -> None:
            cur = db.execute(
                f"UPDATE contacts SET {column} = ?, updated_at = ? WHERE id = ?", (int(value), at, contact_id)
            )
            if cur.rowcount != 1:
                raise LookupError(f"no contact with id {contact_id}")

        await self._run(work, write=True)

    # ------------------------------------------------------------ state

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
        check_version: bool = True,
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
            expected_version=before.version if check_version else None,
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

    # ------------------------------------------------------------ attachments

    async def add_attachment(
        self,
        report_id: int,
        contact_id: int,
        attachment: Attachment,
        now: dt.datetime,
        telegram_file_unique_id: str | None = None,
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
                " uploaded_by, uploaded_at, telegram_file_unique_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    attachment.sha256,
                    attachment.name,
                    attachment.mime_type,
                    attachment.size,
                    attachment.caption,
                    contact_id,
                    _ts(now),
                    telegram_file_unique_id,
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
        now: dt.datetime | None = None,
        only_open: bool = False,
    ) -> Attachment | None:
        """Remove the report's file with this sha256 and return it; None if there was none.
        With `only_open`, a report that is not open refuses (`ReportClosed`, nothing written)."""
        when = now or _utcnow()

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
            _audit(db, report_id, contact_id, None, "detach", attachment.model_dump_json(), None, when)
            return attachment

        return await self._run(work, write=True)

    async def attachment_hashes(self) -> set[str]:
        """The content hashes of every stored file some report refers to."""
        rows = await self._run(lambda db: _all(db, "SELECT DISTINCT sha256 FROM attachments"), write=False)
        return {str(row["sha256"]) for row in rows}

    async def attachments(self, report_id: int) -> tuple[Attachment, ...]:
        """Return the report's files in upload order."""
        return await self._run(lambda db: _attachments(db, report_id), write=False)

    # ------------------------------------------------------------ edited messages

    async def remember_answer_message(
        self, contact_id: int, message_id: int, question_id: str, text: str | None = None
    ) -> None:
        """Remember that the contact's message (with this text) answered this question."""
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO answer_messages (contact_id, message_id, question_id, text)"
                " VALUES (?, ?, ?, ?)",
                (contact_id, message_id, question_id, text),
            ),
            write=True,
        )

    async def answer_message(self, contact_id: int, message_id: int) -> tuple[str, str | None] | None:
        """Return the question the contact's message answered and the text it had, or None."""
        row = await self._run(
            lambda db: _one(
                db,
                "SELECT question_id, text FROM answer_messages WHERE contact_id = ? AND message_id = ?",
                (contact_id, message_id),
            ),
            write=False,
        )
        return None if row is None else (str(row["question_id"]), row["text"])

    # ------------------------------------------------------------ reminders

    async def record_reminder(self, contact_id: int, key: str, now: dt.datetime) -> bool:
        """Record the reminder as sent; True only the first time."""
        return await self._run(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO reminders_sent (contact_id, reminder_key, sent_at) VALUES (?, ?, ?)",
                    (contact_id, key, _ts(now)),
                ).rowcount
                == 1
            ),
            write=True,
        )

    async def contacts_awaiting_reminder(self, survey_id: str, key: str) -> list[Contact]:
        """Contacts of open reports who can be reached, want reminders, and have not had `key`."""
        columns = ", ".join(f"c.{name.strip()}" for name in _CONTACT_COLUMNS.split(","))
        rows = await self._run(
            lambda db: _all(
                db,
                f"SELECT {columns} FROM contacts AS c JOIN reports AS r ON r.id = c.report_id"
                " LEFT JOIN reminders_sent AS s ON s.contact_id = c.id AND s.reminder_key = ?"
                " WHERE r.survey_id = ? AND r.status = 'open' AND c.chat_id IS NOT NULL"
                " AND c.blocked = 0 AND c.reminders_paused = 0 AND c.removed_at IS NULL AND s.contact_id IS NULL"
                " ORDER BY c.report_id, c.id",
                (key, survey_id),
            ),
            write=False,
        )
        return [_contact(row) for row in rows]

    async def forget_reminder(self, contact_id: int, key: str) -> None:
        """Release a claimed reminder whose send failed, so a later run retries it."""
        await self._run(
            lambda db: db.execute(
                "DELETE FROM reminders_sent WHERE contact_id = ? AND reminder_key = ?", (contact_id, key)
            ),
            write=True,
        )

    # ------------------------------------------------------------ inbox

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

        def work(db: Db) -> set[int]:
            if finished:
                db.executemany("DELETE FROM inbox WHERE update_id = ?", finished)
            db.executemany(
                "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
                [(update_id, payload, at) for update_id, payload in updates],
            )
            return _handled(db, [update_id for update_id, _ in updates])

        # Not yet acknowledged to anyone, so no fsync wait on the hot path: a killed process keeps it
        # (WAL), and the answer's own FULL commit right after flushes it to disk as well.
        return await self._run(work, write=True, fsync=False)

    async def inbox_done(self, update_ids: Iterable[int]) -> None:
        """Forget updates once handled and answered (kept until then so a crash before the reply
        is followed by showing the contact where they are)."""
        finished = [(update_id,) for update_id in update_ids]
        await self._run(
            lambda db: db.executemany("DELETE FROM inbox WHERE update_id = ?", finished), write=True, fsync=False
        )

    async def handled(self, update_ids: list[int]) -> set[int]:
        """Which of these updates already had their changes committed."""
        if not update_ids:
            return set()
        return await self._run(lambda db: _handled(db, update_ids), write=False)

    async def prune(self, handled_before: dt.datetime, *, messages_kept: int = ANSWER_MESSAGES_KEPT) -> None:
        """Drop what only serves recent updates: handled-update marks older than `handled_before`, and
        the message -> answer mapping of messages more than `messages_kept` behind each contact's newest
        (an edit of such an old message is no longer applied). Run while the bot runs, not only at start."""

        def work(db: Db) -> None:
            db.execute("DELETE FROM handled_updates WHERE handled_at < ?", (_ts(handled_before),))
            db.execute(
                "DELETE FROM answer_messages WHERE message_id < (SELECT max(m.message_id) FROM answer_messages AS m"
                " WHERE m.contact_id = answer_messages.contact_id) - ?",
                (messages_kept,),
            )

        await self._run(work, write=True, fsync=False)

    async def inbox_pending(self) -> list[tuple[int, str]]:
        """Updates fetched but not handled when the bot last stopped, oldest first."""
        rows = await self._run(
            lambda db: _all(db, "SELECT update_id, payload FROM inbox ORDER BY update_id"), write=False
        )
        return [(int(row["update_id"]), str(row["payload"])) for row in rows]

    # ------------------------------------------------------------ keyboards

    async def live_keyboards(self) -> dict[int, int]:
        """Chat id → message id of each chat's live inline keyboard."""
        rows = await self._run(lambda db: _all(db, "SELECT chat_id, message_id FROM keyboards"), write=False)
        return {int(row["chat_id"]): int(row["message_id"]) for row in rows}

    async def update_keyboards(self, changes: dict[int, int | None]) -> None:
        """Record live keyboards (chat id → message id; None: the chat has none any more)."""
        live = [(chat_id, message_id) for chat_id, message_id in changes.items() if message_id is not None]
        gone = [(chat_id,) for chat_id, message_id in changes.items() if message_id is None]

        def work(db: Db) -> None:
            db.executemany("INSERT OR REPLACE INTO keyboards (chat_id, message_id) VALUES (?, ?)", live)
            db.executemany("DELETE FROM keyboards WHERE chat_id = ?", gone)

        # Cosmetic state: no fsync wait (a killed process keeps it; the next full commit flushes it).
        await self._run(work, write=True, fsync=False)

    # ------------------------------------------------------------ admins

    async def remember_admin(self, user_id: int, chat_id: int, language: str) -> None:
        """Remember (or update) an admin's chat for notifications."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO admins (telegram_user_id, chat_id, language) VALUES (?, ?, ?)"
                " ON CONFLICT (telegram_user_id) DO UPDATE SET chat_id = excluded.chat_id,"
                " language = excluded.language",
                (user_id, chat_id, language),
            ),
            write=True,
        )

    async def admin_chats(self) -> list[tuple[int, int, str]]:
        """Return (user id, chat id, language) of every admin who started the bot."""
        rows = await self._run(
            lambda db: _all(db, "SELECT telegram_user_id, chat_id, language FROM admins ORDER BY telegram_user_id"),
            write=False,
        )
        return [(int(r["telegram_user_id"]), int(r["chat_id"]), str(r["language"])) for r in rows]


# ---------------------------------------------------------------- the connection's thread


async def _on_thread(db: aiosqlite.Connection, work: Callable[[Db], T]) -> T:
    """Call `work(connection)` on aiosqlite's worker thread and return its result.

    aiosqlite runs each of its calls (`execute`, `commit`, …) as one job on that thread, through
    `Connection._execute`. Handing it a whole transaction as one job costs one round trip between
    the event loop and the thread (about 60 µs) instead of one per statement: an answer took about
    twenty. The worker's connection is `Connection._conn`. Both are private, so pyproject pins
    aiosqlite below the next minor version and the storage tests exercise this on every run.
    """
    return cast(T, await db._execute(lambda: work(db._conn)))  # type: ignore[no-untyped-call]


def _transact(work: Callable[[Db], T], db: Db, *, write: bool, fsync: bool) -> T:
    """On the worker thread: run `work` between BEGIN and COMMIT, rolling back on any error."""
    if not fsync:
        db.execute("PRAGMA synchronous = NORMAL")
    try:
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        return result
    finally:
        if not fsync:
            db.execute("PRAGMA synchronous = FULL")


def _prepare(db: Db, *, path: Path) -> None:
    """On the worker thread: set the connection's pragmas and migrate the schema."""
    db.execute("PRAGMA busy_timeout = 5000")
    mode = _scalar(db, "PRAGMA journal_mode = WAL")
    if str(mode).lower() != "wal":
        logger.warning("database %s: journal_mode is %s, not wal", path, mode)
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    # Deleted rows (purged reports, replaced answers) are overwritten, not left readable in free pages.
    db.execute("PRAGMA secure_delete = ON")
    _migrate(db, path)


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
    expected_version: int | None,
) -> None:
    """Write one save (see `Storage.save`): changed answers with their audit rows, status, session."""
    at = _ts(now)
    report_id = contact.report_id
    answered = False
    if changed or status_changed:
        row = _one(db, "SELECT version FROM reports WHERE id = ?", (report_id,))
        if row is None:
            raise LookupError(f"no report with id {report_id}")
        if expected_version is not None and int(row["version"]) != expected_version:
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


# ---------------------------------------------------------------- helpers


def _unavailable(exc: sqlite3.OperationalError, path: Path) -> StorageUnavailable | None:
    """Return a StorageUnavailable for locked/read-only/full errors, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    reason = _UNAVAILABLE_CODES.get(code & 0xFF) if isinstance(code, int) else None
    if reason is None:
        text = str(exc).lower()
        for needle in ("locked", "readonly", "read-only", "full", "disk i/o", "unable to open"):
            if needle in text:
                reason = text
                break
    if reason is None:
        return None
    logger.warning("database %s unavailable: %s (%s)", path, reason, exc)
    return StorageUnavailable(f"database {path} is unavailable ({reason}: {exc}); try again shortly")


def _rollback(db: Db) -> None:
    """Roll back the open transaction, if any, without raising."""
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.error("rollback failed: %s", exc)


def _statements(script: str) -> list[str]:
    """Split a migration script into complete SQL statements."""
    statements: list[str] = []
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:60]!r}")
    return statements


def _migrate(db: Db, path: Path) -> None:
    """Apply the pending migrations in order, in one transaction (after keeping a copy of older data)."""
    version = int(_scalar(db, "PRAGMA user_version"))
    if 0 < version < SCHEMA_VERSION:
        from bot.backup import copy_before_migration

        kept = copy_before_migration(db, path, version)
        logger.warning("database %s has schema v%d: copy kept at %s before migrating", path, version, kept)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(_scalar(db, "PRAGMA user_version"))
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database {path} has schema v{version}, newer than this code (v{SCHEMA_VERSION}); "
                "run the newer version of the bot, or restore a backup made by this one"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[target - 1]):
                db.execute(statement)
            logger.info("database %s: migrated schema to v%d", path, target)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise


def _one(db: Db, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    """Return the first row of a query, or None."""
    return cast(sqlite3.Row | None, db.execute(sql, tuple(params)).fetchone())


def _all(db: Db, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Return every row of a query."""
    return db.execute(sql, tuple(params)).fetchall()


def _scalar(db: Db, sql: str) -> Any:
    """Return the first column of the first row of a query."""
    row = _one(db, sql)
    return None if row is None else row[0]


def new_token() -> str:
    """A fresh invitation token (43 URL-safe characters; only its sha256 is ever stored).

    Never starting with "-", so that `revoke --token T` cannot be mistaken for an option."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def _find_or_create(
    db: Db, *, survey_id: str, city: str, country: str, joined: str | None, now: dt.datetime
) -> tuple[City, bool]:
    """The report of this city (any case), created if needed; and whether it was created."""
    city, country = city.strip(), country.strip()
    if not city or not country:
        raise ValueError("city and country must not be empty")
    if joined is not None and not is_month_value(joined):
        raise ValueError(f"joined must be 'YYYY-MM', got {joined!r}")
    rows = _all(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ?", (survey_id,))
    for row in rows:
        if row["city"].casefold() == city.casefold() and row["country"].casefold() == country.casefold():
            if joined is not None and row["joined"] is None:
                db.execute("UPDATE reports SET joined = ? WHERE id = ?", (joined, row["id"]))
                return _city(row, joined=joined), False
            return _city(row), False
    cur = db.execute(
        "INSERT INTO reports (survey_id, city, country, joined, created_at) VALUES (?, ?, ?, ?, ?)",
        (survey_id, city, country, joined, _ts(now)),
    )
    created = _one(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (_rowid(cur),))
    assert created is not None
    return _city(created), True


def _scalar_args(db: Db, sql: str, *params: Any) -> int:
    """Return the first column of the first row of a query with parameters, as an int."""
    row = _one(db, sql, params)
    return 0 if row is None or row[0] is None else int(row[0])


def _forget_inbox_of(db: Db, users: set[int]) -> None:
    """Drop the kept updates sent by these Telegram users."""
    if not users:
        return
    doomed = []
    for row in _all(db, "SELECT update_id, payload FROM inbox"):
        try:
            payload = json.loads(row["payload"])
        except ValueError:
            continue
        if _senders(payload) & users:
            doomed.append((row["update_id"],))
    db.executemany("DELETE FROM inbox WHERE update_id = ?", doomed)


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


def _handled(db: Db, update_ids: list[int]) -> set[int]:
    """Which of these updates already had their changes committed."""
    marks = ",".join("?" * len(update_ids))
    rows = _all(db, f"SELECT update_id FROM handled_updates WHERE update_id IN ({marks})", update_ids)
    return {int(row["update_id"]) for row in rows}


def _rowid(cur: sqlite3.Cursor) -> int:
    """Return the rowid of the row just inserted."""
    if cur.lastrowid is None:
        raise RuntimeError("INSERT did not report a rowid")
    return cur.lastrowid


def _bump(db: Db, report_id: int) -> None:
    """Raise the report's version: its answers, status or files changed."""
    db.execute("UPDATE reports SET version = version + 1 WHERE id = ?", (report_id,))


def _scalar_p(db: Db, sql: str, params: Iterable[Any]) -> Any:
    """Return the first column of the first row of a query with parameters."""
    row = _one(db, sql, params)
    return None if row is None else row[0]


def _require_report(db: Db, report_id: int) -> None:
    """Raise LookupError unless the report exists."""
    if _one(db, "SELECT 1 FROM reports WHERE id = ?", (report_id,)) is None:
        raise LookupError(f"no report with id {report_id}")


def _contact_of_user(db: Db, user_id: int) -> Contact | None:
    """Return the contact bound to this Telegram user, or None."""
    row = _one(db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE telegram_user_id = ? AND {_ACTIVE}", (user_id,))
    return None if row is None else _contact(row)


def _contact_by_id(db: Db, contact_id: int) -> Contact:
    """Return the contact with this id (which must exist)."""
    row = _one(db, f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE id = ?", (contact_id,))
    if row is None:
        raise LookupError(f"no contact with id {contact_id}")
    return _contact(row)


def _answers(db: Db, report_id: int) -> dict[str, AnswerValue]:
    """Return the report's decoded answers by question id."""
    rows = _all(
        db, "SELECT question_id, value_json FROM answers WHERE report_id = ? ORDER BY question_id", (report_id,)
    )
    return {str(row["question_id"]): _decode(row["value_json"]) for row in rows}


def _attachments(db: Db, report_id: int) -> tuple[Attachment, ...]:
    """Return the report's attachments in upload order."""
    rows = _all(
        db,
        "SELECT sha256, name, mime_type, size, caption FROM attachments WHERE report_id = ? ORDER BY uploaded_at, id",
        (report_id,),
    )
    return tuple(_attachment(row) for row in rows)


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


def _audit(
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
    db.execute(
        "INSERT INTO audit (report_id, contact_id, question_id, action, old_json, new_json, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (report_id, contact_id, question_id, action, old_json, new_json, _ts(now)),
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


def _utcnow() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.UTC)


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
