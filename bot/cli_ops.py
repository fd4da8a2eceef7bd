"""Operations commands: `backup`, `restore` and `health` (no survey, no Bot API needed).

Rules of this module:
- Each command prints one line on success (standard output) or one line on failure (standard
  error, via the caller) and returns the exit code; progress bars appear only on a terminal.
- `restore` holds DATA_DIR's lock while it works, so it never runs under a live bot.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bot import backup, health
from bot.settings import Settings
from bot.startup import prepare_data_dir

Command = Callable[[argparse.Namespace, Settings], int]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The operations commands on the command line."""
    bk = sub.add_parser("backup", help="write one archive of the database and every stored file (safe while running)")
    bk.add_argument("--output", required=True, type=Path, help="the archive to write, e.g. backup.zip")
    rs = sub.add_parser("restore", help="restore a backup archive into an empty DATA_DIR")
    rs.add_argument("--input", required=True, type=Path, help="the archive written by `backup`")
    rs.add_argument("--force", action="store_true", help="replace the database of a non-empty DATA_DIR")
    sub.add_parser("health", help="exit 0 when the database opens, is writable and its schema is current")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """Write a backup archive of DATA_DIR."""
    result = backup.write_backup(settings.data_dir, args.output)
    note = f"; {len(result.missing)} referenced file(s) missing" if result.missing else ""
    sys.stdout.write(
        f"backup written to {result.path}: schema v{result.schema_version}, {result.files} file(s), "
        f"{_size(result.path.stat().st_size)}{note}\n"
    )
    return 1 if result.missing else 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Restore a backup archive into DATA_DIR."""
    lock = prepare_data_dir(settings.data_dir, purpose="restore")
    try:
        result = backup.restore_backup(args.input, settings.data_dir, force=args.force)
    finally:
        lock.release()
    sys.stdout.write(
        f"restored {args.input} into {settings.data_dir}: schema v{result.schema_version}, {result.files} file(s), "
        "checksums and integrity check passed\n"
    )
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when healthy; otherwise one line on standard error and exit 1."""
    trouble = health.problem(settings.data_dir, settings.database_path)
    if trouble is not None:
        sys.stderr.write(f"unhealthy: {trouble}\n")
        return 1
    sys.stdout.write("ok\n")
    return 0


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


COMMANDS: dict[str, Command] = {"backup": cmd_backup, "restore": cmd_restore, "health": cmd_health}
