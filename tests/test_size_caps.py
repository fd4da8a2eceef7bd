"""Size caps: a long answer has a character cap counting the appended whole, the contact is told the
numbers, nothing saved is lost, audit history grows linearly, and the per-update tables are pruned."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from bot.storage import ANSWER_MESSAGES_KEPT, Storage
from conversation import engine
from conversation import validation as v
from conversation.i18n import get_translator
from conversation.loader import load_survey
from conversation.model import Kind
from conversation.render import Renderer
from conversation.state import Mode, OfferMore, Rejected, Report, Session, Step, TextInput, TooLong
from tests.telegram_harness import running_bot

SURVEY = load_survey()
NOW = dt.datetime(2021, 11, 1, 12, tzinfo=dt.UTC)
WORDY = next(q for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.max_words == 400)
UNLIMITED = next(q for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.max_words is None)


def advance(report: Report, session: Session, text: str) -> Step:
    return engine.advance(SURVEY, report, session, TextInput(text), now=NOW, labels=get_translator("en"))


def rejections(step: Step) -> list[Rejected]:
    return [e for e in step.effects if isinstance(e, Rejected)]


def test_char_limit_follows_the_word_limit_and_a_global_cap() -> None:
    assert v.char_limit(400) == 400 * v.CHARS_PER_WORD
    assert v.char_limit(None) == v.MAX_ANSWER_CHARS
    assert v.char_limit(10_000) == v.MAX_ANSWER_CHARS  # never above the global cap


def test_one_long_word_is_refused_with_the_numbers() -> None:
    cap = v.char_limit(WORDY.max_words)
    text = "x" * (cap + 7)  # one "word": the word limit alone would take it
    step = advance(Report(), Session(mode=Mode.ASKING, cursor=WORDY.id), text)
    (rejected,) = rejections(step)
    assert rejected.reason == TooLong(count=cap + 7, limit=cap, characters=True)
    assert rejected.reason.excess == 7
    assert WORDY.id not in step.report.answers
    shown = Renderer(SURVEY).one(rejected, step.report, step.session, get_translator("en"))[0].text
    assert f"{cap + 7} characters" in shown and f"limit is {cap}" in shown and "remove 7 characters" in shown
    assert "not saved" in shown


def test_appends_count_the_whole_and_keep_what_was_saved() -> None:
    cap = v.char_limit(WORDY.max_words)
    first = "a" * (cap - 100)
    step = advance(Report(), Session(mode=Mode.ASKING, cursor=WORDY.id), first)
    assert step.report.answers[WORDY.id] == first and step.session.mode == Mode.ADDING_MORE
    over = advance(step.report, step.session, "b" * 200)
    (rejected,) = rejections(over)
    assert rejected.reason == TooLong(count=len(first) + 2 + 200, limit=cap, characters=True, combined=True)
    assert over.report.answers[WORDY.id] == first  # the saved part is kept
    shown = Renderer(SURVEY).one(rejected, over.report, over.session, get_translator("fr"))[0].text
    assert str(cap) in shown and str(len(first) + 2 + 200) in shown and "caractères" in shown
    fits = advance(step.report, step.session, "c" * 50)
    assert fits.report.answers[WORDY.id] == first + "\n\n" + "c" * 50
    assert any(isinstance(e, OfferMore) for e in fits.effects)


def test_a_question_without_word_limit_has_the_global_cap() -> None:
    step = advance(Report(), Session(mode=Mode.ASKING, cursor=UNLIMITED.id), "word " * (v.MAX_ANSWER_CHARS // 5 + 1))
    (rejected,) = rejections(step)
    assert isinstance(rejected.reason, TooLong) and rejected.reason.characters and not rejected.reason.combined
    assert rejected.reason.limit == v.MAX_ANSWER_CHARS


@pytest.mark.parametrize("language", ["en", "fr", "es", "ar", "zh", "ru", "pt"])
def test_the_numbers_are_told_in_every_language(language: str) -> None:
    rejected = Rejected(TooLong(count=6123, limit=6000, characters=True, combined=True), WORDY.id)
    tr = get_translator(language)
    text = Renderer(SURVEY).one(rejected, Report(), Session(language=language), tr)[0].text
    english = Renderer(SURVEY).one(rejected, Report(), Session(), get_translator("en"))[0].text
    assert "123" in text and (language == "en" or text != english)


# ---------------------------------------------------------------- storage


async def test_an_append_is_audited_once_not_twice(tmp_path: Path) -> None:
    async with await Storage.open(tmp_path / "db.sqlite3") as storage:
        city = await storage.find_or_create_report(SURVEY.id, "Cork", "Ireland", None, NOW)
        contact = await storage.console_contact("c", city.id, "en", NOW)
        piece = "p" * 1000
        for k in range(1, 6):
            before, session = await storage.load(contact)
            after = before.model_copy(update={"answers": {WORDY.id: "\n\n".join([piece] * k)}})
            await storage.save(contact, before, after, session, NOW)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT old_json, new_json FROM audit WHERE question_id = ? ORDER BY id", (WORDY.id,)
        ).fetchall()
    assert len(rows) == 5 and all(old is None for old, _ in rows)  # the old value is the previous row's
    assert sum(len(new) for _, new in rows) < 1000 * 15 + 200  # each value once: 1+2+3+4+5 pieces


async def test_pruning_drops_old_marks_and_far_message_mappings(tmp_path: Path) -> None:
    async with await Storage.open(tmp_path / "db.sqlite3") as storage:
        city = await storage.find_or_create_report(SURVEY.id, "Cork", "Ireland", None, NOW)
        contact = await storage.console_contact("c", city.id, "en", NOW)
        newest = ANSWER_MESSAGES_KEPT + 500
        for message_id in (1, 400, 499, 500, 501, newest):
            await storage.remember_answer_message(contact.id, message_id, WORDY.id, "t")
        await storage.inbox_add([(1, "{}")], NOW)
        before, session = await storage.load(contact)
        await storage.save(contact, before, before, session, NOW - dt.timedelta(days=3), update_id=11)
        await storage.save(contact, before, before, session, NOW, update_id=12)
        await storage.prune(NOW - dt.timedelta(days=2))
        assert await storage.handled([11, 12]) == {12}
        assert await storage.answer_message(contact.id, newest) is not None
        assert await storage.answer_message(contact.id, 500) is not None  # exactly ANSWER_MESSAGES_KEPT behind
        assert await storage.answer_message(contact.id, 499) is None
        assert await storage.answer_message(contact.id, 1) is None


# ---------------------------------------------------------------- end to end


async def test_a_contact_is_told_the_character_limit_and_keeps_what_was_saved(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        user = h.person(3001)
        await user.send(f"/start {await h.invite('Cork', 'Ireland')}", "Cork")
        contact = await h.contact(3001)
        before, _ = await h.storage.load(contact)
        await h.storage.save(contact, before, before, Session(mode=Mode.ASKING, cursor=WORDY.id), NOW)
        cap = v.char_limit(WORDY.max_words)
        first = "a" * (cap - 10)
        await user.send(first, "Saved (")
        replies = await user.send("b" * 4000, "characters", "kept")
        shown = "\n".join(m.shown_text or "" for m in replies)
        assert f"has {cap - 10 + 2 + 4000} characters" in shown and f"limit is {cap}" in shown
        assert (await h.storage.answers_of(contact.report_id))[WORDY.id] == first
        await user.send("c" * 8, "Saved (")
        assert (await h.storage.answers_of(contact.report_id))[WORDY.id] == first + "\n\n" + "c" * 8
