"""Shared pieces of the benchmarks.

Layout of every bot benchmark: this (driver) process runs the fake Bot API (`BenchAPI`, the test
suite's `FakeBotAPI` with two timing hooks) and plays the users; the bot under test runs in a
separate process (`python -m bench.botproc ours|echo ...`) so the fake's threads and the bot's
event loop do not compete for one GIL, and the bot's memory can be read from /proc alone.
The baseline ("echo") is a minimal python-telegram-bot Application with one MessageHandler that
sends the text back, built with the same HTTPXRequest settings and concurrency (256) as ours.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import queue
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bot.storage import Contact, Storage
from conversation import engine
from conversation.loader import load_survey
from conversation.model import Kind, Question
from conversation.state import AnswerValue, Mode, Report, ReportStatus, Session
from tests.bot_process import ROOT, BotProcess, child_environment
from tests.fakes import bot_api
from tests.fakes.bot_api import CallRecord, FakeBotAPI

REPO = ROOT  # the repository: where the benchmarks run their commands
SURVEY = load_survey()
SEED_NOW = dt.datetime(2021, 10, 1, 9, 0, tzinfo=dt.UTC)
FIRST_USER_ID = 7_000_000

# ---------------------------------------------------------------- time bound


def time_bound(seconds: int) -> None:
    """Abort the benchmark (cleanly: context managers stop the bot processes) after `seconds`."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(f"benchmark exceeded its time bound of {seconds} s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


# ---------------------------------------------------------------- fake Bot API with timing hooks


@dataclass(frozen=True)
class SentMessage:
    """A sendMessage call as the fake finished it."""

    chat_id: int
    at: float  # time.time() when the request reached the fake (the record's time)
    ok: bool
    text: str
    done: float = 0.0  # time.time() when the fake had executed it (after its `latency`): the contact sees it
    fetched: float = 0.0  # time.time() when the chat's newest update left the fake in a getUpdates answer


# The fake's HTTP server keeps socketserver's listen backlog of 5: when a bot opens many
# connections at once (its pool holds 64), the overflow is reset and the send fails with
# httpx.ReadError. Telegram's servers do not do that, so the benchmarks raise the backlog
# (in this process only).
bot_api._Server.request_queue_size = 1024


class BenchAPI(FakeBotAPI):
    """The fake Bot API plus two hooks: when each chat's newest update was enqueued, and a queue
    of finished sendMessage calls (so the driver reacts to a reply without polling the records)."""

    def __init__(self, **kwargs: Any) -> None:
        # Telegram's flood control off unless a benchmark asks for it: these time the bot's own
        # work, and at the scripted users' pace they would only time the limits.
        kwargs.setdefault("rate_limit_per_chat_per_second", None)
        kwargs.setdefault("rate_limit_per_second", None)
        super().__init__(**kwargs)
        self.sent: queue.SimpleQueue[SentMessage] = queue.SimpleQueue()
        self.enqueued_at: dict[int, float] = {}
        self.fetched_at: dict[int, float] = {}

    def _enqueue(self, update_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = super()._enqueue(update_type, payload)
        chat = payload.get("chat")
        if isinstance(chat, dict) and "id" in chat:
            self.enqueued_at[int(chat["id"])] = time.time()  # still under the fake's lock
        return update

    def _finish_record(
        self, record: CallRecord, status: int | None, ok: bool, *, result: Any = None, error: str | None = None
    ) -> None:
        super()._finish_record(record, status, ok, result=result, error=error)
        if record.method == "getUpdates" and ok and isinstance(result, list):
            now = time.time()
            for update in result:
                message = update.get("message") or update.get("edited_message") or {}
                chat = message.get("chat", {}).get("id") if isinstance(message, dict) else None
                if chat is not None:
                    self.fetched_at[int(chat)] = now
        if record.method == "sendMessage":
            chat = record.int_param("chat_id") or 0
            text = str(record.params.get("text", ""))
            self.sent.put(SentMessage(chat, record.time, ok, text, time.time(), self.fetched_at.get(chat, 0.0)))

    def drain(self) -> list[SentMessage]:
        """Every finished sendMessage not taken yet."""
        out: list[SentMessage] = []
        while True:
            try:
                out.append(self.sent.get_nowait())
            except queue.Empty:
                return out

    def next_sent(self, timeout: float) -> SentMessage:
        """The next finished sendMessage; TimeoutError after `timeout` seconds."""
        try:
            return self.sent.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no sendMessage within {timeout} s") from None

    def send_answer(self, user_id: int, text: str) -> float:
        """The user types `text`; returns the moment the update was enqueued (time.time())."""
        self.send_text(user_id, text, language_code="en")
        return self.enqueued_at[user_id]


# ---------------------------------------------------------------- bot processes

_logs = itertools.count(1)


def botproc_command(mode: str, api: FakeBotAPI, *extra: str) -> list[str]:
    """`python -m bench.botproc MODE ...` for a bot talking to `api`."""
    return [
        sys.executable,
        "-m",
        "bench.botproc",
        mode,
        "--base-url",
        api.base_url,
        "--file-url",
        api.base_file_url,
        "--token",
        api.token,
        *extra,
    ]


@contextlib.contextmanager
def bot_and_fake(mode: str, workdir: Path, data_dir: Path | None = None) -> Iterator[tuple[BenchAPI, BotProcess]]:
    """A fresh `BenchAPI` and the `python -m bench.botproc MODE` bot ("ours" over `data_dir`, or "echo")
    polling it, in its own process (log: `workdir/MODE-N.log`); the bot is stopped and the fake shut
    down when the block ends."""
    api = BenchAPI()
    api.start()
    try:
        extra = ("--data-dir", str(data_dir)) if data_dir is not None else ()
        log = workdir / f"{mode}-{next(_logs)}.log"
        with BotProcess(api, workdir, log, botproc_command(mode, api, *extra)) as bot:
            yield api, bot
    finally:
        api.shutdown()


def rss_kb(bot: BotProcess) -> int:
    """The bot process's resident set (VmRSS, kB) after a full garbage collection in it."""
    answer = bot.ask("rss").split()
    if answer[:1] != ["RSS"]:
        raise RuntimeError(f"unexpected answer {answer!r}")
    return int(answer[1])


def run_bot_command(mode: str, api: FakeBotAPI, workdir: Path, *extra: str, timeout: float = 120.0) -> str:
    """Run a one-shot `bench.botproc` mode to completion; return its RESULT line's payload."""
    log_path = workdir / f"{mode}-{next(_logs)}.log"
    with log_path.open("w") as log:
        done = subprocess.run(
            botproc_command(mode, api, *extra),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_environment(),
            timeout=timeout,
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return line[len("RESULT ") :]
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"{mode} ended with exit {done.returncode} and no result\n{tail}")


# ---------------------------------------------------------------- measuring


def vm_kb(field: str, pid: int | str = "self") -> int:
    """A Vm* line of /proc/PID/status, in kB (VmRSS, VmHWM ...)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in /proc/{pid}/status")
    return int(match.group(1))


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux clear_refs 5); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


# ---------------------------------------------------------------- result table


@dataclass
class Row:
    """One line of a result table. `limit` is the target ratio (ours / baseline ≤ limit) or, with
    `absolute`, the target value of `ours` itself; `None` makes the row informational."""

    metric: str
    ours: float
    baseline: float | None
    unit: str = ""
    limit: float | None = None
    absolute: bool = False
    higher_is_better: bool = False
    target_text: str | None = None
    decimals: int = 2

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.limit is None:
            return None
        value = self.ours if self.absolute else self.ratio
        if value is None:
            return None
        return value >= self.limit if self.higher_is_better else value <= self.limit

    def target(self) -> str:
        if self.target_text is not None:
            return self.target_text
        if self.limit is None:
            return "-"
        sign = "≥" if self.higher_is_better else "≤"
        if self.absolute:
            return f"{sign} {self.limit:g} {self.unit}".rstrip()
        return f"{sign} {self.limit:g}× baseline"


def _num(value: float | None, unit: str, decimals: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{decimals}f} {unit}".rstrip()


def print_table(
    title: str, rows: Sequence[Row], notes: Sequence[str] = (), columns: tuple[str, str] = ("ours", "baseline")
) -> bool:
    """Print the result table; True if no row failed."""
    header = ("metric", *columns, "ratio", "target", "result")
    body = []
    for row in rows:
        ratio = row.ratio
        verdict = {True: "PASS", False: "FAIL", None: "info"}[row.passed]
        body.append(
            (
                row.metric,
                _num(row.ours, row.unit, row.decimals),
                _num(row.baseline, row.unit, row.decimals),
                "-" if ratio is None else f"{ratio:.2f}×",
                row.target(),
                verdict,
            )
        )
    widths = [max(len(str(line[i])) for line in (header, *body)) for i in range(len(header))]
    print()
    print(f"== {title} ==")
    for index, line in enumerate((header, *body)):
        print(
            "  ".join(
                str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]) for i, cell in enumerate(line)
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for note in notes:
        print(f"  note: {note}")
    ok = all(row.passed is not False for row in rows)
    print(f"  overall: {'PASS' if ok else 'FAIL'}")
    sys.stdout.flush()
    return ok


# ---------------------------------------------------------------- realistic content


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_VOCAB = _split(
    "learning city lifelong education community libraries adult literacy programme citizens partners municipal "
    "strategy inclusion digital skills youth workshops neighbourhood centres volunteers universities schools "
    "migrants women elderly training network festival participation policy council funding sustainable health "
    "environment culture museums families employment entrepreneurship monitoring indicators survey outcomes access "
    "barriers online courses mobile rural districts teachers associations private sector cooperation UNESCO GNLC "
    "members evaluation apprentissage formación comunidad éducation bibliothèques refugees intergenerational "
    "wellbeing climate green jobs mentoring coaching scholarships vocational kindergartens parents seniors "
    "coordination committee stakeholders campaign awareness platform radio television newspaper media week "
    "ceremony awards exhibition conference webinar pandemic recovery resilience equity gender disability "
    "outreach counselling guidance employers chambers commerce industry unions foundations donors budget plan"
)
_FILLER = _split("the and of to in for with our we a through more new all its by on each were has have been also")
_POOL = _VOCAB + _FILLER * 4  # about a third of the words are fillers
_FIRST = _split("Maria Ahmed Li Olga Joao Fatima Kwame Ana Pierre Sofia Hiroshi Amina Carlos Elena Tomas Nadia")
_LAST = _split("Schmidt Haddad Wang Petrova Silva Diallo Mensah Garcia Dubois Rossi Tanaka Benali Lopez Novak")
_CITIES = _split(
    "Hamburg Cork Espoo Medellin Amman Wuhan Kazan Porto Aswan Larissa Suwon Conakry Mysuru Beja Yeosu "
    "Tunis Sapporo Rabat Osaka Ghent Bristol Lima Quito Gdansk Cuenca Kiel Limerick Tampere Dortmund"
)
_COUNTRIES = _split("Germany Ireland Finland Colombia Jordan China Russia Portugal Egypt Greece Korea Guinea India")

LONG_TEXT_400 = tuple(
    q.id for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.when is None and (q.max_words or 400) >= 400
)
LONG_TEXT_OPEN = tuple(q.id for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.when is None)


def prose(rng: random.Random, words: int) -> str:
    """`words` words of plausible report prose (whole sentences, single spaces)."""
    sentences: list[str] = []
    count = 0
    while count < words:
        length = min(rng.randint(8, 20), words - count)
        sentence = rng.choices(_POOL, k=length)
        sentence[0] = sentence[0][:1].upper() + sentence[0][1:]
        sentences.append(" ".join(sentence) + ".")
        count += length
    return " ".join(sentences)


def city_of(index: int) -> tuple[str, str]:
    """A unique (city, country) for report number `index`."""
    base = _CITIES[index % len(_CITIES)]
    round_ = index // len(_CITIES)
    return (base if round_ == 0 else f"{base} {round_ + 1}"), _COUNTRIES[index % len(_COUNTRIES)]


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return f"{first} {last}", f"{first}.{last}".lower()


def _value(q: Question, rng: random.Random, index: int, long_words: tuple[int, int], yes_share: float) -> AnswerValue:
    city, country = city_of(index)
    slug = re.sub(r"[^a-z0-9]+", "-", city.lower()).strip("-")
    match q.kind:
        case Kind.LONG_TEXT:
            top = min(long_words[1], (q.max_words or 10_000) - 5)
            return prose(rng, rng.randint(min(long_words[0], top), top))
        case Kind.SHORT_TEXT:
            if q.id == "city_name":
                return city
            if q.id == "country":
                return country
            return rng.choice(("Head of the Lifelong Learning Office", "Learning City Coordinator", "Deputy Mayor"))
        case Kind.URL:
            return f"https://www.{slug}.example.org/learning-city"
        case Kind.MONTH_YEAR:
            return f"{rng.randint(2015, 2019)}-{rng.randint(1, 12):02d}"  # before 2020-09: not exempt
        case Kind.PERSON_NAME:
            return _person(rng)[0]
        case Kind.EMAIL:
            return f"{_person(rng)[1]}@{slug}.example.org"
        case Kind.PHONE:
            return f"+4940{rng.randint(1_000_000, 9_999_999)}"
        case Kind.YES_NO:
            return "yes" if rng.random() < yes_share else "no"
        case Kind.MULTI_CHOICE:
            picked = set(rng.sample([c.id for c in q.choices], k=min(3, len(q.choices))))
            return tuple(c.id for c in q.choices if c.id in picked)
        case Kind.SINGLE_CHOICE | Kind.GENDER:
            return rng.choice(q.choices).id
        case _:
            return "done"


def report_answers(
    rng: random.Random,
    index: int,
    *,
    long_words: tuple[int, int] = (100, 400),
    yes_share: float = 0.8,
    only_before: str | None = None,
) -> dict[str, AnswerValue]:
    """Valid, applicable answers to every question (the upload excepted) of report `index`;
    with `only_before`, only the questions before that one (a report in progress)."""
    values: dict[str, AnswerValue] = {}
    for q in SURVEY.questions:
        if q.id == only_before:
            break
        if q.kind != Kind.FILE_UPLOAD:
            values[q.id] = _value(q, rng, index, long_words, yes_share)
    applying = engine.exported_answers(SURVEY, Report(answers=values))
    return {qid: values[qid] for qid in applying}


def asking(question_id: str, answers: dict[str, AnswerValue]) -> Session:
    """A session in the middle of the report, asking `question_id` (earlier questions visited)."""
    order = [q.id for q in SURVEY.questions]
    history = tuple(qid for qid in order[: order.index(question_id)] if qid in answers)
    return Session(language="en", mode=Mode.ASKING, cursor=question_id, history=history)


# ---------------------------------------------------------------- seeding the database


@dataclass(frozen=True)
class Seeded:
    """A contact created in the database."""

    contact: Contact
    user_id: int
    report_index: int
    question_id: str | None  # the question the contact's session is asking, if any


AnswersFor = Callable[[int, random.Random], dict[str, AnswerValue]]
SessionFor = Callable[[int, int, dict[str, AnswerValue]], Session | None]


async def seed(
    path: Path,
    reports: int,
    contacts_per_report: int,
    *,
    answers_for: AnswersFor,
    session_for: SessionFor | None = None,
    submitted: bool = False,
    first_user_id: int = FIRST_USER_ID,
    first_index: int = 0,
    seed_value: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[list[Seeded]]:
    """Create `reports` reports with their contacts, answers and sessions through `Storage`.

    Contacts are bound to Telegram users the way the bot binds them (an invitation redeemed);
    user ids (= private chat ids) are `first_user_id + n`. Report numbers (for names and answers)
    start at `first_index`, so a database can be grown in steps. The seeding connection runs with
    `synchronous = OFF` (setup speed only; the bot opens its own connection with FULL).
    """
    rng = random.Random(seed_value)
    storage = await Storage.open(path)
    db = storage._db
    assert db is not None
    await db.execute("PRAGMA synchronous = OFF")
    out: list[list[Seeded]] = []
    try:
        for index in range(first_index, first_index + reports):
            user_id = first_user_id + index * contacts_per_report
            city, country = city_of(index)
            report = await storage.find_or_create_report(SURVEY.id, city, country, "2017-03", SEED_NOW)
            token = await storage.create_invitation(report.id, SEED_NOW)
            contacts: list[Contact] = []
            for k in range(contacts_per_report):
                contact = (
                    await storage.redeem(
                        token,
                        telegram_user_id=user_id + k,
                        chat_id=user_id + k,
                        display_name=" ".join(_person(rng)[0].split()[:2]),
                        language="en",
                        now=SEED_NOW,
                    )
                ).contact
                assert contact is not None
                contacts.append(contact)
            answers = answers_for(index, rng)
            before = Report()
            after = Report(
                answers=answers,
                status=ReportStatus.SUBMITTED if submitted else ReportStatus.OPEN,
                submitted_at=SEED_NOW if submitted else None,
            )
            seeded: list[Seeded] = []
            for k, contact in enumerate(contacts):
                session = session_for(index, k, answers) if session_for is not None else None
                if k == 0 or session is not None:
                    await storage.save(contact, before, after, session or Session(), SEED_NOW)
                    before = after
                seeded.append(Seeded(contact, user_id + k, index, session.cursor if session else None))
            out.append(seeded)
            if progress is not None:
                progress(index + 1)
    finally:
        await storage.close()
    return out


async def seed_asking(
    path: Path, reports: int, contacts_per_report: int, asked: Callable[[int, int], str], long_words: tuple[int, int]
) -> list[list[Seeded]]:
    """`seed` reports in progress: contact k of report i is being asked `asked(i, k)`, and each report
    holds valid answers to every question before the first one its contacts are asked (long texts
    of `long_words` words)."""
    order = [q.id for q in SURVEY.questions]

    def answers_for(index: int, rng: random.Random) -> dict[str, AnswerValue]:
        first = min((asked(index, k) for k in range(contacts_per_report)), key=order.index)
        return report_answers(rng, index, long_words=long_words, only_before=first)

    def session_for(index: int, k: int, answers: dict[str, AnswerValue]) -> Session:
        return asking(asked(index, k), answers)

    return await seed(path, reports, contacts_per_report, answers_for=answers_for, session_for=session_for)


def say(text: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- playing the users


@dataclass
class Drive:
    """What `drive` observed."""

    started: float  # time.time() of the first update
    finished: float  # time.time() of the last reply
    latencies: list[float]  # enqueue -> sendMessage arrival, seconds, in reply order
    delivered: list[float]  # enqueue -> sendMessage executed (what the contact waits for), seconds
    polled: list[float]  # enqueue -> the update handed to the bot by getUpdates, seconds
    replies: dict[int, list[SentMessage]]
    strays: list[SentMessage]  # sendMessage calls to chats that were not waiting for a reply (late ones included)

    @property
    def answers(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> list[SentMessage]:
        return [m for msgs in self.replies.values() for m in msgs if not m.ok]


QUIET_SECONDS = 0.3  # no sendMessage for this long after the last reply: nothing more is coming


def drive(
    api: BenchAPI,
    scripts: dict[int, list[str]],
    *,
    in_flight: int | None = None,
    timeout: float = 60.0,
    think: tuple[float, float] | None = None,
    rng: random.Random | None = None,
) -> Drive:
    """Each user sends its texts in order, the next one when the reply to the previous arrived
    (one sendMessage per answer); at most `in_flight` users at once (None: all of them), taken in
    the order of `scripts`. With `think` = (low, high), a user reads the reply and types for a
    uniformly random number of seconds in that range before sending the next text (human pace;
    the first texts are spread over the same range). Runs in this thread; the fake's server
    threads do the rest."""
    import heapq

    api.drain()
    rng = rng or random.Random(0)
    waiting = list(scripts)
    waiting.reverse()
    active: dict[int, tuple[int, float]] = {}
    due: list[tuple[float, int, int]] = []  # (monotonic time to send, user, index) when pacing
    replies: dict[int, list[SentMessage]] = {user: [] for user in scripts}
    latencies: list[float] = []
    delivered: list[float] = []
    polled: list[float] = []
    strays: list[SentMessage] = []
    limit = len(waiting) if in_flight is None else in_flight
    started = time.time()
    first = True

    def send(user: int, index: int) -> None:
        nonlocal started, first
        at = api.send_answer(user, scripts[user][index])
        if first:
            started, first = at, False
        active[user] = (index, at)

    def later(user: int, index: int) -> None:
        if think is None:
            send(user, index)
        else:
            active[user] = (index, math.inf)  # reading and typing: no reply is awaited yet
            heapq.heappush(due, (time.monotonic() + rng.uniform(*think), user, index))

    while waiting and len(active) < limit:
        later(waiting.pop(), 0)
    finished = started
    deadline = time.monotonic() + timeout
    while active:
        while due and due[0][0] <= time.monotonic():
            _, user, index = heapq.heappop(due)
            send(user, index)
        wait = deadline - time.monotonic()
        if due:
            wait = min(wait, max(0.0, due[0][0] - time.monotonic()))
        try:
            message = api.next_sent(max(wait, 0.001))
        except TimeoutError:
            if due or time.monotonic() < deadline:
                continue
            raise
        deadline = time.monotonic() + timeout
        state = active.get(message.chat_id)
        if state is None or state[1] == math.inf:
            strays.append(message)
            continue
        index, sent_at = state
        latencies.append(message.at - sent_at)
        delivered.append(message.done - sent_at)
        polled.append(message.fetched - sent_at)
        replies[message.chat_id].append(message)
        finished = max(finished, message.at)
        if index + 1 < len(scripts[message.chat_id]):
            later(message.chat_id, index + 1)
        else:
            del active[message.chat_id]
            if waiting:
                later(waiting.pop(), 0)
    # A reply sent twice arrives after the one that was counted: wait until the bot is quiet so it is
    # seen here instead of being drained, unseen, by the next drive.
    while True:
        try:
            strays.append(api.next_sent(QUIET_SECONDS))
        except TimeoutError:
            break
    return Drive(started, finished, latencies, delivered, polled, replies, strays)


def check_answers_in_order(
    db_path: Path, expected: dict[int, tuple[int, int, str, list[str]]]
) -> tuple[int, list[str]]:
    """Check, for each contact (contact id, report id, question id, texts sent in order), that the
    stored answer is the texts joined in order and that the audit rows show them arriving in order.
    Returns (contacts checked, problems)."""
    import json
    import sqlite3

    problems: list[str] = []
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        for contact_id, report_id, question_id, texts in expected.values():
            row = db.execute(
                "SELECT value_json FROM answers WHERE report_id = ? AND question_id = ?", (report_id, question_id)
            ).fetchone()
            want = "\n\n".join(texts)
            if row is None or json.loads(row[0]) != want:
                problems.append(f"contact {contact_id}: stored answer to {question_id} differs from the texts sent")
                continue
            trail = [
                json.loads(value)
                for (value,) in db.execute(
                    "SELECT new_json FROM audit WHERE contact_id = ? AND question_id = ? AND action = 'answer'"
                    " ORDER BY id",
                    (contact_id, question_id),
                )
            ]
            if trail != ["\n\n".join(texts[: k + 1]) for k in range(len(texts))]:
                problems.append(f"contact {contact_id}: audit trail of {question_id} is not in sending order")
    return len(expected), problems
