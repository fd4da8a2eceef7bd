"""The one SQLite connection of a `Storage`: opening, pragmas, and the transaction runner.

Rules of this module:
- Every write of more than one statement is one `BEGIN IMMEDIATE … COMMIT` transaction (a single
  statement is atomic on its own); the bot replies only after it returns, so an acknowledged answer
  is on disk (WAL, synchronous=FULL).
- A failed write rolls back completely; the database is never left half-updated.
- Deleted rows are overwritten (`secure_delete`); a purge also empties the write-ahead log.
- Locked, read-only and full databases raise `StorageUnavailable` (try again later);
  anything else is a bug and propagates unchanged.
- One aiosqlite connection per `Storage`, used through aiosqlite's public API only. Every
  operation holds the storage's lock from its first statement to its last (`_run`, `_fetch`,
  `_change`), so no other coroutine's statement can slip into a transaction; a caller cancelled
  once a transaction has begun does not cut it short. Each statement is one round trip to
  aiosqlite's thread, so operations on the hot path use few statements.
- Migrations run once at `open`, on a plain sqlite3 connection of their own, before the
  storage's connection is made.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite

from bot.storage.migrations import SCHEMA_VERSION, _migrate
from bot.storage.rows import Db, _all, _one, _rollback

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
# Settings of the storage's connection: wait for a busy database up to 5 s, fsync every commit,
# enforce foreign keys, overwrite deleted rows (purged reports, replaced answers) instead of leaving
# them readable in free pages.
_CONNECTION_PRAGMAS = (
    "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
)
_SYNCHRONOUS = {True: "FULL", False: "NORMAL"}

Work = Callable[[Db], Awaitable[T]]


class StorageUnavailable(Exception):
    """The database is locked, read-only or full; the operation may succeed later."""


class Connection:
    """The open connection and the transaction runner every part of `Storage` uses."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        """Wrap an open, migrated connection; use `Storage.open` instead."""
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._lock = asyncio.Lock()
        # Whether the connection commits with fsync (synchronous=FULL); None: not known.
        self._fsync: bool | None = True

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) and migrate the database at `path`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create the directory for database {path}: {exc}") from exc
        try:
            # Migrating is a one-off at start-up: plain sqlite3 on a worker thread, then closed.
            await asyncio.to_thread(_prepare_file, path)
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.OperationalError as exc:
            wrapped = _unavailable(exc, path)
            if wrapped is None:
                raise
            raise wrapped from exc
        try:
            db.row_factory = sqlite3.Row
            await db.executescript(_CONNECTION_PRAGMAS)
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

    async def _run(self, work: Work[T], *, write: bool, fsync: bool = True) -> T:
        """Run `await work(connection)` as one transaction (IMMEDIATE for writes), alone on the connection.

        Any error rolls the whole transaction back. `fsync=False` commits without waiting for the
        disk (WAL with synchronous=NORMAL): safe when the process is killed, not on power loss; the
        next full commit makes it durable too.
        """

        async def transaction(db: Db) -> T:
            begin = "BEGIN IMMEDIATE" if write else "BEGIN"
            if write and self._fsync is not fsync:
                # Switching the commit mode rides along with BEGIN: one round trip, not two.
                self._fsync = None
                await db.executescript(f"PRAGMA synchronous = {_SYNCHRONOUS[fsync]}; {begin};")
                self._fsync = fsync
            else:
                await db.execute(begin)
            try:
                result = await work(db)
                await db.execute("COMMIT")
            except BaseException:
                await _rollback(db)
                raise
            return result

        return await self._alone(transaction)

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Every row of one query: a single statement reads one consistent snapshot, no transaction needed."""
        return await self._alone(lambda db: _all(db, sql, params))

    async def _fetch_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row of one query, or None."""
        return await self._alone(lambda db: _one(db, sql, params))

    async def _change(self, sql: str, params: Iterable[Any] = (), *, fsync: bool = True) -> int:
        """Run one writing statement (atomic on its own) and return how many rows it changed."""

        async def change(db: Db) -> int:
            if self._fsync is not fsync:
                self._fsync = None
                await db.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[fsync]}")
                self._fsync = fsync
            cursor = await db.execute(sql, tuple(params))
            return max(cursor.rowcount, 0)

        return await self._alone(change)

    async def _alone(self, work: Work[T]) -> T:
        """Run `work` holding the lock, so no other operation's statement interleaves with it.

        A caller cancelled while waiting for the lock has done nothing; once begun, `work` runs to
        its end (its COMMIT or ROLLBACK) even if the caller is cancelled, and only then releases the lock.
        """
        await self._lock.acquire()
        try:
            db = self._db
            if db is None:
                raise RuntimeError("storage is closed")
            task = asyncio.ensure_future(self._then_release(db, work))
        except BaseException:
            self._lock.release()
            raise
        return await asyncio.shield(task)

    async def _then_release(self, db: Db, work: Work[T]) -> T:
        """`_alone`'s part that runs whatever happens to the caller; releases the lock at its end."""
        try:
            return await work(db)
        except sqlite3.OperationalError as exc:
            if wrapped := _unavailable(exc, self._path):
                raise wrapped from exc
            raise
        finally:
            self._lock.release()

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and empty it, so erased rows linger in neither."""
        await self._fetch("PRAGMA wal_checkpoint(TRUNCATE)")


def _prepare_file(path: Path) -> None:
    """On a worker thread: put the database in WAL mode and migrate its schema."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            logger.warning("database %s: journal_mode is %s, not wal", path, mode)
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")
        _migrate(db, path)
    finally:
        db.close()


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
