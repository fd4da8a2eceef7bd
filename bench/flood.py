"""Flood: one chat's flood must not stall another contact, with Telegram's per-chat limit on.

    python -m bench.flood

Three reports are created with `Storage`; the measured contact ("A") and an invited contact of
another city ("F") are each asked a long-text question. The fake Bot API throttles like Telegram:
at most one message per second per chat (429 with `retry_after` beyond it) and 30 per second in all.
A answers at a human pace (the next answer 2.2-2.8 s after the bot's reply), three times over:

1. idle: nobody else writes;
2. stranger: an uninvited account sends 300 messages at once, and A starts answering 2.2-2.8 s later;
3. own chat: F sends 300 messages into its own chat at once, and A starts answering 2.2-2.8 s later.

A's round trip (update enqueued -> the bot's reply recorded by the fake) must stay at most 1 s and
its median at most 3x the idle median. Also counted: how many replies the stranger got (at most
one per few minutes), and what F got (its first messages saved, one notice for the rest).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    LONG_TEXT_400,
    BenchAPI,
    Row,
    bot_and_fake,
    median,
    print_table,
    prose,
    say,
    seed_asking,
    time_bound,
)

FLOOD = 300
ANSWERS = 6  # A's answers per phase
# A's pause between answers: within Telegram's per-chat budget (1 call/s; each answer costs the bot two
# calls in A's chat, the reply and the previous keyboard's retirement), so a 429 in A's chat can only
# come from the flood, not from A's own pace.
THINK = (2.2, 2.8)
REPLY_TIMEOUT = 30.0  # seconds A waits for one reply before the phase is counted as stalled
STRANGER = 6_000_001


async def build(db_path: Path) -> tuple[int, int]:
    """Seed three reports; return the user ids of A and F."""
    seeded = await seed_asking(db_path, 3, 1, lambda _index, _k: LONG_TEXT_400[0], long_words=(20, 60))
    return seeded[0][0].user_id, seeded[1][0].user_id


@dataclass
class Paced:
    latencies: list[float]  # seconds; a reply that never came counts as REPLY_TIMEOUT
    refused: int = 0
    timed_out: int = 0


def answer_paced(api: BenchAPI, user: int, texts: list[str], rng: random.Random) -> Paced:
    """A sends each text once the reply to the previous one arrived and a human pause passed; the
    round trip ends with the first reply the fake accepted."""
    out = Paced([])
    api.drain()
    for text in texts:
        time.sleep(rng.uniform(*THINK))  # also before the first: A's last reply may be from the phase before
        sent_at = api.send_answer(user, text)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            try:
                message = api.next_sent(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                out.latencies.append(REPLY_TIMEOUT)
                out.timed_out += 1
                return out  # the bot is stalled: the rest of the phase would only wait as well
            if message.chat_id == user and not message.ok:
                out.refused += 1  # a 429 in A's own chat: the bot retries after retry_after
            elif message.chat_id == user:
                out.latencies.append(message.at - sent_at)
                break
    return out


def main() -> int:
    time_bound(175)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        a_user, f_user = asyncio.run(build(data_dir / "gnlc.sqlite3"))
        phases: dict[str, Paced] = {}
        bad = timed_out = 0
        with bot_and_fake("ours", work, data_dir) as (api, ours):
            api.rate_limit_per_chat_per_second = 1
            api.rate_limit_per_second = 30
            for phase in ("idle", "stranger", "own chat"):
                texts = [prose(rng, 6) for _ in range(ANSWERS)]
                if phase == "stranger":
                    for k in range(FLOOD):
                        api.send_text(STRANGER, f"hello {k}", language_code="en")
                elif phase == "own chat":
                    for k in range(FLOOD):
                        api.send_text(f_user, f"line {k} of a pasted text", language_code="en")
                say(f"{phase}: A answers {ANSWERS} times")
                result = answer_paced(api, a_user, texts, random.Random(len(phase)))
                phases[phase] = result
                bad += result.refused
                timed_out += result.timed_out
            errors = ours.errors_logged()
            stranger_replies = len(
                [r for r in api.calls_to("sendMessage", ok=True) if r.int_param("chat_id") == STRANGER]
            )
            f_replies = [r for r in api.calls_to("sendMessage", ok=True) if r.int_param("chat_id") == f_user]
            throttled = api.stats["rate_limited"]
            refused_to_a = [
                f"{r.error}: {str(r.params.get('text', ''))[:50]!r}"
                for r in api.calls_to("sendMessage")
                if r.int_param("chat_id") == a_user and r.ok is False
            ]

    def ms(phase: str) -> list[float]:
        return [x * 1000 for x in phases[phase].latencies]

    idle = median(ms("idle"))
    rows = [Row("A's round trip median, idle", idle, None, "ms", decimals=1)]
    for phase in ("stranger", "own chat"):
        rows += [
            Row(f"A's round trip median, {phase} flood", median(ms(phase)), idle, "ms", limit=3, decimals=1),
            Row(
                f"A's round trip max, {phase} flood", max(ms(phase)), None, "ms", limit=1000, absolute=True, decimals=1
            ),
        ]
    rows += [
        Row(
            "A's answers replied",
            sum(len(ms(p)) for p in phases),
            None,
            decimals=0,
            limit=3 * ANSWERS,
            absolute=True,
            higher_is_better=True,
            target_text=f"= {3 * ANSWERS}",
        ),
        Row("A's replies refused", bad, None, decimals=0, limit=0, absolute=True, target_text="0"),
        Row(
            f"A's answers without a reply within {REPLY_TIMEOUT:.0f} s",
            timed_out,
            None,
            decimals=0,
            limit=0,
            absolute=True,
            target_text="0",
        ),
        Row("replies to the stranger's 300 messages", stranger_replies, None, decimals=0, limit=1, absolute=True),
        Row("replies to F's 300 messages (so far)", len(f_replies), None, decimals=0),
        Row("429 answers of the fake", throttled, None, decimals=0),
    ]
    notes = [
        "fake: 1 message/s per chat, 30/s in all (429 with retry_after); A answers 2.2-2.8 s after each reply",
        "round trip = A's update enqueued -> the bot's reply reaching the fake; idle is the baseline column",
    ]
    notes += [f"refused reply to A: {line}" for line in refused_to_a[:5]]
    notes += [f"bot log: {line}" for line in errors[:5]]
    return 0 if print_table("flood", rows, notes, columns=("ours", "idle")) else 1


if __name__ == "__main__":
    sys.exit(main())
