"""Command-line commands about people: bulk invitations, contacts, removal and erasure.

    python -m bot invite --from FILE.csv [--uses N] [--expires DAYS] [--again] [--qr DIR]
    python -m bot contacts [--city C]
    python -m bot remove-contact --city C --user ID
    python -m bot purge --city C | --submitted-before YYYY-MM-DD

Every failure is one clear line on standard error and exit code 2; what was done goes to
standard output (links only to the CSV file, never to a log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot import admin
from bot.service import utc_now
from bot.settings import Settings
from bot.storage import Storage
from conversation.i18n import get_translator
from conversation.model import Survey

Command = Callable[[argparse.Namespace, Settings, Survey, Storage], Awaitable[int]]


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The subcommands of this module."""
    contacts = sub.add_parser("contacts", help="each city's contacts and the links still open")
    contacts.add_argument("--city")
    remove = sub.add_parser("remove-contact", help="take one Telegram account out of a city")
    remove.add_argument("--city", required=True)
    remove.add_argument("--user", required=True, type=int, help="the Telegram user id (see `contacts`)")
    purge = sub.add_parser("purge", help="erase a city's report, or every report submitted before a date")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("--city")
    which.add_argument("--submitted-before", type=dt.date.fromisoformat, metavar="YYYY-MM-DD")


def add_invite_arguments(inv: argparse.ArgumentParser) -> None:
    """Options of `invite` beyond the city itself (one personal link, or a whole file)."""
    inv.add_argument("--name", help="the full name of the person the link is for")
    inv.add_argument("--email", help="their e-mail address (kept with the invitation)")
    inv.add_argument("--uses", type=int, default=1, help="how many Telegram accounts may join with it (default 1)")
    inv.add_argument("--expires", type=int, default=None, metavar="DAYS", help="days the link works (INVITATION_DAYS)")
    inv.add_argument("--from", dest="from_file", type=Path, metavar="FILE.csv", help="one link per row of a CSV file")
    inv.add_argument("--again", action="store_true", help="with --from: new links for rows already invited too")
    inv.add_argument("--qr", type=Path, metavar="DIR", help="with --from: a QR code (PNG) per link in DIR")


def fail(message: str) -> int:
    """One clear line, exit code 2."""
    sys.stderr.write(f"error: {message}\n")
    return 2


async def cmd_invite_from(
    args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage, username: str
) -> int:
    """`invite --from FILE.csv`."""
    from bot.invitations import BulkError, invite_from_file

    try:
        result = await invite_from_file(
            storage,
            survey,
            username,
            args.from_file,
            now=utc_now(),
            uses=args.uses,
            days=args.expires or settings.invitation_days,
            again=args.again,
            qr_dir=args.qr,
        )
    except BulkError as exc:
        sys.stderr.write("".join(f"error: {problem}\n" for problem in exc.problems))
        sys.stderr.write("nothing was written\n")
        return 2
    for note in result.skipped:
        sys.stdout.write(f"skipped {note}\n")
    sys.stdout.write(f"created {result.created} link(s); written to {args.from_file}\n")
    return 0


async def cmd_contacts(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Print each city's contacts."""
    from bot.console import plain

    lines = await admin.contacts_report(storage, survey, args.city, get_translator("en"), utc_now())
    sys.stdout.write(plain("\n".join(lines)) + "\n")
    return 0


async def cmd_remove_contact(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Take one Telegram account out of a city."""
    city = await admin.find_one_city(storage, survey, args.city)
    removed = await storage.remove_contact(city.id, telegram_user_id=args.user, now=utc_now())
    if removed is None:
        return fail(f"Telegram user {args.user} is not a contact of {city.name} ({city.country})")
    sys.stdout.write(f"removed Telegram user {args.user} from {city.name} ({city.country})\n")
    return 0


async def cmd_purge(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Erase a city's report, or every report submitted before a date."""
    from bot.privacy import purge_reports

    if args.city:
        cities = [await admin.find_one_city(storage, survey, args.city)]
    else:
        start = dt.datetime.combine(args.submitted_before, dt.time(), tzinfo=dt.UTC)
        cities = await storage.reports_submitted_before(survey.id, start)
    purged = await purge_reports(storage, cities, settings.files_dir)
    sys.stdout.write(
        f"erased {purged.reports} report(s): {purged.contacts} contact(s), {purged.answers} answer(s), "
        f"{purged.audit_rows} audit row(s), {purged.attachments} attachment(s), "
        f"{len(purged.orphaned_files)} file(s)\n"
    )
    return 0


COMMANDS: dict[str, Command] = {
    "contacts": cmd_contacts,
    "remove-contact": cmd_remove_contact,
    "purge": cmd_purge,
}
