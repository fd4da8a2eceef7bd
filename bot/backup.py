"""Backups of DATA_DIR while the bot runs, their restoration, and scheduled backups.

Rules of this module:
- A backup is one ZIP archive: `manifest.json`, the database (`gnlc.sqlite3`) and every stored
  file under `files/<sha[:2]>/<sha>`. The database is copied with SQLite's online backup API from
  a connection of its own, so the copy is one consistent moment even while the bot writes (a file
  copy of a WAL database may not be). Stored files are written before the database refers to them
  and never change (their name is their sha256), so every file the copy refers to is on disk.
- The manifest records the format, the schema version (`PRAGMA user_version`) and the sha256 and
  size of the database and of every file; a restore checks all of them and runs
  `PRAGMA integrity_check` before anything reaches DATA_DIR.
- Archives are written beside their final name and renamed into place once complete and synced:
  a crash never leaves a half-written file under a backup's name.
- A restore goes into an empty (or missing) DATA_DIR; it replaces a non-empty one only when told
  (`force`), and never while a bot holds the directory's lock.
- Nothing personal is logged: only paths, counts and sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.durable import sync_directory
from bot.progress import Progress, progress_bar

logger = logging.getLogger(__name__)

FORMAT = "gnlc-intake-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_NAME = "gnlc.sqlite3"
FILES_DIR = "files"
CHUNK = 1 << 20
SCHEDULED_PREFIX = "gnlc-backup-"
_BLOB = re.compile(r"[0-9a-f]{64}")
# Files in DATA_DIR that do not make it "non-empty" for a restore: the lock of a stopped bot.
IGNORED_IN_TARGET = frozenset({"bot.lock"})


class BackupError(Exception):
    """A backup or restore cannot be done; the message says why in one line."""


@dataclass(frozen=True)
class BackupResult:
    """What one backup or restore wrote."""

    path: Path
    schema_version: int
    files: int
    bytes: int
    missing: tuple[str, ...] = ()


# ---------------------------------------------------------------- backup


def snapshot_database(source: Path, target: Path) -> int:
    """Copy the database at `source` to `target` with SQLite's online backup API; its schema version.

    The copy is one consistent moment of the database, whatever other connections write meanwhile.
    """
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(source)  # read-write like the bot's, so the WAL and its index are shared
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one moment
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
            # The copy stands alone: no WAL beside it in the archive.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read the database {source}: {exc}") from exc
    finally:
        src.close()
    return version


def referenced_files(database: Path) -> set[str]:
    """The sha256 of every stored file the database refers to."""
    db = sqlite3.connect(database)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "attachments" not in tables:
            return set()
        return {str(row[0]) for row in db.execute("SELECT DISTINCT sha256 FROM attachments")}
    finally:
        db.close()


def stored_files(files_dir: Path) -> set[str]:
    """The sha256 of every complete file in the content-addressed store."""
    found: set[str] = set()
    if not files_dir.is_dir():
        return found
    for sub in files_dir.iterdir():
        if sub.is_dir() and len(sub.name) == 2:
            found.update(p.name for p in sub.iterdir() if _BLOB.fullmatch(p.name) and p.name.startswith(sub.name))
    return found


def blob_path(files_dir: Path, sha: str) -> Path:
    """Where a stored file with this content hash lives."""
    return files_dir / sha[:2] / sha


def write_backup(data_dir: Path, output: Path, *, shown: bool | None = None) -> BackupResult:
    """Write a backup of `data_dir` (database and stored files) to the archive `output`."""
    database = data_dir / DATABASE_NAME
    files_dir = data_dir / FILES_DIR
    if output.is_dir():
        raise BackupError(f"cannot write the backup to {output}: it is a directory")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot write the backup to {output}: {exc.strerror or exc}") from exc
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=output.parent) as work:
        copy = Path(work) / DATABASE_NAME
        version = snapshot_database(database, copy)
        # Every complete stored file goes in; the ones the copy refers to must be among them.
        wanted = referenced_files(copy)
        present = stored_files(files_dir)
        missing = tuple(sorted(wanted - present))
        for sha in missing:
            logger.warning("stored file %s is referenced by the database but missing; not in the backup", sha)
        shas = sorted(present)
        sizes = {sha: blob_path(files_dir, sha).stat().st_size for sha in shas}
        total = copy.stat().st_size + sum(sizes.values())
        entries: list[dict[str, object]] = []
        with (
            _replacing(output) as tmp,
            progress_bar("backup", total, shown=shown) as bar,
            zipfile.ZipFile(tmp, "w", allowZip64=True) as zf,
        ):
            db_sha = _sha256(copy)
            # Text compresses well even at the fastest level (about 10x); level 6 took twice as long.
            zf.write(copy, DATABASE_NAME, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
            bar.update(copy.stat().st_size)
            for sha in shas:
                digest = _add(zf, blob_path(files_dir, sha), f"{FILES_DIR}/{sha[:2]}/{sha}", bar)
                if digest != sha:  # changed on disk: a stored file must never change
                    raise BackupError(f"stored file {sha} does not match its name (damaged on disk)")
                entries.append({"sha256": sha, "size": sizes[sha]})
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "schema_version": version,
                "database": {"name": DATABASE_NAME, "sha256": db_sha, "size": copy.stat().st_size},
                "files": entries,
                "missing_files": list(missing),
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1) + "\n")
    logger.info(
        "backup of %s written to %s: schema v%d, %d file(s), %d bytes", data_dir, output, version, len(shas), total
    )
    return BackupResult(output, version, len(shas), total, missing)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _add(zf: zipfile.ZipFile, source: Path, arcname: str, bar: Progress) -> str:
    """Store `source` in the archive as it is (uploads are mostly compressed already), in chunks; its sha256."""
    digest = hashlib.sha256()
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = source.stat().st_size
    with source.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


@contextlib.contextmanager
def _replacing(output: Path) -> Iterator[Path]:
    """A temporary path beside `output`, synced and renamed onto it if the body succeeds."""
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, output)
        sync_directory(output.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ---------------------------------------------------------------- restore


def is_empty_target(data_dir: Path) -> bool:
    """Whether DATA_DIR is missing or holds nothing (the lock of a stopped bot aside)."""
    if not data_dir.exists():
        return True
    return all(p.name in IGNORED_IN_TARGET for p in data_dir.iterdir())


def read_manifest(zf: zipfile.ZipFile, source: Path) -> dict[str, object]:
    """The archive's manifest, checked for the format this code writes."""
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise BackupError(f"{source} is not a backup of this bot (no {MANIFEST})") from None
    except ValueError as exc:
        raise BackupError(f"{source}: the manifest is not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not a backup of this bot")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{source} has backup format {manifest.get('format_version')}, which this code cannot read")
    return manifest


def restore_backup(source: Path, data_dir: Path, *, force: bool = False, shown: bool | None = None) -> BackupResult:
    """Restore the archive `source` into `data_dir`, checking every checksum and the database's integrity.

    Everything is extracted and checked in a directory beside DATA_DIR first; DATA_DIR changes only
    once the whole backup proved sound.
    """
    from bot.storage import SCHEMA_VERSION

    if not source.is_file():
        raise BackupError(f"there is no backup at {source}")
    if not is_empty_target(data_dir) and not force:
        raise BackupError(
            f"DATA_DIR {data_dir} is not empty; restore into an empty directory, or pass --force to replace it"
        )
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BackupError(f"{source} is not a readable backup archive ({exc})") from exc
    with zf:
        manifest = read_manifest(zf, source)
        version = int(manifest["schema_version"])  # type: ignore[call-overload]
        if version > SCHEMA_VERSION:
            raise BackupError(
                f"{source} holds schema v{version}, newer than this code (v{SCHEMA_VERSION}); "
                "restore it with the newer version of the bot"
            )
        database = manifest["database"]
        files = manifest["files"]
        assert isinstance(database, dict) and isinstance(files, list)
        total = int(database["size"]) + sum(int(f["size"]) for f in files)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(prefix=f".{data_dir.name}.restore-", dir=data_dir.parent) as work,
            progress_bar("restore", total, shown=shown) as bar,
        ):
            staging = Path(work)
            db_copy = staging / DATABASE_NAME
            _extract(zf, DATABASE_NAME, db_copy, str(database["sha256"]), bar)
            _check_integrity(db_copy, source)
            for entry in files:
                sha = str(entry["sha256"])
                if not _BLOB.fullmatch(sha):
                    raise BackupError(f"{source}: the manifest lists a file with a malformed name")
                _extract(zf, f"{FILES_DIR}/{sha[:2]}/{sha}", blob_path(staging / FILES_DIR, sha), sha, bar)
            _move_into(staging, data_dir)
    logger.info("restored %s into %s: schema v%d, %d file(s)", source, data_dir, version, len(files))
    return BackupResult(data_dir, version, len(files), total)


def _extract(zf: zipfile.ZipFile, name: str, target: Path, sha: str, bar: Progress) -> None:
    """Extract one entry, checking its sha256 against the manifest."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(name) as src, target.open("wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                bar.update(len(chunk))
            dst.flush()
            os.fsync(dst.fileno())
    except KeyError:
        raise BackupError(f"the backup lacks {name}, which its manifest lists") from None
    except (zipfile.BadZipFile, OSError) as exc:  # includes the archive's own CRC check failing
        raise BackupError(f"cannot read {name} from the backup ({exc})") from exc
    if digest.hexdigest() != sha:
        raise BackupError(f"{name} in the backup does not match its checksum; the archive is damaged")


def _check_integrity(database: Path, source: Path) -> None:
    db = sqlite3.connect(database)
    try:
        result = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise BackupError(f"the database in {source} cannot be read ({exc})") from exc
    finally:
        db.close()
    if result != ["ok"]:
        raise BackupError(f"the database in {source} fails its integrity check: {result[0]}")


def _move_into(staging: Path, data_dir: Path) -> None:
    """Put the checked database and files into DATA_DIR (replacing what was there)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("-wal", "-shm", "-journal"):  # belong to the database being replaced
        with contextlib.suppress(FileNotFoundError):
            (data_dir / (DATABASE_NAME + stale)).unlink()
    target_files = data_dir / FILES_DIR
    for sub in sorted((staging / FILES_DIR).glob("*/*")):
        dest = target_files / sub.parent.name / sub.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(sub, dest)
    os.replace(staging / DATABASE_NAME, data_dir / DATABASE_NAME)
    sync_directory(data_dir)


# ---------------------------------------------------------------- before a migration


# ---------------------------------------------------------------- scheduled


def scheduled_name(moment: dt.datetime) -> str:
    """The file name of a scheduled backup taken at `moment` (sorts by time)."""
    return f"{SCHEDULED_PREFIX}{moment.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.zip"


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` scheduled backups in `directory`; the removed ones."""
    backups = sorted(p for p in directory.glob(f"{SCHEDULED_PREFIX}*.zip") if p.is_file())
    removed = backups[: max(0, len(backups) - keep)]
    for old in removed:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return removed


async def scheduled_backup(data_dir: Path, directory: Path, keep: int) -> BackupResult | None:
    """Take one scheduled backup into `directory` and prune the oldest; None (logged) if it failed."""
    target = directory / scheduled_name(dt.datetime.now(dt.UTC))
    try:
        result = await asyncio.to_thread(write_backup, data_dir, target, shown=False)
    except (BackupError, OSError) as exc:
        logger.error("scheduled backup to %s failed: %s", target, exc)
        return None
    removed = prune(directory, keep)
    logger.info("scheduled backup written to %s (%d bytes); %d older removed", target, result.bytes, len(removed))
    return result
