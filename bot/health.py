"""Health of a deployment: the database opens, can be written, and has the schema this code expects.

Rules of this module:
- `problem` never changes anything: no migration, no database created, the write check is a
  transaction rolled back. It is safe to run beside the bot, as often as a supervisor likes.
- The answer is one line (None when healthy), without personal data.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from pathlib import Path

from bot.storage import SCHEMA_VERSION

logger = logging.getLogger(__name__)

BUSY_MS = 3000  # a write by the bot holds the database for milliseconds; longer is a problem worth reporting


def problem(data_dir: Path, database: Path) -> str | None:
    """What is wrong with the deployment, in one line, or None when it is healthy."""
    if not data_dir.is_dir():
        return f"DATA_DIR {data_dir} does not exist"
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".health-"):
            pass
    except OSError as exc:
        return f"DATA_DIR {data_dir} is not writable ({exc.strerror or exc})"
    if not database.is_file():
        return f"no database at {database} (the bot creates it on its first start)"
    try:
        db = sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return f"database {database} cannot be opened ({exc})"
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_MS:d}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            return f"database {database} has schema v{version}, newer than this code (v{SCHEMA_VERSION})"
        if version < SCHEMA_VERSION:
            return f"database {database} has schema v{version}, not yet migrated to v{SCHEMA_VERSION} (start the bot)"
        db.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a read-only or locked database
        db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"database {database} is not usable ({exc})"
    finally:
        db.close()
    return None
