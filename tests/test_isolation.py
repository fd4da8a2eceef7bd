"""Per-chat isolation: one chat's flood, or its 429s, never hold up another contact.

Real bot (python-telegram-bot over HTTP) against the fake Bot API with Telegram's per-chat limit
turned on (one message per second per chat, 429 with retry_after beyond it).
"""

from __future__ import annotations

from pathlib import Path

from bot.telegram.app import ALLOWED_UPDATES, MAX_CHAT_BACKLOG, PerChatSequential
from conversation.model import Kind
from conversation.state import Mode, Session
from tests.telegram_harness import SURVEY, Harness, Person, running_bot

QUESTION = next(q for q in SURVEY.questions if q.kind == Kind.LONG_TEXT and q.max_words == 400)
STRANGER = 4999
NOTICE = "You sent many messages at once"


async def contact_at_long_question(h: Harness, user_id: int, city: str) -> Person:
    """An invited contact, asked a long-text question."""
    person = h.person(user_id)
    await person.send(f"/start {await h.invite(city, 'Ireland')}", city)
    contact = await h.contact(user_id)
    before, _ = await h.storage.load(contact)
    await h.storage.save(
        contact, before, before, Session(mode=Mode.ASKING, cursor=QUESTION.id), h.front.service.clock()
    )
    return person


def processor(h: Harness) -> PerChatSequential:
    found = h.app.update_processor
    assert isinstance(found, PerChatSequential)
    return found


async def idle(h: Harness) -> None:
    """Wait until no chat has an update waiting or running."""
    await h.api.async_wait_until(lambda: not processor(h)._waiting, 60)


async def test_a_strangers_flood_gets_one_reply_and_stalls_nobody(tmp_path: Path) -> None:
    async with running_bot(tmp_path, allowed_updates=ALLOWED_UPDATES) as h:
        h.api.rate_limit_per_chat_per_second = 1
        a = await contact_at_long_question(h, 4001, "Cork")
        for k in range(300):
            h.api.send_text(STRANGER, f"hello {k}")
        # The contact's answer is handled while the stranger's updates are still arriving.
        await a.send("Our first learning festival took place in May.", "Saved (")
        await idle(h)
        to_stranger = [r for r in h.api.calls_to("sendMessage") if r.int_param("chat_id") == STRANGER]
        assert len(to_stranger) == 1 and "invitation" in str(to_stranger[0].params["text"])
        assert processor(h).dropped > 0  # beyond its backlog, a chat's updates are not even looked at


async def test_a_contact_flooding_its_own_chat_is_capped_and_told_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        h.api.rate_limit_per_chat_per_second = 1  # each of F's replies waits for its own chat's 429s
        a = await contact_at_long_question(h, 4001, "Cork")
        f = await contact_at_long_question(h, 4002, "Limerick")
        mark = h.api.mark()
        texts = [f"line {k} of a pasted text" for k in range(60)]
        for text in texts:
            h.api.send_text(4002, text)
        # F's chat is paused by its 429s for seconds; A is not.
        await a.send("Our first learning festival took place in May.", "Saved (")
        assert processor(h)._waiting.get(4002, 0) > 0, "F's backlog should still be draining while A is answered"
        await f.expect(mark, NOTICE, timeout=60)
        await idle(h)
        contact = await h.contact(4002)
        stored = str((await h.storage.answers_of(contact.report_id))[QUESTION.id]).split("\n\n")
        to_f = [m.shown_text or "" for m in h.api.messages_since(mark, 4002)]
        saved = sum(text.startswith("Saved (") for text in to_f)
        # The first ones, in order, each acknowledged: at least a full backlog (more only if an early
        # one finished before the rest of the flood was fetched), far from all 60.
        assert stored == texts[: len(stored)] and saved == len(stored)
        assert MAX_CHAT_BACKLOG <= len(stored) < len(texts) // 2
        assert sum(NOTICE in text for text in to_f) == 1
        assert h.api.stats["rate_limited"] > 0  # the per-chat limit was really hit


async def test_only_the_handled_update_types_are_asked_for(tmp_path: Path) -> None:
    async with running_bot(tmp_path, allowed_updates=ALLOWED_UPDATES) as h:
        asked = {str(r.params.get("allowed_updates")) for r in h.api.calls_to("getUpdates")}
        assert asked and all(value == str(ALLOWED_UPDATES) for value in asked), asked
        handled = {"message", "edited_message", "callback_query", "my_chat_member"}
        assert set(ALLOWED_UPDATES) == handled
