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

from tests.bot_process import BotProcess
from tests.fakes.bot_api import FakeBotAPI
from tests.test_resilience import (
    UpdateWatch,
    check_report,
    give_up_unless_kept,
    integrity,
    invite_cities,
    scripted_contacts,
)

CONTACTS = 20
STOPS = 3
STOP_LIMIT = 10.0  # seconds a host waits after SIGTERM before SIGKILL


async def test_sigterm_while_contacts_answer_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(1212)
    db_path = tmp_path / "gnlc.sqlite3"
    cities = [(f"Termton {i}", "Restartland") for i in range(CONTACTS)]
    tokens = await invite_cities(db_path, cities)

    with FakeBotAPI() as api:
        bot = BotProcess(api, tmp_path, tmp_path / "bot.log")
        # A graceful stop answers or keeps everything it took: a reply must always come.
        give_up = give_up_unless_kept(UpdateWatch(api, bot), 25.0, patience_for_pending=True)
        contacts = scripted_contacts(api, cities, tokens, 9100, give_up, stops=rng)
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
