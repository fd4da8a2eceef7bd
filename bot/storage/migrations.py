"""The database schema: its migrations, applied in order when the database is opened.

Rules of this module:
- The schema is versioned by `PRAGMA user_version`; `MIGRATIONS` only grows, and
  applied migrations are never edited.
- All pending migrations run in one transaction, after a copy of the older database is kept.
- A database newer than this code is refused (`SchemaTooNew`), never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path

logger = logging.getLogger(__name__)

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
    # v8: attachments lose telegram_file_unique_id, which nothing ever wrote (DROP COLUMN: SQLite 3.35+).
    """
    ALTER TABLE attachments DROP COLUMN telegram_file_unique_id;
    """,
)


SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the bot; this code must not touch it."""


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


def copy_before_migration(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the database (open as `db`, schema `version`) next to itself before it is migrated.

    The copy is named after the data's last change (the newest of the file and its write-ahead
    log), not the clock, which storage never reads.
    """
    changed = max(p.stat().st_mtime for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    stamp = dt.datetime.fromtimestamp(changed, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    out = sqlite3.connect(target)
    try:
        db.backup(out)
    finally:
        out.close()
    return target


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply the pending migrations in order, in one transaction (after keeping a copy of older data)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if 0 < version < SCHEMA_VERSION:
        kept = copy_before_migration(db, path, version)
        logger.warning("database %s has schema v%d: copy kept at %s before migrating", path, version, kept)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
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
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
