"""Two contacts of one city racing each other, over many timings (real bot over HTTP, real SQLite).

Invariants, whatever the interleaving: the receipt of a submitted report equals the stored report,
a submitted report changes no more, every answer the bot acknowledged is stored (no append lost),
and a report never holds more files than allowed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.receipt import render_receipt
from bot.storage import ReportChanged
from conversation.i18n import get_translator
from conversation.model import Kind
from conversation.state import Mode, ReportStatus, Session
from tests.fakes.bot_api import BotMessage
from tests.telegram_harness import SURVEY, Harness, Person, running_bot

FIXED = dt.datetime(2021, 11, 1, 12, tzinfo=dt.UTC)
QUESTION = next(q for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.max_words == 400)
# Offsets between the two contacts' actions (seconds; negative: B first): same batch, next batch, ...
OFFSETS = (0.0, 0.0, 0.001, -0.001, 0.003, -0.003, 0.006, -0.006, 0.01, -0.01, 0.02, -0.02, 0.04, -0.04)
REQUIRED = {
    "city_website": "https://www.cork.ie",
    "mayor_name": "Colm Kelleher",
    "mayor_email": "mayor@cork.ie",
    "mayor_gender": "male",
    "contact_name": "Aoife Byrne",
    "contact_email": "aoife@cork.ie",
    "contact_phone": "+353214924000",
    "contact_position": "Learning city coordinator",
    "contact_gender": "female",
}
SUBMITTED = "Your report has been submitted"
READ_ONLY = "can no longer be changed"


async def two_contacts(h: Harness) -> tuple[Person, Person]:
    # Each contact opens a personal link of their own, as the team sends them.
    a, b = h.person(5001), h.person(5002)
    await a.send(f"/start {await h.invite('Cork', 'Ireland', '2015-09')}", "Cork")
    await b.send(f"/start {await h.invite('Cork', 'Ireland', '2015-09')}", "Cork")
    return a, b


async def put(h: Harness, user_id: int, session: Session, answers: dict[str, str] | None = None) -> None:
    """Set a contact's session (and add answers) directly in storage, as a starting position."""
    contact = await h.contact(user_id)
    before, _ = await h.storage.load(contact)
    after = before.model_copy(update={"answers": {**before.answers, **(answers or {})}})
    await h.storage.save(contact, before, after, session, FIXED)


async def both(first: Callable[[], object], second: Callable[[], object], offset: float) -> None:
    """Run two actions `offset` seconds apart (negative: the second one first)."""
    actions = [first, second] if offset >= 0 else [second, first]
    actions[0]()
    if offset:
        await asyncio.sleep(abs(offset))
    actions[1]()


def documents_sent(h: Harness, mark: int) -> list[Any]:
    """The receipts delivered since `mark` (a call refused with 429 is waited out and sent again)."""
    return [r for r in h.api.calls_to("sendDocument", since=mark) if r.ok]


async def expect_any(person: Person, mark: int, *options: str) -> list[BotMessage]:
    """Wait until a reply since `mark` shows one of `options`; return the replies."""

    def arrived() -> list[BotMessage] | None:
        msgs = person.api.messages_since(mark, person.user_id)
        return msgs if any(o in (m.shown_text or "") for m in msgs for o in options) else None

    return await person.api.async_wait_until(arrived, 15)


def shows_button(person: Person, label: str) -> bool:
    messages = person.api.messages(person.user_id)
    return bool(messages) and any(b.get("text") == label for b in messages[-1].buttons())


class Conflicts:
    """Counts the saves refused because the report changed since it was read (the race happened)."""

    def __init__(self, h: Harness) -> None:
        self.count = 0
        original = h.storage.save

        async def save(*args: Any, **kwargs: Any) -> None:
            try:
                await original(*args, **kwargs)
            except ReportChanged:
                self.count += 1
                raise

        h.storage.save = save  # type: ignore[method-assign]


async def test_submit_against_a_change(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=lambda: FIXED) as h:
        conflicts = Conflicts(h)
        a, b = await two_contacts(h)
        await put(h, 5001, Session(mode=Mode.DONE), REQUIRED)
        await put(h, 5002, Session(mode=Mode.ASKING, cursor=QUESTION.id))
        contact = await h.contact(5001)
        for round_, offset in enumerate(OFFSETS):
            await a.send("/submit", "Submit the report")
            await h.api.async_wait_until(lambda: shows_button(a, "Submit now"), 15)
            message, label = a.keyboard_message("Submit now")
            text = f"Round {round_}: a festival of learning in every district."
            mark = h.api.mark()
            await both(
                functools.partial(h.api.press, 5001, message.message_id, button_text=label),
                functools.partial(h.api.send_text, 5002, text),
                offset,
            )
            await a.expect(mark, SUBMITTED)
            replies = await expect_any(b, mark, "Saved (", READ_ONLY)
            await h.api.async_wait_until(functools.partial(documents_sent, h, mark), 15)
            stored, _ = await h.storage.load(contact)
            assert stored.status is ReportStatus.SUBMITTED
            acknowledged = any((m.shown_text or "").startswith("Saved (") for m in replies)
            assert (text in str(stored.answers.get(QUESTION.id, ""))) == acknowledged, (round_, offset)
            (sent,) = [r for r in h.api.calls_to("sendDocument", since=mark) if r.ok]
            city = await h.storage.get_report(contact.report_id)
            assert city is not None
            receipt = render_receipt(SURVEY, city.name, city.country, stored, get_translator("en"), generated_at=FIXED)
            assert sent.files["document"].data == receipt, f"round {round_}: the receipt is not the stored report"
            # The submitted report does not change any more, whatever B sends now.
            await b.send("One more thing after the submission.", READ_ONLY)
            assert (await h.storage.load(contact))[0] == stored
            await h.storage.reopen(contact.report_id, FIXED)
        assert conflicts.count > 0, "the two saves never overlapped: the race was not exercised"


async def test_appends_against_each_other(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        conflicts = Conflicts(h)
        a, b = await two_contacts(h)
        await put(h, 5001, Session(mode=Mode.ADDING_MORE, cursor=QUESTION.id), {QUESTION.id: "Start."})
        await put(h, 5002, Session(mode=Mode.ADDING_MORE, cursor=QUESTION.id))
        contact = await h.contact(5001)
        acknowledged: list[str] = []
        for round_, offset in enumerate(OFFSETS):
            texts = (f"A{round_} wrote this.", f"B{round_} wrote that.")
            mark = h.api.mark()
            await both(
                functools.partial(h.api.send_text, 5001, texts[0]),
                functools.partial(h.api.send_text, 5002, texts[1]),
                offset,
            )
            for person, text in zip((a, b), texts, strict=True):
                replies = await person.expect(mark, "Saved (")
                assert replies
                acknowledged.append(text)
            stored = str((await h.storage.answers_of(contact.report_id))[QUESTION.id])
            parts = stored.split("\n\n")
            for text in acknowledged:
                assert parts.count(text) == 1, f"round {round_} ({offset}): {text!r} lost or doubled"
        assert conflicts.count > 0, "the two saves never overlapped: the race was not exercised"


async def test_the_fifth_file_slot(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        a, b = await two_contacts(h)
        await put(h, 5001, Session(mode=Mode.DONE), REQUIRED)
        await put(h, 5002, Session(mode=Mode.DONE))
        contact = await h.contact(5001)
        limit = SURVEY.uploads.max_files
        for k in range(limit - 1):
            await a.act(
                functools.partial(
                    h.api.send_document, 5001, file_name=f"plan-{k}.pdf", content=f"%PDF plan {k}".encode()
                ),
                "File saved",
            )
        for round_, offset in enumerate(OFFSETS[:8]):
            mark = h.api.mark()
            await both(
                functools.partial(
                    h.api.send_document, 5001, file_name=f"a{round_}.pdf", content=f"%PDF a {round_}".encode()
                ),
                functools.partial(
                    h.api.send_document, 5002, file_name=f"b{round_}.pdf", content=f"%PDF b {round_}".encode()
                ),
                offset,
            )
            ra = await expect_any(a, mark, "File saved", "the maximum")
            rb = await expect_any(b, mark, "File saved", "the maximum")
            saved = [any("File saved" in (m.shown_text or "") for m in r) for r in (ra, rb)]
            files = await h.storage.attachments(contact.report_id)
            assert len(files) == limit and saved.count(True) == 1, (round_, offset, saved, [f.name for f in files])
            winner = files[-1]
            assert winner.name == (f"a{round_}.pdf" if saved[0] else f"b{round_}.pdf")
            await h.storage.remove_attachment(contact.report_id, winner.sha256, now=h.front.service.clock())
