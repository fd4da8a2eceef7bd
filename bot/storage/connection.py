"""The one SQLite connection of a `Storage`: opening, pragmas, and the transaction runner.

Rules of this module:
- Every write is one `BEGIN IMMEDIATE … COMMIT` transaction; the bot replies only
  after it returns, so an acknowledged answer is on disk (WAL, synchronous=FULL).
- A failed write rolls back completely; the database is never left half-updated.
- Deleted rows are overwritten (`secure_delete`); a purge also empties the write-ahead log.
- Locked, read-only and full databases raise `StorageUnavailable` (try again later);
  anything else is a bug and propagates unchanged.
- One connection per `Storage`. Each operation is one plain function run as one transaction on
  aiosqlite's worker thread (`_run`): a single round trip to that thread, however many
  statements it runs, and no other coroutine's statement can slip into it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, cast

import aiosqlite

from bot.storage.migrations import SCHEMA_VERSION, _migrate
from bot.storage.rows import (
    Db,
    _rollback,
    _scalar,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Primary SQLite result codes that mean "the database cannot be used right now".
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_BUSY: "database is locked",
    sqlite3.SQLITE_LOCKED: "database is locked",
    sqlite3.SQLITE_READONLY: "database is read-only",
    sqlite3.SQLITE_IOERR: "disk I/O error",
    sqlite3.SQLITE_FULL: "disk is full",
    sqlite3.SQLITE_CANTOPEN: "database file cannot be opened",
}


class StorageUnavailable(Exception):
    """The database is locked, read-only or full; the operation may succeed later."""


class Connection:
    """The open connection and the transaction runner every part of `Storage` uses."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        """Wrap an open, migrated connection; use `Storage.open` instead."""
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
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

    async def __aenter__(self) -> Self:
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

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and empty it, so erased rows linger in neither."""
        async with self._lock:
            db = self._db
            if db is None:
                raise RuntimeError("storage is closed")
            await _on_thread(db, lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())


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
