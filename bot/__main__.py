"""Command line: `python -m bot [run|console|invite|revoke|remind|status|export|export-files|contacts|
remove-contact|purge|backup|restore|health]`.

Rules of this module:
- Without a command: the Telegram bot when BOT_TOKEN is set; otherwise the console when
  attached to a terminal (with a hint about BOT_TOKEN), else a clear error.
- Every failure ends with one clear line on standard error and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot import admin, cli_ops, cli_people
from bot.backup import BackupError
from bot.redaction import install_redaction
from bot.settings import Settings, SettingsError, load_settings
from bot.startup import StartupError, prepare_data_dir
from bot.storage import SchemaTooNew, Storage, StorageUnavailable
from bot.telegram.startup import telegram_failure
from conversation.i18n import LANGUAGES, check_catalogs, get_translator, pick_language
from conversation.loader import SurveyError, load_survey
from conversation.model import Survey
from conversation.validation import is_month_value

logger = logging.getLogger("bot")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="GNLC Biennial Progress Report intake bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Telegram bot (needs BOT_TOKEN)")
    console = sub.add_parser("console", help="fill in the report in this terminal")
    console.add_argument("--city")
    console.add_argument("--country")
    console.add_argument("--language", default=None, help=", ".join(LANGUAGES) + " (or a code such as pt-br)")
    console.add_argument("--key", default=None, help="who you are (default: your login name)")
    inv = sub.add_parser("invite", help="create a personal invitation link for a city's contact")
    inv.add_argument("--city")
    inv.add_argument("--country")
    inv.add_argument("--joined", help="month of joining the GNLC, YYYY-MM")
    cli_people.add_invite_arguments(inv)
    cli_people.add_arguments(sub)
    rev = sub.add_parser("revoke", help="withdraw invitation links")
    group = rev.add_mutually_exclusive_group(required=True)
    group.add_argument("--token", help="one link's token (the part after start=)")
    group.add_argument("--city", help="every link of this city")
    sub.add_parser("status", help="progress of every city")
    sub.add_parser("remind", help="send the reminders that are due now, then exit")
    exp = sub.add_parser("export", help="all reports as CSV, XLSX or JSON")
    exp.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
    exp.add_argument("--output", required=True, type=Path)
    exp.add_argument("--header-language", default="en")
    ef = sub.add_parser("export-files", help="all attachments as a ZIP, a folder per city")
    ef.add_argument("--output", required=True, type=Path)
    cli_ops.add_parsers(sub)
    return parser.parse_args(argv)


def fail(message: str) -> int:
    """Print one clear line and return the exit code."""
    sys.stderr.write(f"error: {message}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc))
    command = args.command
    if command is None:
        if settings.bot_token is not None:
            command = "run"
        elif sys.stdin.isatty():
            sys.stderr.write("BOT_TOKEN is not set: starting the console. Set BOT_TOKEN to run the Telegram bot.\n")
            command = "console"
            args = parse_args(["console"])
        else:
            return fail("BOT_TOKEN is not set; set it to run the Telegram bot, or run `python -m bot console`")
    # The bot logs at LOG_LEVEL; one-shot commands and the console (also when `python -m bot` starts
    # it) stay quiet unless LOG_LEVEL is set, in the environment or in .env.
    quiet = command != "run" and "log_level" not in settings.model_fields_set
    logging.basicConfig(
        level=logging.WARNING if quiet else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    install_redaction(logging.getLogger(), settings)
    if args.command in cli_ops.COMMANDS:  # operations need no questionnaire
        try:
            return cli_ops.COMMANDS[args.command](args, settings)
        except (BackupError, StartupError) as exc:
            return fail(str(exc))
    try:
        survey = load_survey(settings.survey_file)
    except SurveyError as exc:
        return fail(str(exc))
    if settings.deadline is not None:
        survey = survey.model_copy(update={"deadline": settings.deadline})
    problems = check_catalogs()
    if problems:
        return fail(
            "translation catalogs: " + problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    try:
        if command == "run":
            return run(settings, survey)
        return asyncio.run(dispatch(command, args, settings, survey))
    except (StorageUnavailable, SchemaTooNew, StartupError) as exc:
        return fail(str(exc))
    except admin.AdminError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a Bot API error ending a command: one line, never the token
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        line = telegram_failure(exc, token)
        if line is None:
            raise
        return fail(line)


def run(settings: Settings, survey: Survey) -> int:
    """Run the Telegram bot until interrupted."""
    if settings.bot_token is None:
        return fail("BOT_TOKEN is not set")
    from bot.telegram.app import run_bot

    # One event loop for the database connection and python-telegram-bot (run_polling uses the
    # current loop), so nothing created here is bound to a loop that has gone away.
    lock = prepare_data_dir(settings.data_dir)  # writable, and no other bot on the same data
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        storage = loop.run_until_complete(Storage.open(settings.database_path))
        try:
            run_bot(settings, survey, storage)
        finally:
            loop.run_until_complete(storage.close())
    finally:
        loop.close()
        lock.release()
    return 0


async def dispatch(command: str, args: argparse.Namespace, settings: Settings, survey: Survey) -> int:
    """Run one of the asynchronous commands with the database open."""
    handlers: dict[str, Callable[[argparse.Namespace, Settings, Survey, Storage], Awaitable[int]]] = {
        "console": cmd_console,
        "invite": cmd_invite,
        "revoke": cmd_revoke,
        "status": cmd_status,
    }
    extra = _extra_commands()
    handlers.update(extra)
    handlers.update(cli_people.COMMANDS)
    handler = handlers.get(command)
    if handler is None:
        return fail(f"unknown command {command!r}")
    storage = await Storage.open(settings.database_path)
    try:
        return await handler(args, settings, survey, storage)
    finally:
        await storage.close()


def _extra_commands() -> dict[str, Callable[[argparse.Namespace, Settings, Survey, Storage], Awaitable[int]]]:
    """Commands whose modules load heavier dependencies only when used."""
    from bot import cli_extra

    return cli_extra.COMMANDS


async def cmd_console(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Fill in the report in the terminal."""
    from bot.console import default_console_key, run_console

    language = pick_language(args.language, settings.regional_defaults) if args.language else "en"
    await run_console(
        survey,
        storage,
        settings.files_dir,
        city=args.city,
        country=args.country,
        key=args.key or default_console_key(),
        language=language,
        regional_defaults=settings.regional_defaults,
    )
    return 0


async def cmd_invite(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Print a personal deep link for a city's contact person (or one per row of a CSV file)."""
    if args.from_file is None and not (args.city and args.country):
        return fail("--city and --country are needed (or --from FILE.csv)")
    if args.from_file is not None and (args.city or args.country or args.joined or args.name or args.email):
        return fail("--from takes the cities from the file; leave out --city, --country, --joined, --name, --email")
    if args.uses < 1:
        return fail("--uses must be at least 1")
    if args.expires is not None and args.expires < 1:
        return fail("--expires must be at least 1 day")
    if settings.bot_token is None:
        return fail("BOT_TOKEN is needed to look up the bot's username for the link")
    if args.joined and not is_month_value(args.joined):
        return fail("--joined must look like 2019-03")
    from bot.telegram.client import bot_username

    username = await bot_username(settings)
    from bot.service import utc_now

    if args.from_file is not None:
        return await cli_people.cmd_invite_from(args, settings, survey, storage, username)
    city, link = await admin.invite(
        storage,
        survey,
        username,
        args.city,
        args.country,
        args.joined,
        utc_now(),
        name=args.name,
        email=args.email,
        uses=args.uses,
        days=args.expires or settings.invitation_days,
    )
    sys.stdout.write(f"{city.name} ({city.country}): {link}\n")
    return 0


async def cmd_revoke(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Withdraw one link, or every link of a city."""
    from bot.service import utc_now

    if args.token:
        if not await storage.revoke_invitation(args.token, now=utc_now()):
            return fail("no active invitation has that token")
        sys.stdout.write("revoked 1 invitation\n")
        return 0
    city = await admin.find_one_city(storage, survey, args.city)
    count = await storage.revoke_report_invitations(city.id, utc_now())
    sys.stdout.write(f"revoked {count} invitation(s) of {city.name} ({city.country})\n")
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings, survey: Survey, storage: Storage) -> int:
    """Print every city's progress."""
    from bot.console import plain

    rows = await admin.city_progress(storage, survey)
    sys.stdout.write(plain("\n".join(admin.status_lines(rows, get_translator("en")))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
