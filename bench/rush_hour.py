"""Rush hour: 12, then 50 contacts answering at a human pace, 50 ms added to every Bot API call.

    python -m bench.rush_hour

1,000 reports (one contact each, mid-report) are created with `Storage`; 50 contacts (one every
20th report) are asked a long-text question (400 words allowed). In the first round the first 12
of them answer, in the second all 50: each contact sends answers of 8 words, the next one a
random 0.5-1.5 s after the bot's reply to the previous one arrived (reading and typing; the first
answers the question, the others are appended to it: all real saves). The echo baseline gets the
same users, texts and pauses. `api.latency = 0.05` on both fakes (getUpdates included). Each round
is split in two halves (ours then echo, then echo then ours) so drift on the machine hits both
alike. Afterwards every contact's stored answer and audit trail are checked against the order the
texts were sent in.
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
    LONG_TEXT_400,
    LONG_TEXT_OPEN,
    SURVEY,
    Drive,
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
ACTIVE_EVERY = 20  # 50 contacts
ROUNDS = ((12, 24), (50, 12))  # (contacts answering, answers each)
WORDS = 8
THINK = (0.5, 1.5)  # seconds between a reply and the contact's next answer
LATENCY = 0.05


def cursor_of(report: int) -> str:
    if report % ACTIVE_EVERY == 0:
        return LONG_TEXT_400[(report // ACTIVE_EVERY) % len(LONG_TEXT_400)]
    return LONG_TEXT_OPEN[report % len(LONG_TEXT_OPEN)]


async def build(db_path: Path) -> dict[int, tuple[int, int, str]]:
    """Seed; return user id -> (contact id, report id, question asked) of the 200 active contacts."""

    seeded = await seed_asking(db_path, REPORTS, 1, lambda index, _k: cursor_of(index), long_words=(60, 250))
    return {
        s.user_id: (s.contact.id, s.contact.report_id, cursor_of(index))
        for index, (s,) in enumerate(seeded)
        if index % ACTIVE_EVERY == 0
    }


def main() -> int:
    time_bound(175)
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="bench-rush-hour-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        t0 = time.perf_counter()
        active = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        say(f"seeded {REPORTS} reports in {time.perf_counter() - t0:.1f} s; up to {len(active)} contacts answer")
        assert SURVEY.question(LONG_TEXT_400[0]) is not None
        users = list(active)
        sent: dict[int, list[str]] = {u: [] for u in users}  # every text in sending order, over the rounds
        runs: dict[tuple[int, str], list[Drive]] = {}
        bad = {"ours": 0, "echo": 0}
        with (
            bot_and_fake("ours", work, data_dir) as (ours_api, ours),
            bot_and_fake("echo", work) as (echo_api, _echo),
        ):
            apis = {"ours": ours_api, "echo": echo_api}
            for api in apis.values():
                api.latency = LATENCY
            for count, each in ROUNDS:
                texts = {u: [prose(rng, WORDS) for _ in range(each)] for u in users[:count]}
                for u, more in texts.items():
                    sent[u] += more
                half = each // 2
                for part, (lo, hi) in enumerate(((0, half), (half, each))):
                    for name in ("ours", "echo") if part == 0 else ("echo", "ours"):
                        say(f"{count} contacts, {name}: answers {lo + 1}-{hi} of every contact")
                        result = drive(
                            apis[name],
                            {u: texts[u][lo:hi] for u in texts},
                            timeout=60,
                            think=THINK,
                            rng=random.Random(count * 100 + part),
                        )
                        runs.setdefault((count, name), []).append(result)
                        for u, msgs in result.replies.items():
                            for k, m in enumerate(msgs, lo):
                                want = m.text.startswith("Saved (") if name == "ours" else m.text == texts[u][k]
                                bad[name] += not (m.ok and want)
                        bad[name] += len(result.strays)
            errors = ours.errors_logged()
        checked, problems = check_answers_in_order(
            data_dir / "gnlc.sqlite3", {u: (c, r, q, sent[u]) for u, (c, r, q) in active.items() if sent[u]}
        )

    def ms(count: int, name: str, what: str = "delivered") -> list[float]:
        return [x * 1000 for r in runs[(count, name)] for x in getattr(r, what)]

    def processing(count: int, name: str) -> list[float]:
        """getUpdates answered -> the reply's request reaching the fake: the bot's own time."""
        return [(a - p) * 1000 for r in runs[(count, name)] for a, p in zip(r.latencies, r.polled, strict=True)]

    rows: list[Row] = []
    for count, each in ROUNDS:
        ours_ms, echo_ms = ms(count, "ours"), ms(count, "echo")
        rows += [
            Row(
                f"{count} contacts: round trip median, ms",
                median(ours_ms),
                median(echo_ms),
                "ms",
                limit=1.15,
                decimals=1,
            ),
            Row(
                f"{count} contacts: round trip p99, ms",
                percentile(ours_ms, 99),
                percentile(echo_ms, 99),
                "ms",
                limit=1.3,
                decimals=1,
            ),
            Row(
                f"{count} contacts: round trip mean, ms",
                statistics.fmean(ours_ms),
                statistics.fmean(echo_ms),
                "ms",
                decimals=1,
            ),
            Row(
                f"{count} contacts: reply request reaches the fake, median",
                median(ms(count, "ours", "latencies")),
                median(ms(count, "echo", "latencies")),
                "ms",
                decimals=1,
            ),
            Row(
                f"{count} contacts: of which waiting for getUpdates, median",
                median(ms(count, "ours", "polled")),
                median(ms(count, "echo", "polled")),
                "ms",
                decimals=1,
            ),
            Row(
                f"{count} contacts: of which the bot's own work, median",
                median(processing(count, "ours")),
                median(processing(count, "echo")),
                "ms",
                decimals=1,
            ),
            Row(
                f"{count} contacts: answers replied",
                len(ours_ms),
                len(echo_ms),
                decimals=0,
                limit=count * each,
                absolute=True,
                higher_is_better=True,
                target_text=f"= {count * each}",
            ),
        ]
    rows += [
        Row("unexpected replies", bad["ours"], bad["echo"], decimals=0, limit=0, absolute=True, target_text="0"),
        Row(
            "contacts whose answers are not stored in sending order",
            len(problems),
            None,
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
    ]
    notes = [
        f"rounds of {' and '.join(str(c) for c, _ in ROUNDS)} contacts answering {THINK[0]}-{THINK[1]} s after each "
        f"reply, {REPORTS} reports in the database, latency {LATENCY * 1000:.0f} ms on every call; "
        f"{checked} contacts' answers + audit trails checked",
        "round trip = the contact's update enqueued -> the bot's reply executed by the fake (after its 50 ms): "
        "what the contact waits for; the breakdown rows end when the reply's request reaches the fake",
        "ours makes 2 calls per answer (sendMessage, and editMessageReplyMarkup retiring the previous keyboard "
        "while the reply is on its way); the echo bot makes 1",
    ]
    notes += problems[:5] + [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("rush hour", rows, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
