"""Per-answer overhead: update enqueued in the fake Bot API -> the bot's reply recorded by it.

    python -m bench.per_answer

1,000 reports (2 contacts each, every contact mid-report, earlier questions answered) are created
with `Storage`. 250 of the contacts (both contacts of every 8th report) are asked a long-text
question; each first sends an opening answer (warm-up, not measured), then 2,000 measured answers
go one at a time, round-robin over the 250 contacts: every one is appended to the contact's long
answer, i.e. a real save (answer row, audit row, session). The echo baseline gets the same texts
from the same users. Ours and the baseline each run against their own fake and are measured in
alternating blocks of one round (250 answers), so drift on the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    LONG_TEXT_OPEN,
    Row,
    bot_and_fake,
    check_answers_in_order,
    drive,
    median,
    percentile,
    print_table,
    prose,
    say,
    seed_asking,
    time_bound,
)

REPORTS = 1000
CONTACTS_PER_REPORT = 2
ACTIVE_EVERY = 8  # both contacts of every 8th report answer: 250 contacts
ANSWERS = 2000


def cursor_of(report: int, contact: int) -> str:
    return LONG_TEXT_OPEN[(report * 3 + contact * 7) % len(LONG_TEXT_OPEN)]


async def build(db_path: Path) -> dict[int, tuple[int, int, str]]:
    """Seed the database; return user id -> (contact id, report id, question asked) of the active contacts."""
    seeded = await seed_asking(db_path, REPORTS, CONTACTS_PER_REPORT, cursor_of, long_words=(60, 250))
    active: dict[int, tuple[int, int, str]] = {}
    for index, contacts in enumerate(seeded):
        if index % ACTIVE_EVERY == 0:
            for s in contacts:
                assert s.question_id is not None
                active[s.user_id] = (s.contact.id, s.contact.report_id, s.question_id)
    return active


def main() -> int:
    time_bound(175)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-per-answer-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        t0 = time.perf_counter()
        active = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        say(f"seeded {REPORTS} reports, {REPORTS * CONTACTS_PER_REPORT} contacts in {time.perf_counter() - t0:.1f} s")
        users = list(active)
        rounds = ANSWERS // len(users)
        opening = {u: prose(rng, 40) for u in users}
        texts = {u: [prose(rng, rng.randint(12, 20)) for _ in range(rounds)] for u in users}

        with (
            bot_and_fake("ours", work, data_dir) as (ours_api, ours),
            bot_and_fake("echo", work) as (echo_api, _echo),
        ):
            for api in (ours_api, echo_api):
                warm = drive(api, {u: [opening[u]] for u in users})
                assert not warm.failed, "warm-up replies failed"
            say("warm-up done; measuring")
            lat: dict[str, list[float]] = {"ours": [], "echo": []}
            bad: dict[str, int] = {"ours": 0, "echo": 0}
            for k in range(rounds):  # one block = one round over the contacts, ours and echo alternating
                order = (("ours", ours_api), ("echo", echo_api))
                for name, api in order if k % 2 == 0 else order[::-1]:
                    result = drive(api, {u: [texts[u][k]] for u in users}, in_flight=1)
                    lat[name].extend(result.latencies)
                    for u, msgs in result.replies.items():
                        for m in msgs:
                            expected = m.text.startswith("Saved (") if name == "ours" else m.text == texts[u][k]
                            bad[name] += not (m.ok and expected)
                    bad[name] += len(result.strays)
            errors = ours.errors_logged()
        count, problems = check_answers_in_order(
            data_dir / "gnlc.sqlite3",
            {u: (c, r, q, [opening[u], *texts[u]]) for u, (c, r, q) in active.items()},
        )

    ms = {name: [x * 1000 for x in values] for name, values in lat.items()}
    rows = [
        # Information only: the latency targets are rush hour's (50 ms per call, a human pace).
        Row("median, ms", median(ms["ours"]), median(ms["echo"]), "ms"),
        Row("p99, ms", percentile(ms["ours"], 99), percentile(ms["echo"], 99), "ms"),
        Row("mean, ms", statistics.fmean(ms["ours"]), statistics.fmean(ms["echo"]), "ms"),
        Row("p90, ms", percentile(ms["ours"], 90), percentile(ms["echo"], 90), "ms"),
        Row("max, ms", max(ms["ours"]), max(ms["echo"]), "ms"),
        Row(
            "answers measured",
            len(ms["ours"]),
            len(ms["echo"]),
            decimals=0,
            limit=ANSWERS,
            absolute=True,
            higher_is_better=True,
            target_text=f"= {ANSWERS}",
        ),
        Row("unexpected replies", bad["ours"], bad["echo"], decimals=0, limit=0, absolute=True, target_text="0"),
        Row(
            "answers stored out of order / lost",
            len(problems),
            None,
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
    ]
    notes = [
        f"{REPORTS} reports in the database; {len(users)} contacts answering a long-text question "
        f"(round-robin, one update in flight); {count} contacts' stored answers and audit order checked",
        "latency = fake's arrival time of the reply's sendMessage - time the update was enqueued",
        "ours also sends an editMessageReplyMarkup per answer (retiring the previous keyboard, while the reply "
        "is on its way); the echo bot makes no second call",
    ]
    notes += problems[:5] + [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("per-answer overhead", rows, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
