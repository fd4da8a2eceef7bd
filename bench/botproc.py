"""The bot side of the benchmarks, run in its own process by `bench.common.bot_and_fake`.

    python -m bench.botproc ours  --base-url U --file-url F --token T --data-dir D
    python -m bench.botproc echo  --base-url U --file-url F --token T
    python -m bench.botproc remind --base-url U --file-url F --token T --data-dir D --now ISO
    python -m bench.botproc broadcast --base-url U --file-url F --token T --chats FIRST:COUNT

`ours` is the real bot (`bot.telegram.app.build_application`, started like tests/telegram_harness.py
and polling like `run_bot`); `echo` is the baseline: a minimal python-telegram-bot Application with
one MessageHandler sending the text back, with the same HTTPXRequest settings and the same
concurrency (256 concurrent updates). Both print READY once polling, then answer `rss` (VmRSS in kB
after gc.collect()) and stop on `quit` or end of input.

`remind` runs `bot.reminders.send_due` once with `bot.telegram.outputs.send_reply` through a `telegram.Bot`
built like the application's (connection pool 64); `broadcast` is its baseline, a minimal PTB
sender of one message per chat at fixed 1/30 s slots, honouring 429 retry_after. Both print
`RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from telegram import Bot, Update
from telegram.error import RetryAfter
from telegram.ext import Application, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from bench.common import SURVEY, vm_kb

# The same request settings as bot.telegram.app.build_application.
POOL = {"connection_pool_size": 64, "connect_timeout": 10, "read_timeout": 20, "write_timeout": 30}
UPDATES_POOL = {"connection_pool_size": 2, "read_timeout": 40, "connect_timeout": 10}
CONCURRENT_UPDATES = 256
POLL_TIMEOUT = 10  # run_polling's default


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.botproc")
    parser.add_argument("mode", choices=("ours", "echo", "remind", "broadcast"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--file-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--now", help="the reminder run's 'now' (ISO 8601)")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--chats", default="", help="FIRST:COUNT private chat ids (broadcast)")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics of the run to this file")
    return parser.parse_args(argv)


def echo_application(args: argparse.Namespace) -> Application[Any, Any, Any, Any, Any, Any]:
    """The baseline: python-telegram-bot's smallest useful bot."""
    app = (
        Application.builder()
        .token(args.token)
        .base_url(args.base_url)
        .base_file_url(args.file_url)
        .request(HTTPXRequest(**POOL))  # type: ignore[arg-type]
        .get_updates_request(HTTPXRequest(**UPDATES_POOL))  # type: ignore[arg-type]
        .concurrent_updates(CONCURRENT_UPDATES)
        .build()
    )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text:
            await context.bot.send_message(message.chat_id, message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


async def serve(args: argparse.Namespace) -> None:
    """Run a bot (ours or the echo baseline) until told to quit."""
    storage = None
    front = None
    if args.mode == "ours":
        from bot.service import IntakeService
        from bot.settings import Settings
        from bot.storage import Storage
        from bot.telegram.app import ALLOWED_UPDATES, build_application, on_startup
        from bot.telegram.polling import DurablePolling

        settings = Settings(
            bot_token=args.token,
            bot_api_base_url=args.base_url,
            bot_api_file_url=args.file_url,
            data_dir=args.data_dir,
            reminders_enabled=False,
        )
        storage = await Storage.open(settings.database_path)
        service = IntakeService(SURVEY, storage, settings.files_dir)
        app, front = build_application(settings, SURVEY, storage, service)
        await app.initialize()
        await on_startup(app, front)
        await app.start()
        # Ours polls durably (each fetched batch is committed before it is confirmed).
        poller: DurablePolling | None = DurablePolling(
            app, storage, allowed_updates=ALLOWED_UPDATES, poll_timeout=POLL_TIMEOUT
        )
        assert poller is not None
        await poller.start()
    else:
        app = echo_application(args)
        await app.initialize()
        await app.start()
        poller = None
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "rss":
                gc.collect()
                print(f"RSS {vm_kb('VmRSS')} {vm_kb('VmHWM')}", flush=True)
            elif line == "ping":
                print("PONG", flush=True)
            else:  # "quit" or end of input
                break
    finally:
        if poller is not None:
            await poller.stop()
        elif app.updater is not None:
            await app.updater.stop()
        await app.stop()
        if front is not None:
            await front.close()
        await app.shutdown()
        if storage is not None:
            await storage.close()


async def remind(args: argparse.Namespace) -> dict[str, Any]:
    """One `send_due` run through the real Bot API client."""
    from bot.reminders import policy_from, send_due
    from bot.settings import Settings
    from bot.storage import Storage
    from bot.telegram.outputs import broadcaster

    settings = Settings(bot_token=args.token, data_dir=args.data_dir, reminders_enabled=False)
    policy = policy_from(settings, SURVEY)
    now = dt.datetime.fromisoformat(args.now)
    storage = await Storage.open(settings.database_path)
    bot = Bot(args.token, base_url=args.base_url, base_file_url=args.file_url, request=HTTPXRequest(**POOL))  # type: ignore[arg-type]
    try:
        async with bot:
            send = broadcaster(bot)  # as the bot and `python -m bot remind` send reminders
            started_at = time.time()
            start = time.perf_counter()
            result = await send_due(storage, SURVEY, policy, now, send)
            elapsed = time.perf_counter() - start
    finally:
        await storage.close()
    return {
        "started_at": started_at,
        "elapsed": elapsed,
        "sent": result.sent,
        "failed": result.failed,
        "blocked": result.blocked,
        "skipped": result.skipped,
        "keys": result.keys,
    }


async def broadcast(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline of the reminder run: one message per chat at fixed 1/rate slots, nothing else."""
    first, count = (int(part) for part in args.chats.split(":"))
    text = (
        "⏰ <b>Reminder</b>: the Biennial Progress Report of your city is due in 7 days, on 31 December 2021.\n"
        "You have answered 12 of 41 questions. 9 required questions are still missing.\n\n"
        "Cities that do not submit a complete report by the deadline may not have their membership renewed."
    )
    bot = Bot(args.token, base_url=args.base_url, base_file_url=args.file_url, request=HTTPXRequest(**POOL))  # type: ignore[arg-type]
    retries = 0
    interval = 1.0 / args.rate
    async with bot:
        started_at = time.time()
        start = time.perf_counter()

        async def one(index: int) -> None:
            nonlocal retries
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            while True:
                try:
                    await bot.send_message(first + index, text, parse_mode="HTML")
                    return
                except RetryAfter as exc:
                    retries += 1
                    wait = exc.retry_after
                    await asyncio.sleep(wait if isinstance(wait, int | float) else wait.total_seconds())

        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    return {"started_at": started_at, "elapsed": elapsed, "sent": count, "retries": retries}


def main() -> None:
    args = parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.mode in ("ours", "echo"):
        if args.profile is not None:
            import cProfile

            with cProfile.Profile() as profile:
                asyncio.run(serve(args))
            profile.dump_stats(args.profile)
        else:
            asyncio.run(serve(args))
    elif args.mode == "remind":
        print("RESULT " + json.dumps(asyncio.run(remind(args))), flush=True)
    else:
        print("RESULT " + json.dumps(asyncio.run(broadcast(args))), flush=True)


if __name__ == "__main__":
    main()
