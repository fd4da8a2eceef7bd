"""Rush hour: 200 contacts answering at once, 50 ms added to every Bot API call.

    python -m bench.rush_hour

1,000 reports (one contact each, mid-report) are created with `Storage`; 200 contacts (one every
5th report) are asked a long-text question (400 words allowed). Every contact sends 15 answers of
18 words, each as soon as the bot's reply to the previous one arrived (the first answers the
question, the others are appended to it: all real saves). The echo baseline gets the same users
and texts. `api.latency = 0.05` on both fakes (getUpdates included). The run is split in two halves
(ours then echo, then echo then ours) so drift on the machine hits both alike. Afterwards every
contact's stored answer and audit trail are checked against the order the texts were sent in.
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
    BenchAPI,
    BotProcess,
    Drive,
    Row,
    asking,
    check_answers_in_order,
    drive,
    median,
    percentile,
    print_table,
    prose,
    report_answers,
    say,
    seed,
    time_bound,
)
from conversation.state import AnswerValue, Session

REPORTS = 1000
ACTIVE_EVERY = 5  # 200 contacts
ANSWERS_EACH = 15
WORDS = 18
LATENCY = 0.05
HALF = 8  # answers per contact in the first half


def cursor_of(report: int) -> str:
    if report % ACTIVE_EVERY == 0:
        return LONG_TEXT_400[(report // ACTIVE_EVERY) % len(LONG_TEXT_400)]
    return LONG_TEXT_OPEN[report % len(LONG_TEXT_OPEN)]


async def build(db_path: Path) -> dict[int, tuple[int, int, str]]:
    """Seed; return user id -> (contact id, report id, question asked) of the 200 active contacts."""

    def answers_for(index: int, rng: random.Random) -> dict[str, AnswerValue]:
        return report_answers(rng, index, long_words=(60, 250), only_before=cursor_of(index))

    def session_for(index: int, _k: int, answers: dict[str, AnswerValue]) -> Session:
        return asking(cursor_of(index), answers)

    seeded = await seed(db_path, REPORTS, 1, answers_for=answers_for, session_for=session_for)
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
        say(f"seeded {REPORTS} reports in {time.perf_counter() - t0:.1f} s; {len(active)} contacts answer")
        assert SURVEY.question(LONG_TEXT_400[0]) is not None
        texts = {u: [prose(rng, WORDS) for _ in range(ANSWERS_EACH)] for u in active}
        apis = {"ours": BenchAPI(), "echo": BenchAPI()}
        for api in apis.values():
            api.start()
        runs: dict[str, list[Drive]] = {"ours": [], "echo": []}
        bad = {"ours": 0, "echo": 0}
        try:
            with (
                BotProcess("ours", apis["ours"], work, "--data-dir", str(data_dir)) as ours,
                BotProcess("echo", apis["echo"], work),
            ):
                for api in apis.values():
                    api.latency = LATENCY
                for half, (lo, hi) in enumerate(((0, HALF), (HALF, ANSWERS_EACH))):
                    for name in ("ours", "echo") if half == 0 else ("echo", "ours"):
                        say(f"{name}: answers {lo + 1}-{hi} of every contact")
                        result = drive(apis[name], {u: texts[u][lo:hi] for u in active}, timeout=60)
                        runs[name].append(result)
                        for u, msgs in result.replies.items():
                            for k, m in enumerate(msgs, lo):
                                want = m.text.startswith("Saved (") if name == "ours" else m.text == texts[u][k]
                                bad[name] += not (m.ok and want)
                        bad[name] += len(result.strays)
                errors = ours.errors_logged()
            checked, problems = check_answers_in_order(
                data_dir / "gnlc.sqlite3", {u: (c, r, q, texts[u]) for u, (c, r, q) in active.items()}
            )
        finally:
            for api in apis.values():
                api.shutdown()

    def rate(name: str) -> float:
        return sum(r.answers for r in runs[name]) / sum(r.finished - r.started for r in runs[name])

    def lat(name: str) -> list[float]:
        return [x * 1000 for r in runs[name] for x in r.latencies]

    total = len(active) * ANSWERS_EACH
    rows = [
        Row("answers per second", rate("ours"), rate("echo"), "/s", limit=0.8, higher_is_better=True, decimals=1),
        Row("round trip median, ms", median(lat("ours")), median(lat("echo")), "ms", decimals=1),
        Row("round trip p99, ms", percentile(lat("ours"), 99), percentile(lat("echo"), 99), "ms", decimals=1),
        Row("round trip mean, ms", statistics.fmean(lat("ours")), statistics.fmean(lat("echo")), "ms", decimals=1),
        Row(
            "answers replied",
            len(lat("ours")),
            len(lat("echo")),
            decimals=0,
            limit=total,
            absolute=True,
            higher_is_better=True,
            target_text=f"= {total}",
        ),
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
        f"{len(active)} contacts x {ANSWERS_EACH} answers, {REPORTS} reports in the database, "
        f"latency {LATENCY * 1000:.0f} ms on every call; {checked} contacts' answers + audit trails checked",
        "ours makes 2 calls per answer (sendMessage, and editMessageReplyMarkup retiring the previous keyboard "
        "while the reply is on its way); the echo bot makes 1",
    ]
    notes += problems[:5] + [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("rush hour", rows, notes) else 1


if __name__ == "__main__":
    sys.exit(main())
