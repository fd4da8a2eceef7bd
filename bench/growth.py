"""Growth: one contact appends 300 messages of 4,000 characters to one long answer.

    python -m bench.growth

One report is created with `Storage`; its contact is asked a long-text question (400 words
allowed) and sends 300 texts of 4,000 characters each, the next as soon as the bot replied: the
first answers the question, the others are appended to it while the answer has room. The database
(file and write-ahead log) is measured before and after; it must grow by at most 10 MiB. Every
reply must be either "Saved (" or a refusal that tells the contact the numbers (the limit), and the
stored answer must be exactly the texts the bot said it saved, joined in order.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    LONG_TEXT_400,
    SURVEY,
    Row,
    bot_and_fake,
    drive,
    print_table,
    say,
    seed_asking,
    time_bound,
)

APPENDS = 300
CHARS = 4000
MIB = 1024 * 1024


async def build(db_path: Path) -> tuple[int, int, str]:
    """Seed one report; return (user id, report id, question asked)."""
    question = LONG_TEXT_400[0]
    (seeded,) = await seed_asking(db_path, 1, 1, lambda _index, _k: question, long_words=(20, 60))
    return seeded[0].user_id, seeded[0].contact.report_id, question


def text_of(rng: random.Random, k: int) -> str:
    """4,000 characters without a space (one "word"), as a pasted table or link list might be."""
    body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(CHARS - 8))
    return f"part{k:04d}" + body


def db_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("gnlc.sqlite3*"))


def main() -> int:
    time_bound(175)
    rng = random.Random(3)
    question = SURVEY.question(LONG_TEXT_400[0])
    assert question is not None
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        user, report_id, question_id = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        texts = [text_of(rng, k) for k in range(APPENDS)]
        with bot_and_fake("ours", work, data_dir) as (api, ours):
            start_bytes = db_bytes(data_dir)
            t0 = time.perf_counter()
            result = drive(api, {user: texts}, timeout=60)
            elapsed = time.perf_counter() - t0
            running_bytes = db_bytes(data_dir)
            errors = ours.errors_logged()
        stopped_bytes = db_bytes(data_dir)
        with sqlite3.connect(f"file:{data_dir / 'gnlc.sqlite3'}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT value_json FROM answers WHERE report_id = ? AND question_id = ?", (report_id, question_id)
            ).fetchone()
    replies = result.replies[user]
    saved = [texts[k] for k, m in enumerate(replies) if m.ok and m.text.startswith("Saved (")]
    told = [m for m in replies if m.ok and not m.text.startswith("Saved (") and any(ch.isdigit() for ch in m.text)]
    other = len(replies) - len(saved) - len(told)
    stored = json.loads(row[0]) if row is not None else None
    say(f"{len(saved)} saved, {len(told)} refused with numbers, {other} other replies in {elapsed:.1f} s")
    if told:
        say(f"first refusal: {told[0].text[:300]!r}")
    rows = [
        Row(
            "database growth while running (file + WAL)",
            (running_bytes - start_bytes) / MIB,
            None,
            "MiB",
            limit=10,
            absolute=True,
        ),
        Row("database growth after stop", (stopped_bytes - start_bytes) / MIB, None, "MiB", limit=10, absolute=True),
        Row("appends saved", len(saved), None, decimals=0),
        Row(
            "over-limit appends refused, telling the numbers",
            len(told),
            None,
            decimals=0,
            limit=1 if len(saved) < APPENDS else 0,
            absolute=True,
            higher_is_better=True,
            target_text="≥ 1",
        ),
        Row("other replies", other, None, decimals=0, limit=0, absolute=True, target_text="0"),
        Row(
            "stored answer = the saved texts in order",
            float(stored == "\n\n".join(saved)),
            None,
            decimals=0,
            limit=1,
            absolute=True,
            higher_is_better=True,
            target_text="1",
        ),
        Row("seconds for the 300 messages", elapsed, None, "s", decimals=1),
    ]
    notes = [f"{APPENDS} texts of {CHARS} characters into one answer to {question_id} (max_words {question.max_words})"]
    notes += [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("growth", rows, notes, columns=("ours", "-")) else 1


if __name__ == "__main__":
    sys.exit(main())
