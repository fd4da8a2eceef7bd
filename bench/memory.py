"""Memory: resident set of the bot process with 5,000 contacts mid-report vs the idle bot.

    python -m bench.memory

1,000 reports with 5 contacts each (5,000 contacts, every one asked a long-text question, earlier
questions answered) are created with `Storage`. The bot runs in its own process; its VmRSS is read
from /proc after a gc.collect() in it:

- at start (polling, no update handled yet),
- idle: after a warm-up of 50 contacts answering (code paths, catalogs and pools loaded),
- after every one of the 5,000 contacts has sent an answer and got the reply (50 in flight).

Target: ≤ 60 MB above idle. The echo baseline gets the same 5,000 users and texts; its growth is
what python-telegram-bot itself keeps per chat.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    LONG_TEXT_OPEN,
    BenchAPI,
    Row,
    bot_and_fake,
    drive,
    print_table,
    prose,
    rss_kb,
    say,
    seed_asking,
    time_bound,
)
from tests.bot_process import BotProcess

REPORTS = 1000
PER_REPORT = 5
WARM_UP = 50
IN_FLIGHT = 50
LIMIT_MB = 60.0


def cursor_of(report: int, contact: int) -> str:
    return LONG_TEXT_OPEN[(report + contact * 3) % len(LONG_TEXT_OPEN)]


async def build(db_path: Path) -> list[int]:
    """Seed; return the 5,000 contacts' user ids."""

    seeded = await seed_asking(db_path, REPORTS, PER_REPORT, cursor_of, long_words=(40, 150))
    return [s.user_id for contacts in seeded for s in contacts]


def exercise(bot: BotProcess, api: BenchAPI, users: list[int], texts: dict[int, str], name: str) -> dict[str, float]:
    """RSS (MB) at start, after the warm-up, after all users; and how many replies came back."""
    figures = {"start": rss_kb(bot) / 1024}
    warm = drive(api, {u: [texts[u]] for u in users[:WARM_UP]})
    figures["idle"] = rss_kb(bot) / 1024
    rest = drive(api, {u: [texts[u]] for u in users[WARM_UP:]}, in_flight=IN_FLIGHT)
    figures["loaded"] = rss_kb(bot) / 1024
    # Only correct replies count (ours: the answer was saved; echo: its own text back); anything
    # else, and any second reply to one answer, is counted apart.
    correct = 0
    for d in (warm, rest):
        for user, msgs in d.replies.items():
            correct += sum(
                1 for m in msgs if m.ok and (m.text.startswith("Saved (") if name == "ours" else m.text == texts[user])
            )
    figures["replied"] = correct
    figures["unexpected"] = sum(len(d.strays) for d in (warm, rest)) + sum(
        max(0, len(msgs) - 1) for d in (warm, rest) for msgs in d.replies.values()
    )
    figures["seconds"] = rest.finished - rest.started
    return figures


def main() -> int:
    time_bound(175)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        t0 = time.perf_counter()
        users = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        say(f"seeded {REPORTS} reports, {len(users)} contacts in {time.perf_counter() - t0:.1f} s")
        texts = {u: prose(rng, 30) for u in users}
        results: dict[str, dict[str, float]] = {}
        errors: list[str] = []
        for name in ("ours", "echo"):
            with bot_and_fake(name, work, data_dir if name == "ours" else None) as (api, bot):
                say(f"{name}: {len(users)} contacts answering")
                results[name] = exercise(bot, api, users, texts, name)
                if name == "ours":
                    errors = bot.errors_logged()

    ours, echo = results["ours"], results["echo"]
    rows = [
        Row("RSS at start, MB", ours["start"], echo["start"], "MB", decimals=1),
        Row(f"RSS idle (after {WARM_UP} answers), MB", ours["idle"], echo["idle"], "MB", decimals=1),
        Row(f"RSS after {len(users):,} contacts answered, MB", ours["loaded"], echo["loaded"], "MB", decimals=1),
        Row(
            "growth above idle, MB",
            ours["loaded"] - ours["idle"],
            echo["loaded"] - echo["idle"],
            "MB",
            decimals=1,
            limit=LIMIT_MB,
            absolute=True,
        ),
        Row(
            "growth above start, MB",
            ours["loaded"] - ours["start"],
            echo["loaded"] - echo["start"],
            "MB",
            decimals=1,
            limit=LIMIT_MB,
            absolute=True,
        ),
        Row(
            "per contact, kB",
            (ours["loaded"] - ours["idle"]) * 1024 / len(users),
            (echo["loaded"] - echo["idle"]) * 1024 / len(users),
            "kB",
        ),
        Row(
            "answers replied correctly",
            ours["replied"],
            echo["replied"],
            decimals=0,
            limit=len(users),
            absolute=True,
            higher_is_better=True,
            target_text=f"= {len(users)}",
        ),
        Row(
            "unexpected or duplicate replies",
            ours["unexpected"],
            echo["unexpected"],
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
        Row("time for the 5,000 answers, s", ours["seconds"], echo["seconds"], "s", decimals=1),
    ]
    notes = [
        f"{REPORTS} reports x {PER_REPORT} contacts; VmRSS of the bot process after gc.collect(); "
        f"{IN_FLIGHT} contacts in flight",
    ] + [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("memory with 5,000 contacts mid-report", rows, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
