"""Reminder broadcast: `send_due` to 1,000 contacts under a 30 messages/s limit.

    python -m bench.reminders

1,000 open reports (one contact each; a fifth not started, the others part-way through) are
created with `Storage`. The fake Bot API answers 429 with retry_after beyond 30 sendMessage per
second (sliding one-second window). A separate process runs `bot.reminders.send_due` once, at
"7 days before the deadline", with `bot.telegram.outputs.send_reply` through a `telegram.Bot` built like
the application's (HTTPXRequest, pool of 64). The physical floor is 1000 / 30 s; the measured
baseline is a minimal PTB sender (one message per chat at fixed 1/30 s slots, 429 honoured, no
database) against its own fake with the same limit. The driver then counts the successful
sendMessage calls per chat: every contact must be reached exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import (
    LONG_TEXT_OPEN,
    BenchAPI,
    Row,
    asking,
    print_table,
    report_answers,
    run_bot_command,
    say,
    seed,
    time_bound,
)
from conversation.state import AnswerValue, Session

CONTACTS = 1000
RATE = 30.0
NOW = dt.datetime(2021, 12, 24, 10, 0, tzinfo=dt.UTC)  # the 7-days-before reminder is due (09:00 UTC)
FLOOR = CONTACTS / RATE


async def build(db_path: Path) -> list[int]:
    """Seed; return the contacts' chat ids."""

    def cursor(index: int) -> str:
        return LONG_TEXT_OPEN[index % len(LONG_TEXT_OPEN)]

    def answers_for(index: int, rng: random.Random) -> dict[str, AnswerValue]:
        if index % 5 == 0:  # not started: only what the invitation prefilled
            return report_answers(rng, index, only_before="city_website")
        return report_answers(rng, index, long_words=(40, 120), only_before=cursor(index))

    def session_for(index: int, _k: int, answers: dict[str, AnswerValue]) -> Session | None:
        return None if index % 5 == 0 else asking(cursor(index), answers)

    seeded = await seed(db_path, CONTACTS, 1, answers_for=answers_for, session_for=session_for)
    return [s.user_id for (s,) in seeded]


def deliveries(api: BenchAPI, chats: list[int]) -> tuple[int, int, int]:
    """(chats reached exactly once, reached more than once, never reached) by successful sendMessage."""
    counts = Counter(record.int_param("chat_id") for record in api.calls_to("sendMessage", ok=True))
    once = sum(1 for chat in chats if counts[chat] == 1)
    more = sum(1 for chat in chats if counts[chat] > 1)
    never = sum(1 for chat in chats if counts[chat] == 0)
    return once, more, never


def first_arrival(api: BenchAPI) -> float:
    return min(record.time for record in api.calls_to("sendMessage"))


def main() -> int:
    time_bound(175)
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        t0 = time.perf_counter()
        chats = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        say(f"seeded {CONTACTS} contacts in {time.perf_counter() - t0:.1f} s")
        apis = {"ours": BenchAPI(), "baseline": BenchAPI()}
        results: dict[str, dict[str, float]] = {}
        reached: dict[str, tuple[int, int, int]] = {}
        too_many: dict[str, int] = {}
        first: dict[str, float] = {}
        try:
            for name, api in apis.items():
                api.start()
                for chat in chats:
                    api.add_user(chat, first_name="Contact", language_code="en")
                api.rate_limit_per_second = RATE
                say(f"{name}: sending to {CONTACTS} chats at ≤ {RATE:g}/s")
                if name == "ours":
                    raw = run_bot_command(
                        "remind", api, work, "--data-dir", str(data_dir), "--now", NOW.isoformat(), timeout=150
                    )
                else:
                    raw = run_bot_command("broadcast", api, work, "--chats", f"{chats[0]}:{CONTACTS}", timeout=150)
                results[name] = json.loads(raw)
                reached[name] = deliveries(api, chats)
                too_many[name] = api.count_429
                first[name] = first_arrival(api) - results[name]["started_at"]
        finally:
            for api in apis.values():
                api.shutdown()

    ours, base = results["ours"], results["baseline"]
    rows = [
        Row(
            "total time, s",
            ours["elapsed"],
            base["elapsed"],
            "s",
            limit=1.1 * FLOOR,
            absolute=True,
            target_text=f"≤ 1.1× floor = {1.1 * FLOOR:.1f} s",
        ),
        Row(
            "total time / physical floor (1000/30 s)",
            ours["elapsed"] / FLOOR,
            base["elapsed"] / FLOOR,
            "×",
            limit=1.1,
            absolute=True,
        ),
        Row("start until the first message, s", first["ours"], first["baseline"], "s", decimals=3),
        Row(
            "contacts reached exactly once",
            reached["ours"][0],
            reached["baseline"][0],
            decimals=0,
            limit=CONTACTS,
            absolute=True,
            higher_is_better=True,
            target_text=f"= {CONTACTS}",
        ),
        Row(
            "contacts reached twice or more",
            reached["ours"][1],
            reached["baseline"][1],
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
        Row(
            "contacts never reached",
            reached["ours"][2],
            reached["baseline"][2],
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
        Row("429 answers from the fake", too_many["ours"], too_many["baseline"], decimals=0),
    ]
    notes = [
        f"send_due result: {ours['sent']:.0f} sent, {ours['failed']:.0f} failed, {ours['blocked']:.0f} blocked, "
        f"{ours['skipped']:.0f} skipped",
        f"baseline: {base['sent']:.0f} messages, {base['retries']:.0f} retries after 429",
        "the fake limits sendMessage to 30 per sliding second and answers 429 (retry_after ≥ 1 s) beyond",
    ]
    return 0 if print_table("reminder broadcast", rows, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
