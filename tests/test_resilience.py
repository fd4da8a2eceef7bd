"""Resilience: the bot killed mid-conversation, a flaky Bot API, and a database that refuses writes.

- `test_sigkill_restarts_lose_and_duplicate_nothing`: 50 contacts answer concurrently while the
  real bot process (`python -m bot run`) is SIGKILLed at random moments and restarted over the
  same data directory and the same fake Bot API (which delivers again every update no later
  getUpdates offset confirmed, as Telegram does). Every answer ends up stored once, under its own
  question, and every contact resumes at the first question they have not answered. An update
  that a killed process had already taken (and confirmed) is gone; its contact, getting no
  reply, sends /start and carries on from what the bot shows, as a person would.
- `test_flaky_bot_api_loses_nothing`: 20 contacts complete the whole report while 10 % of Bot API
  calls fail (429 with retry_after 1, 500, 502, dropped connections).
- `test_database_refusing_writes_*`: a read-only or full database gives a clear log line and a
  polite "try again shortly", leaves the file intact, and the contact continues afterwards.

The contacts are scripted from what the bot shows: each looks at the bot's newest reply (the
question it asks, "Saved", the introduction) and sends the answer its plan holds for that
question. Answers are unique per question, so an answer stored under the wrong question, or
stored twice (a long answer appended to itself), is caught.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import random
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot import admin
from bot.storage import Storage
from conversation import engine
from conversation import validation as v
from conversation.model import Kind, Question
from conversation.state import AnswerValue, Report
from tests.bot_process import BotProcess
from tests.fakes.bot_api import BotMessage, FakeBotAPI
from tests.telegram_harness import SURVEY, Harness, running_bot

QUESTION_BY_TEXT: dict[str, Question] = {q.text: q for q in SURVEY.questions}
PROGRESS_LINE = re.compile(r"^Section \d+ of \d+ · question \d+ of \d+$")
PREFILLED = ("city_name", "country")
# Notices that may come with a reply and ask nothing of the contact.
# Sent to take the "share my phone number" keyboard away, and to carry it (beside the question).
BENIGN = frozenset({"Thank you.", "📱 Share my phone number"})
POLL = 0.03


# ---------------------------------------------------------------- what a contact answers


@dataclass(frozen=True)
class Answer:
    """How a contact answers one question, and the value the bot must store for it."""

    raw: str  # the text typed, or the label of the button pressed
    expected: AnswerValue
    press: bool = False
    file: bool = False


def _ok(value: str | v.Rejection) -> str:
    assert isinstance(value, str), value
    return value


def plan_for(i: int, city: str, country: str, branch: str) -> dict[str, Answer]:
    """A valid answer to every question, unique per question (and per contact)."""
    plan: dict[str, Answer] = {}
    for n, q in enumerate(SURVEY.questions):
        match q.kind:
            case Kind.SHORT_TEXT:
                raw = {"city_name": city, "country": country}.get(q.id, f"Learning city coordinator {i}")
                plan[q.id] = Answer(raw, raw)
            case Kind.URL:
                raw = f"www.{q.id.replace('_', '-')}-{i}.example.org"
                plan[q.id] = Answer(raw, _ok(v.normalize_url(raw)))
            case Kind.MONTH_YEAR:
                year, month = (2016 if q.id == "joined_gnlc" else 2018), 1 + (i + n) % 12
                plan[q.id] = Answer(f"{month:02d}/{year}", f"{year}-{month:02d}")
            case Kind.PERSON_NAME:
                raw = f"Amara {q.id.split('_')[0].title()}{i}"
                plan[q.id] = Answer(raw, _ok(v.normalize_person_name(raw)))
            case Kind.EMAIL:
                raw = f"{q.id.replace('_', '.')}{i}@city{i}.example.org"
                plan[q.id] = Answer(raw, _ok(v.normalize_email(raw)))
            case Kind.PHONE:
                raw = f"+49 40 4282{i:05d}"
                plan[q.id] = Answer(raw, _ok(v.normalize_phone(raw)))
            case Kind.GENDER:
                choice = q.choices[0] if q.id == "mayor_gender" else q.choices[1]
                plan[q.id] = Answer(choice.label, choice.id, press=True)
            case Kind.YES_NO:
                plan[q.id] = Answer(branch, branch.lower(), press=True)
            case Kind.SINGLE_CHOICE:
                choice = q.choices[i % len(q.choices)]
                plan[q.id] = Answer(choice.label, choice.id, press=True)
            case Kind.MULTI_CHOICE:
                picked = (q.choices[i % len(q.choices)], q.choices[(i + 3) % len(q.choices)])
                order = [c.id for c in q.choices]
                expected = tuple(sorted({c.id for c in picked}, key=order.index))
                plan[q.id] = Answer(", ".join(c.label for c in picked), expected)
            case Kind.LONG_TEXT:
                raw = (
                    f"Contact {i} on {q.id}: we opened {i + 3} learning centres "
                    f"and trained {10 * i + 7} facilitators in the reporting period."
                )
                plan[q.id] = Answer(raw, raw)
            case Kind.FILE_UPLOAD:
                plan[q.id] = Answer(f"plan-{i}.pdf", engine.UPLOAD_DONE, file=True)
    return plan


def first_unanswered(answers: dict[str, AnswerValue]) -> str | None:
    """The first applicable question without an answer (where /start must resume)."""
    report = Report(answers=answers)
    return next((q.id for q in engine.applicable(SURVEY, report) if not engine.is_answered(SURVEY, report, q)), None)


# ---------------------------------------------------------------- reading the chat


@dataclass(frozen=True)
class Screen:
    """The bot message a contact acts on."""

    kind: str  # intro | question | saved | done | note
    message: BotMessage
    question: Question | None = None


def classify(message: BotMessage) -> Screen | None:
    """What a bot message asks the contact to do, or None for other messages."""
    text = message.shown_text or ""
    labels = [str(b.get("text", "")) for b in message.buttons()]
    if "Begin" in labels:
        return Screen("intro", message)
    lines = text.split("\n")
    for index, line in enumerate(lines[:-1]):
        if PROGRESS_LINE.match(line) and lines[index + 1] in QUESTION_BY_TEXT:
            return Screen("question", message, QUESTION_BY_TEXT[lines[index + 1]])
    if text.startswith("Saved (") and any(label.startswith("Next question") for label in labels):
        return Screen("saved", message)
    if "You have been through every question" in text:
        return Screen("done", message)
    return None


UpdateKey = tuple[str, int, int] | tuple[str, str]
GiveUp = Callable[["Contact", UpdateKey | None, float, float], bool]


def update_key(update: dict[str, Any]) -> UpdateKey | None:
    """What identifies an update of ours: the message (chat, id) or the callback query id."""
    if "message" in update:
        return ("m", int(update["message"]["chat"]["id"]), int(update["message"]["message_id"]))
    if "callback_query" in update:
        return ("c", str(update["callback_query"]["id"]))
    return None


def action_key(result: object) -> UpdateKey | None:
    """The key of the update a fake-API action created (send_* returns the message, press the query id)."""
    if isinstance(result, dict):
        return ("m", int(result["chat"]["id"]), int(result["message_id"]))
    if isinstance(result, str):
        return ("c", result)
    return None


class UpdateWatch:
    """Which updates still wait for getUpdates, and which the running bot process received (cached briefly)."""

    def __init__(self, api: FakeBotAPI, bot: BotProcess) -> None:
        self.api = api
        self.bot = bot
        self.pending: set[UpdateKey | None] = set()
        self.delivered: set[UpdateKey | None] = set()
        self.delivered_ever: set[UpdateKey | None] = set()  # to any bot process, killed ones included
        self._at = 0.0

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._at < 0.05:
            return
        self._at = now
        self.pending = {update_key(u) for u in self.api.pending_updates()}
        mark = self.bot.live_mark
        records = [] if mark is None else self.api.calls_to("getUpdates", since=mark)
        self.delivered = {update_key(u) for record in records for u in (record.result or [])}
        every = self.api.calls_to("getUpdates")
        self.delivered_ever = {update_key(u) for record in every for u in (record.result or [])}


@dataclass
class Contact:
    """One scripted Telegram user working through their city's report."""

    api: FakeBotAPI
    index: int
    user_id: int
    token: str
    plan: dict[str, Answer]
    give_up: GiveUp  # (contact, update, started, last new message) -> stop waiting, resynchronise with /start
    stop_at: str | None = None  # the question the script stops at (None: the end of the report)
    sent: dict[str, str] = field(default_factory=dict)  # question id -> what was last sent for it
    acked: set[str] = field(default_factory=set)  # answers the very next reply confirmed
    unexpected: list[str] = field(default_factory=list)  # bot messages the script did not expect
    resyncs: int = 0
    lost: int = 0  # updates a killed bot process had taken from getUpdates and never answered
    redeemed: bool = False
    final: Screen | None = None
    deadline: float = 0.0

    async def exchange(
        self,
        action: Callable[[], object],
        *,
        via_start: bool = False,
        accept: Callable[[str], bool] | None = None,
    ) -> Screen | None:
        """Do `action`, then return the first screen the bot shows after it (None: give up).

        After a /start (`via_start`), only what follows "Welcome back" (or the introduction) counts.
        `accept` marks plain notices that are the expected reply (e.g. "File saved").
        """
        mark = self.api.mark()
        try:
            key = action_key(action())
        except ValueError:  # the button is not there any more
            return None
        started = last_new = time.monotonic()
        seen = 0
        while True:
            if time.monotonic() > self.deadline:
                raise AssertionError(
                    f"contact {self.user_id} got stuck; sent {list(self.sent)}; "
                    f"last messages: {[m.shown_text for m in self.api.messages(self.user_id)[-3:]]}"
                )
            messages = self.api.messages_since(mark, self.user_id)
            if len(messages) != seen:
                seen, last_new = len(messages), time.monotonic()
            screen, notes = self._read(messages, via_start, accept)
            if screen is not None or self.give_up(self, key, started, last_new):
                self.unexpected.extend(notes)
                return screen
            await asyncio.sleep(POLL)

    def _read(
        self, messages: list[BotMessage], via_start: bool, accept: Callable[[str], bool] | None
    ) -> tuple[Screen | None, list[str]]:
        notes: list[str] = []
        welcomed = not via_start
        stale = False  # a late answer to an earlier /start: its "Welcome back" and the screen after it
        for message in messages:
            text = message.shown_text or ""
            screen = classify(message)
            if text in BENIGN:
                continue
            if not welcomed:
                if text.startswith("Welcome back"):
                    welcomed = True
                elif screen is not None and screen.kind == "intro":
                    return screen, notes
                elif screen is None:
                    notes.append(text)
                continue
            if text.startswith("Welcome back"):
                stale = True
                continue
            if screen is not None:
                if stale:
                    stale = False
                    continue
                return screen, notes
            if accept is not None and accept(text):
                return Screen("note", message), notes
            notes.append(text)
        return None, notes

    async def resync(self) -> Screen | None:
        """Ask the bot where we are, as a person would after a reply that never came."""
        self.resyncs += 1
        command = "/start" if self.redeemed else f"/start {self.token}"
        return await self.exchange(lambda: self.api.send_text(self.user_id, command), via_start=True)

    def press(self, message: BotMessage, label: str) -> Callable[[], object]:
        labels = [str(b["text"]) for b in message.buttons() if "callback_data" in b]
        exact = label if label in labels else next((t for t in labels if t.startswith(label)), label)
        return lambda: self.api.press(self.user_id, message.message_id, button_text=exact)

    async def run(self, timeout: float) -> Screen:
        """Work through the report until the stop question (or its end); return the last screen."""
        self.deadline = time.monotonic() + timeout
        screen = await self.exchange(lambda: self.api.send_text(self.user_id, f"/start {self.token}"), via_start=True)
        while True:
            if screen is None:
                screen = await self.resync()
                continue
            self.redeemed = True
            if screen.kind == "done":
                self.final = screen
                return screen
            if screen.kind in ("intro", "saved"):
                label = "Begin" if screen.kind == "intro" else "Next question"
                screen = await self.exchange(self.press(screen.message, label))
                continue
            if screen.kind != "question":  # a stray notice: look again
                screen = None
                continue
            q = screen.question
            assert q is not None
            if q.id == self.stop_at:
                self.final = screen
                return screen
            answer = self.plan[q.id]
            self.sent[q.id] = answer.raw
            if answer.file:
                screen = await self.upload(screen, answer)
            elif answer.press:
                screen = await self.exchange(self.press(screen.message, answer.raw))
            else:
                screen = await self.exchange(functools.partial(self.api.send_text, self.user_id, answer.raw))
            moved_on = screen is not None and (
                screen.kind in ("saved", "done") or (screen.question is not None and screen.question.id != q.id)
            )
            if moved_on:
                self.acked.add(q.id)

    async def upload(self, question: Screen, answer: Answer) -> Screen | None:
        """Send the supporting file, then press Done."""
        content = f"%PDF-1.4 supporting file of contact {self.index}".encode()
        note = await self.exchange(
            lambda: self.api.send_document(self.user_id, file_name=answer.raw, content=content),
            accept=lambda text: "File saved" in text or "already sent this file" in text,
        )
        if note is None or note.kind != "note":
            return note
        return await self.exchange(self.press(question.message, "Done"))


# ---------------------------------------------------------------- setting contacts up


async def invite_cities(db_path: Path, cities: list[tuple[str, str]]) -> list[str]:
    """One fresh invitation token per (city, country), made in the database before any bot runs."""
    tokens: list[str] = []
    storage = await Storage.open(db_path)
    try:
        for city, country in cities:
            _, link = await admin.invite(storage, SURVEY, "gnlc_test_bot", city, country, None, dt.datetime.now(dt.UTC))
            tokens.append(link.rsplit("start=", 1)[1])
    finally:
        await storage.close()
    return tokens


def scripted_contacts(
    api: FakeBotAPI,
    cities: list[tuple[str, str]],
    tokens: list[str],
    first_user_id: int,
    give_up: GiveUp,
    stops: random.Random | None = None,
) -> list[Contact]:
    """One scripted contact per city (user ids from `first_user_id`), half of them on the "Yes" branch;
    with `stops`, each stops at a question drawn from STOP_CANDIDATES (in contact order), else at the end."""
    return [
        Contact(
            api,
            i,
            first_user_id + i,
            tokens[i],
            plan_for(i, *cities[i], "Yes" if i % 2 else "No"),
            give_up,
            stop_at=None if stops is None else stops.choice(STOP_CANDIDATES),
        )
        for i in range(len(cities))
    ]


def give_up_unless_kept(watch: UpdateWatch, patience: float, *, patience_for_pending: bool) -> GiveUp:
    """When a contact across bot restarts stops waiting and sends /start (never in the first 0.5 s).

    An update some bot process took was kept in the bot's inbox, so its reply must come: after
    `patience` seconds without it the contact notes "no reply within ..." in `unexpected`. An update
    still waiting for getUpdates is waited for as long as the contact's deadline allows, or only
    `patience` seconds with `patience_for_pending`. An update in neither place was taken by a killed
    process and never handled: the contact counts it in `lost`.
    """

    def give_up(contact: Contact, key: UpdateKey | None, started: float, last_new: float) -> bool:
        if time.monotonic() - started < 0.5:
            return False
        watch.refresh()
        if key in watch.pending and not patience_for_pending:
            return False
        if key in watch.pending or key in watch.delivered_ever:
            if time.monotonic() - started < patience:
                return False
            contact.unexpected.append(f"no reply within {patience:g} s to update {key}")
        else:
            contact.lost += 1
        return True

    return give_up


# ---------------------------------------------------------------- database checks


def stored_answers(db_path: Path, user_id: int) -> tuple[dict[str, AnswerValue], dict[str, int], int]:
    """(answers, number of 'answer' audit rows per question, attachments) of the user's report."""
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT report_id FROM contacts WHERE telegram_user_id = ?", (user_id,)).fetchone()
        assert row is not None, f"user {user_id} never became a contact"
        report_id = row[0]
        answers: dict[str, AnswerValue] = {}
        for qid, value_json in db.execute(
            "SELECT question_id, value_json FROM answers WHERE report_id = ?", (report_id,)
        ):
            value = json.loads(value_json)
            answers[qid] = tuple(value) if isinstance(value, list) else value
        audits = dict(
            db.execute(
                "SELECT question_id, count(*) FROM audit WHERE report_id = ? AND action = 'answer'"
                " GROUP BY question_id",
                (report_id,),
            ).fetchall()
        )
        files = db.execute("SELECT count(*) FROM attachments WHERE report_id = ?", (report_id,)).fetchone()[0]
    return answers, audits, files


def integrity(db_path: Path) -> str:
    """PRAGMA integrity_check through a connection of our own."""
    with sqlite3.connect(db_path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def check_report(contact: Contact, db_path: Path, city: str, country: str) -> list[str]:
    """Problems with what the database holds for this contact (empty when all is well)."""
    answers, audits, _files = stored_answers(db_path, contact.user_id)
    expected: dict[str, AnswerValue] = dict(zip(PREFILLED, (city, country), strict=True))
    expected.update({qid: contact.plan[qid].expected for qid in contact.sent})
    problems: list[str] = []
    for qid in sorted(expected.keys() | answers.keys()):
        if answers.get(qid) != expected.get(qid):
            problems.append(f"{qid}: stored {answers.get(qid)!r}, expected {expected.get(qid)!r}")
    for qid in sorted(contact.acked - answers.keys()):
        problems.append(f"{qid}: acknowledged but not stored")
    for qid, count in sorted(audits.items()):
        if count != 1:
            problems.append(f"{qid}: written {count} times")
    # Nothing was skipped: every applicable question before the stop point was answered.
    report = Report(answers=answers)
    for q in engine.applicable(SURVEY, report):
        if q.id == contact.stop_at:
            break
        if not engine.is_answered(SURVEY, report, q) and not (q.kind == Kind.FILE_UPLOAD and _files):
            problems.append(f"{q.id}: never answered")
    return [f"user {contact.user_id}: {p}" for p in problems]


# ---------------------------------------------------------------- 1. SIGKILL at random moments

CRASH_CONTACTS = 50
CRASH_KILLS = 6
STOP_CANDIDATES = (
    "contact_phone",
    "strategy_adopted",
    "sustainability_health",
    "equity_inclusion",
    "decent_work",
    "decent_work",
    "learning_formats",
    "learning_formats",
    "core_team",
    "core_team",
)


async def test_sigkill_restarts_lose_and_duplicate_nothing(tmp_path):
    rng = random.Random(20240611)
    db_path = tmp_path / "gnlc.sqlite3"
    cities = [(f"Crashton {i}", f"Country {i % 7}") for i in range(CRASH_CONTACTS)]
    tokens = await invite_cities(db_path, cities)

    # Flood control off (per chat and overall): 50 scripted contacts answer whole reports in
    # milliseconds, ~9,500 calls that Telegram's pace would stretch over many minutes. This test is
    # about durability across SIGKILLs; the pace is exercised in tests/test_telegram_e2e.py.
    with FakeBotAPI(rate_limit_per_chat_per_second=None, rate_limit_per_second=None) as api:
        bot = BotProcess(api, tmp_path, tmp_path / "bot.log")
        # Resynchronise only when no reply can come any more: an update waiting for (re)delivery, or
        # taken by a bot process (perhaps one since killed) and so kept in the bot's inbox, is answered
        # by the running process; one in neither place was taken by a killed process and lost.
        give_up = give_up_unless_kept(UpdateWatch(api, bot), 20.0, patience_for_pending=False)
        contacts = scripted_contacts(api, cities, tokens, 5000, give_up, stops=rng)
        running: set[asyncio.Future[Screen]] = set()
        try:
            await bot.start()
            started = time.monotonic()
            running = {asyncio.ensure_future(c.run(timeout=75)) for c in contacts}
            kill_log: list[tuple[float, int]] = []  # (seconds into the test, contacts still answering)
            while len(kill_log) < CRASH_KILLS:
                await asyncio.sleep(rng.uniform(0.2, 0.9))
                active = sum(1 for task in running if not task.done())
                await bot.kill()
                kill_log.append((round(time.monotonic() - started, 2), active))
                await asyncio.sleep(rng.uniform(0.0, 0.3))  # updates pile up while the bot is down
                await bot.start()
            await asyncio.gather(*running)
            answered_at = time.monotonic() - started

            # The final restart: every contact sends /start and must land on its first unanswered question.
            await bot.kill()
            await bot.start()
            resumed: dict[int, Screen | None] = {}

            async def resume(contact: Contact) -> None:
                contact.deadline = time.monotonic() + 30
                resumed[contact.user_id] = await contact.exchange(
                    lambda: api.send_text(contact.user_id, "/start"), via_start=True
                )

            await asyncio.gather(*(resume(c) for c in contacts))
            code = await bot.stop()
            assert code == 0, f"the bot did not stop cleanly on SIGTERM (exit code {code})"
        finally:
            for task in running:
                task.cancel()
            await bot.close()
        log = bot.log_text()

    under_load = [k for k in kill_log if k[1] > 0]
    print(
        f"\ncrash test: {bot.kills} kills {kill_log}; answers done after {answered_at:.1f} s; "
        f"{sum(len(c.sent) for c in contacts)} answers, {sum(len(c.acked) for c in contacts)} acknowledged "
        f"by the next reply; {sum(c.lost for c in contacts)} updates taken by a killed process and never "
        f"answered (the contact sent /start: {sum(c.resyncs for c in contacts)} times)"
    )
    assert len(under_load) >= 5, f"the bot must be killed at least 5 times while contacts answer: {kill_log}"
    assert sum(c.lost for c in contacts) == 0, "updates taken by a killed process were never handled"
    assert integrity(db_path) == "ok"
    problems: list[str] = []
    for contact, (city, country) in zip(contacts, cities, strict=True):
        problems += check_report(contact, db_path, city, country)
        problems += [f"user {contact.user_id}: unexpected message {t!r}" for t in contact.unexpected]
        answers, _, _ = stored_answers(db_path, contact.user_id)
        screen = resumed[contact.user_id]
        shown = screen.question.id if screen is not None and screen.question is not None else screen
        if shown != contact.stop_at or first_unanswered(answers) != contact.stop_at:
            problems.append(
                f"user {contact.user_id}: /start shows {shown}, first unanswered is {first_unanswered(answers)}, "
                f"the script stopped at {contact.stop_at}"
            )
    assert not problems, "\n".join(problems)
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:20])


# ---------------------------------------------------------------- 2. a flaky Bot API

FLAKY_CONTACTS = 20


async def test_flaky_bot_api_loses_nothing(tmp_path):
    # Flood control off, as in the SIGKILL test: 20 whole reports at a scripted pace (~3,800 calls)
    # would take minutes at Telegram's pace; the faults below include 429s anyway.
    api = FakeBotAPI(seed=7, rate_limit_per_chat_per_second=None, rate_limit_per_second=None).start()
    try:
        async with running_bot(tmp_path, api=api) as h:
            cities = [(f"Flakyburg {i}", "Faultland") for i in range(FLAKY_CONTACTS)]
            tokens = [await h.invite(city, country) for city, country in cities]

            def give_up(contact: Contact, key: UpdateKey | None, started: float, last_new: float) -> bool:
                # A reply whose every send attempt failed, or that was lost on a dropped connection and
                # rightly not sent again, never comes: after a while (longer than the bot's retries of
                # what certainly did not go out), /start, as a person would.
                now = time.monotonic()
                return now - started > 8.0 and now - last_new > 3.0

            contacts = scripted_contacts(api, cities, tokens, 7000, give_up)
            api.fault_retry_after = 1
            # Timeouts are left out: PTB's read timeout is 20 s, so a real one would take 20 s per hit.
            # "drop_after" is a call carried out whose answer is lost: the bot must not send it again.
            api.fault_weights = {"429": 1.0, "500": 1.0, "502": 1.0, "drop": 1.0, "drop_after": 1.0, "timeout": 0.0}
            api.fail_rate = 0.1
            started = time.monotonic()
            await asyncio.gather(*(c.run(timeout=120) for c in contacts))
            elapsed = time.monotonic() - started
            api.fail_rate = 0.0
            faults = {kind: api.stats[kind] for kind in ("429", "500", "502", "drop", "drop_after")}
        print(
            f"\nflaky API: {FLAKY_CONTACTS} whole reports in {elapsed:.1f} s; faults {faults}; "
            f"{sum(c.resyncs for c in contacts)} resynchronisations; other messages: "
            f"{sorted({t for c in contacts for t in c.unexpected})}"
        )
    finally:
        api.shutdown()
    assert sum(faults.values()) > 100, faults
    db_path = tmp_path / "gnlc.sqlite3"
    assert integrity(db_path) == "ok"
    problems: list[str] = []
    for contact, (city, country) in zip(contacts, cities, strict=True):
        assert contact.final is not None and contact.final.kind == "done", contact.user_id
        problems += check_report(contact, db_path, city, country)
        _, _, files = stored_answers(db_path, contact.user_id)
        if files != 1:
            problems.append(f"user {contact.user_id}: {files} attachments, expected 1")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- 3. a database that refuses writes


async def _set_pragma(h: Harness, pragma: str) -> None:
    """Run a PRAGMA on the bot's own connection, between two of its transactions."""
    db = h.storage._db
    assert db is not None
    async with h.storage._lock:
        await db.execute(pragma)


async def _page_count(h: Harness) -> int:
    db = h.storage._db
    assert db is not None
    async with h.storage._lock, db.execute("PRAGMA page_count") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("fault", ["read_only", "disk_full"])
async def test_database_refusing_writes_is_survived(tmp_path, caplog, fault):
    caplog.set_level(logging.WARNING)
    async with running_bot(tmp_path) as h:
        user = h.person(6001)
        await user.send(f"/start {await h.invite('Readonlyville', 'Faultland')}", "This report is for")
        await user.press("Begin", "Official city website address")
        await user.send("www.readonlyville.example.org", "Date of joining")
        await user.send("03/2016", "Mayor: name")
        contact = await h.contact(6001)
        before = await h.storage.answers_of(contact.report_id)
        await user.send("/edit q:medium_term_progress", "medium-term objectives")
        # About 3,500 characters in 350 words: big enough to need new pages in the database file.
        long_answer = " ".join(f"initiative{n:04d}" for n in range(350))

        if fault == "read_only":
            await _set_pragma(h, "PRAGMA query_only = ON")
        else:
            await _set_pragma(h, f"PRAGMA max_page_count = {await _page_count(h)}")
        caplog.clear()
        replies = await user.send(long_answer, "Please try again shortly")
        assert not any("Saved" in (m.shown_text or "") for m in replies)
        logged = [r for r in caplog.records if r.name == "bot.telegram.handlers" and r.levelno >= logging.ERROR]
        assert logged, [r.getMessage() for r in caplog.records]
        line = logged[0].getMessage()
        assert "database unavailable" in line
        assert ("read-only" in line) if fault == "read_only" else ("full" in line), line
        assert not any(r.exc_info for r in logged), "an expected outage is logged without a traceback"
        assert integrity(tmp_path / "gnlc.sqlite3") == "ok"
        assert await h.storage.answers_of(contact.report_id) == before

        # The fault goes away; the same answer is sent again and the contact carries on.
        if fault == "read_only":
            await _set_pragma(h, "PRAGMA query_only = OFF")
        else:
            await _set_pragma(h, "PRAGMA max_page_count = 1073741823")
        await user.send(long_answer, "Saved (350 words of 400)")
        await user.press("Next question", "long-term objectives")
        await user.send("/start", "Welcome back", "long-term objectives")
        after = await h.storage.answers_of(contact.report_id)
        assert after == {**before, "medium_term_progress": long_answer}
    assert integrity(tmp_path / "gnlc.sqlite3") == "ok"
