"""Durable polling: an update fetched by a bot that dies before handling it is handled after restart."""

from __future__ import annotations

import asyncio
import json

from bot.service import utc_now
from bot.storage import Storage
from bot.telegram import inbox
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import running_bot


async def test_update_kept_in_inbox_is_handled_after_restart(tmp_path):
    with FakeBotAPI() as api:
        async with running_bot(tmp_path, api=api) as h:
            user = h.person(3001)
            await user.send(f"/start {await h.invite()}", "This report is for")
            await user.press("Begin", "Official city website address")
        # As if a bot had fetched this message (and confirmed it to Telegram) and died before handling it.
        update = {
            "update_id": 999_999,
            "message": {
                "message_id": 500,
                "date": 1_700_000_000,
                "chat": {"id": 3001, "type": "private", "first_name": "Ana"},
                "from": {"id": 3001, "is_bot": False, "first_name": "Ana"},
                "text": "www.inbox-replay.example.org",
            },
        }
        storage = await Storage.open(tmp_path / "gnlc.sqlite3")
        await storage.inbox_add([(999_999, json.dumps(update))], utc_now())
        await storage.close()
        mark = api.mark()
        async with running_bot(tmp_path, api=api) as h2:
            person = h2.person(3001)
            await person.expect(mark, "Date of joining the UNESCO GNLC")
            assert await person.answered("city_website") == "https://www.inbox-replay.example.org"
            # Finished updates leave the inbox with the next batch, or within FORGET_AFTER seconds.
            for _ in range(50):
                if await h2.storage.inbox_pending() == []:
                    break
                await asyncio.sleep(0.05)
            assert await h2.storage.inbox_pending() == []


async def test_redelivered_update_already_saved_is_not_applied_twice(tmp_path):
    with FakeBotAPI() as api:
        async with running_bot(tmp_path, api=api) as h:
            user = h.person(3002)
            await user.send(f"/start {await h.invite()}", "This report is for")
            await user.press("Begin", "Official city website address")
            await user.send("www.first.example.org", "Date of joining")
            contact = await h.contact(3002)
            answered_update = max(u["update_id"] for u in api.updates_sent())
        # The bot saved that answer but died before confirming it: it is in the inbox again.
        storage = await Storage.open(tmp_path / "gnlc.sqlite3")
        replay = next(u for u in api.updates_sent() if u["update_id"] == answered_update)
        await storage.inbox_add([(answered_update, json.dumps(replay))], utc_now())
        assert await storage.handled([answered_update]) == {answered_update}
        await storage.close()
        mark = api.mark()
        async with running_bot(tmp_path, api=api) as h2:
            person = h2.person(3002)
            await person.expect(mark, "Date of joining the UNESCO GNLC")  # shown where they are
            await person.send("03/2016", "Mayor: name")
            answers = await h2.storage.answers_of(contact.report_id)
            assert answers["city_website"] == "https://www.first.example.org"
            assert answers["joined_gnlc"] == "2016-03"  # not the website text applied to the next question


async def test_finished_updates_leave_the_inbox_with_the_next_batch(tmp_path, monkeypatch):
    # With the timer out of the way, only the next batch's transaction (or stopping) can forget them.
    monkeypatch.setattr(inbox, "FORGET_AFTER", 3600.0)
    with FakeBotAPI() as api:
        async with running_bot(tmp_path, api=api) as h:
            user = h.person(3003)
            await user.send(f"/start {await h.invite()}", "This report is for")
            await user.press("Begin", "Official city website address")
            await user.send("www.kept.example.org", "Date of joining")
            answer_id = max(u["update_id"] for u in api.updates_sent())
            assert answer_id in [i for i, _ in await h.storage.inbox_pending()]  # finished, not yet forgotten
            await user.send("03/2016", "Mayor: name")
            # The answer's handler finished before the next one started (one chat runs in order), so
            # the batch after that one forgets it in the transaction that keeps it.
            await user.send("Ana Example", "Mayor: e-mail")
            pending = [i for i, _ in await h.storage.inbox_pending()]
            assert answer_id not in pending
            assert pending and max(pending) == max(u["update_id"] for u in api.updates_sent())
        storage = await Storage.open(tmp_path / "gnlc.sqlite3")
        try:
            assert await storage.inbox_pending() == []  # stopping forgets the rest
        finally:
            await storage.close()
