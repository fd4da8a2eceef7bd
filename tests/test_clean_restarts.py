"""SIGTERM while contacts answer, as a Procfile host sends it before every restart.

The real bot process (`python -m bot run`) is stopped with SIGTERM several times while 20 contacts
answer, and started again over the same data. Each stop must end with exit code 0 within 10 s;
nothing acknowledged is lost, nothing is applied twice, no update taken from Telegram goes
unanswered (what was in flight was finished, or kept in the inbox and handled after the restart),
and the log has no error or traceback.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from bot import admin
from bot.service import utc_now
from bot.storage import Storage
from tests.bot_process import BotProcess
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY
from tests.test_resilience import (
    STOP_CANDIDATES,
    Contact,
    UpdateKey,
    UpdateWatch,
    check_report,
    integrity,
    plan_for,
)

CONTACTS = 20
STOPS = 3
STOP_LIMIT = 10.0  # seconds a host waits after SIGTERM before SIGKILL


async def test_sigterm_while_contacts_answer_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(1212)
    db_path = tmp_path / "gnlc.sqlite3"
    cities = [(f"Termton {i}", "Restartland") for i in range(CONTACTS)]
    tokens: list[str] = []
    storage = await Storage.open(db_path)
    try:
        for city, country in cities:
            _, link = await admin.invite(storage, SURVEY, "gnlc_test_bot", city, country, None, utc_now())
            tokens.append(link.rsplit("start=", 1)[1])
    finally:
        await storage.close()

    with FakeBotAPI() as api:
        bot = BotProcess(api, tmp_path, tmp_path / "bot.log")
        watch = UpdateWatch(api, bot)

        def give_up(contact: Contact, key: UpdateKey | None, started: float, last_new: float) -> bool:
            # A graceful stop answers or keeps everything it took: a reply must always come.
            if time.monotonic() - started < 0.5:
                return False
            watch.refresh()
            if key in watch.pending or key in watch.delivered_ever:
                if time.monotonic() - started < 25.0:
                    return False
                contact.unexpected.append(f"no reply within 25 s to update {key}")
            else:
                contact.lost += 1
            return True

        contacts = [
            Contact(
                api,
                i,
                9100 + i,
                tokens[i],
                plan_for(i, *cities[i], "Yes" if i % 2 else "No"),
                give_up,
                stop_at=rng.choice(STOP_CANDIDATES),
            )
            for i in range(CONTACTS)
        ]
        running: set[asyncio.Future[object]] = set()
        stops: list[tuple[float, int | None, int]] = []  # (seconds to exit, exit code, contacts answering)
        try:
            await bot.start()
            running = {asyncio.ensure_future(c.run(timeout=90)) for c in contacts}
            while len(stops) < STOPS:
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                active = sum(1 for task in running if not task.done())
                began = time.monotonic()
                code = await bot.stop(timeout=STOP_LIMIT + 5)
                stops.append((round(time.monotonic() - began, 2), code, active))
                await bot.start()
            await asyncio.gather(*running)
            final = await bot.stop(timeout=STOP_LIMIT + 5)
        finally:
            for task in running:
                task.cancel()
            await bot.close()
        log = bot.log_text()

    print(f"\nSIGTERM stops (seconds, exit code, contacts answering): {stops}")
    assert all(code == 0 for _, code, _ in stops) and final == 0, stops
    assert all(seconds < STOP_LIMIT for seconds, _, _ in stops), stops
    assert sum(1 for *_, active in stops if active > 0) >= 2, "stops must come while contacts answer"
    assert sum(c.lost for c in contacts) == 0, "an update taken before a SIGTERM was never answered"
    assert integrity(db_path) == "ok"
    problems: list[str] = []
    for contact, (city, country) in zip(contacts, cities, strict=True):
        problems += check_report(contact, db_path, city, country)
        problems += [f"user {contact.user_id}: {t}" for t in contact.unexpected if t.startswith("no reply")]
    assert not problems, "\n".join(problems)
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:20])
