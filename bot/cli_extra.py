"""Command-line commands for reminders and exports (loaded only when used)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from bot.exports import ExportError, export_files, export_reports
from bot.progress import progress_bar
from bot.reminders import policy_from, send_due
from bot.service import utc_now
from bot.settings import Settings
from bot.storage import Storage
from conversation.model import Survey

Command = Callable[[argparse.Namespace, Settings, Survey, Storage], Awaitable[int]]


async def cmd_remind(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Send the reminders due now, then exit (for cron-style hosting)."""
    if settings.bot_token is None:
        sys.stderr.write("error: BOT_TOKEN is needed to send reminders\n")
        return 2
    from bot.telegram.client import standalone_bot
    from bot.telegram.outputs import broadcaster

    async with standalone_bot(settings) as bot:
        result = await send_due(
            storage,
            survey,
            policy_from(settings, survey),
            utc_now(),
            broadcaster(bot),
        )
    sys.stdout.write(
        f"reminders: {result.sent} sent, {result.blocked} blocked, {result.failed} failed, {result.skipped} skipped\n"
    )
    return 0 if result.failed == 0 else 1


async def cmd_export(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Write every report to a CSV, XLSX or JSON file."""
    total = len(await storage.list_reports(survey.id))
    try:
        with progress_bar("export", total, unit="report") as bar:
            count = await export_reports(
                storage, survey, args.format, args.output, header_language=args.header_language, progress=bar
            )
    except ExportError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(f"exported {count} report(s) to {args.output}\n")
    return 0


async def cmd_export_files(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Write every attachment to a ZIP file, a folder per city."""
    try:
        with progress_bar("export-files", None) as bar:  # bytes written (the total is not known beforehand)
            count = await export_files(storage, survey, settings.files_dir, args.output, progress=bar)
    except ExportError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(f"exported {count} file(s) to {args.output}\n")
    return 0


COMMANDS: dict[str, Command] = {"remind": cmd_remind, "export": cmd_export, "export-files": cmd_export_files}
