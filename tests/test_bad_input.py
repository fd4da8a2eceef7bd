"""A table of bad inputs sent to the real bot (over HTTP, against the fake Bot API).

One bot runs for the whole module, with an invited contact in English (Hamburg) and one in
French (Lyon) who have answered a few questions.  Every row of `CASES` puts its contact at a
question (`/edit q:<id>`), records the stored answers, sends something a contact can send but
the questionnaire cannot use, and then checks:

- the reply: a substring of the polite, localized text (or silence);
- no crash: nothing was logged at ERROR, every sendMessage was accepted by the (strict) fake,
  and the bot still answers `/help` in order;
- the stored answers are unchanged (or changed exactly as the row says, for text that is a
  legitimate answer however odd it looks).

The last part runs `python -m bot status` over every broken questionnaire of
`tests/broken_surveys/`: exit code 2 and one clear line naming the question.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from telegram import Update

from conversation.i18n import get_translator
from conversation.model import Kind
from conversation.state import ReportStatus
from conversation.validation import count_words
from tests.fakes.bot_api import BotMessage, FakeBotAPI
from tests.telegram_harness import SURVEY, TIMEOUT, Harness, Person, running_bot
from tests.test_loader import BROKEN_CASES

EN_USER, FR_USER, STRANGER = 7001, 7002, 7003
BOT_USERNAME = "gnlc_test_bot"
BROKEN = Path(__file__).parent / "broken_surveys"
ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- the running bot


def production_like_bot(data_dir: Path) -> contextlib.AbstractAsyncContextManager[Harness]:
    """`tests.telegram_harness.running_bot`, polling for every update type as `run_bot` does.

    The harness asks only for messages, edits, callbacks and chat-member updates, so a channel
    post would be dropped by the fake before reaching the bot; production asks for all of them.
    """
    # Per-chat flood control off: one bot runs every row of the table in the same two chats, a few
    # hundred messages within seconds, which at Telegram's ~1 message/s per chat would take minutes.
    # The pace inside a chat is exercised in tests/test_telegram_e2e.py.
    return running_bot(
        data_dir, allowed_updates=list(Update.ALL_TYPES), api_settings={"rate_limit_per_chat_per_second": None}
    )


@dataclasses.dataclass
class World:
    """The running bot, its contacts, and messages worth replaying later."""

    h: Harness
    people: dict[int, Person]
    report_ids: dict[int, int]
    intro_message: int  # the English contact's welcome, with its (since removed) "Begin" button
    strategy_message: int  # the yes/no question answered "Yes" by button, keyboard since removed


def question_text(question_id: str, language: str) -> str:
    q = SURVEY.question(question_id)
    assert q is not None
    return get_translator(language).gettext(q.text)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with production_like_bot(tmp_path_factory.mktemp("bad-input")) as h:
        en, fr = h.person(EN_USER), h.person(FR_USER, "fr")
        intro = await en.send(f"/start {await h.invite('Hamburg', 'Germany')}", "This report is for Hamburg")
        await en.press("Begin", question_text("city_website", "en"))
        await en.send("www.hamburg.de", question_text("joined_gnlc", "en"))
        await en.send("03/2016", question_text("mayor_name", "en"))
        await en.send("Anna Schmidt", question_text("mayor_email", "en"))
        await en.send("anna@hamburg.de", question_text("mayor_gender", "en"))
        await en.send("/edit q:strategy_adopted", question_text("strategy_adopted", "en"))
        strategy, _ = en.keyboard_message("Yes")
        await en.press("Yes", question_text("strategy_adoption_date", "en"))

        await fr.send(f"/start {await h.invite('Lyon', 'France')}", "Lyon")
        await fr.press("Commencer", question_text("city_website", "fr"))
        await fr.send("www.lyon.fr", question_text("joined_gnlc", "fr"))
        await fr.send("mars 2014", question_text("mayor_name", "fr"))

        report_ids = {user: (await h.contact(user)).report_id for user in (EN_USER, FR_USER)}
        answers = await h.storage.answers_of(report_ids[EN_USER])
        assert answers["strategy_adopted"] == "yes" and answers["mayor_email"] == "anna@hamburg.de"
        h.api.add_user(STRANGER)
        yield World(
            h,
            {EN_USER: en, FR_USER: fr, STRANGER: h.person(STRANGER)},
            report_ids,
            intro[0].message_id,
            strategy.message_id,
        )


# ---------------------------------------------------------------- building blocks of the table


Text = Callable[[str], str]  # language -> expected text


def L(msgid: str, **params: object) -> Text:
    """A bot string as the contact reads it in their language."""
    return lambda language: get_translator(language).t(msgid, **params)


def N(singular: str, plural: str, count: int, **params: object) -> Text:
    """A bot string with plural forms, as the contact reads it."""
    return lambda language: get_translator(language).n(singular, plural, count, **params)


def lit(text: str) -> Text:
    """Text that is the same in every language (what the contact typed, echoed back)."""
    return lambda _language: text


UNSUPPORTED = L("I cannot use this kind of message here. Please send text, a button choice or a file.")
EMPTY = L("The answer is empty. Please type your answer.")
INACTIVE = L("That button is no longer active.")
PRIVATE_ONLY = L("This bot works only in private chats. Please write to it directly.")
UNKNOWN_COMMAND = L("I do not know that command. /help lists what I understand.")
HELP = L("Answer each question by typing or by pressing a button. Your answers are saved as you go.")
UNINVITED = L(
    "This bot collects the Biennial Progress Reports of UNESCO Global Network of Learning Cities members. "
    "It works with a personal invitation link sent to each city's contact person. "
    "If you are one and have no link, please write to {email}.",
    email=SURVEY.contact_email,
)
LINK_NOT_VALID = L(
    "This invitation link is not valid (it may have been replaced or withdrawn). "
    "Please ask the UNESCO GNLC Coordination Team for a new one: {email}",
    email=SURVEY.contact_email,
)
SOMETHING_WENT_WRONG = "Something went wrong on our side. Your saved answers are safe; please try again."
SILENCE = None


@dataclasses.dataclass
class Ctx:
    """What an action can use: the world, who acts, and the question message on screen."""

    w: World
    user: int
    asked: int | None  # message id of the question shown by `/edit q:<at>`
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def api(self) -> FakeBotAPI:
        return self.w.h.api


Action = Callable[[Ctx], object]  # may return an awaitable; a callback query id for `answer` rows


@dataclasses.dataclass(frozen=True)
class Case:
    """One row: position, action, what the contact should read, what may be stored."""

    id: str
    act: Action
    expect: Text | tuple[Text | None, ...] | None  # None: silence; a tuple: any of these
    at: str = "contact_position"
    who: int = EN_USER
    stores: dict[str, object] = dataclasses.field(default_factory=dict)
    answer: Text | None = None  # the callback query's answer text (rows that press a button)
    chat: int | None = None  # where the reply is expected, when not the contact's private chat
    wait_call: str | None = None  # an API call (to `chat`) to wait for: updates of other chats are not ordered
    setup: Callable[[Ctx], Awaitable[None]] | None = None
    check: Callable[[Ctx], Awaitable[None]] | None = None
    item_helps: int = 0  # help texts the item itself produces


_raw_ids = itertools.count(900_001)


def user_json(api: FakeBotAPI, user_id: int) -> dict[str, Any]:
    return api.add_user(user_id)  # registers nothing new for a known user; returns the User object


def private_chat(api: FakeBotAPI, user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": user_json(api, user_id)["first_name"]}


def raw_message(c: Ctx, content: dict[str, Any], *, kind: str = "message", sender: bool = True) -> dict[str, Any]:
    """Enqueue a hand-built update of the contact's private chat (kinds the fake has no helper for)."""
    message: dict[str, Any] = {
        "message_id": next(_raw_ids),
        "chat": private_chat(c.api, c.user),
        "date": int(time.time()),
        **content,
    }
    if sender:
        message["from"] = user_json(c.api, c.user)
    return c.api.add_raw_update({kind: message})


def text(value: str) -> Action:
    return lambda c: c.api.send_text(c.user, value)


def press(data: str | None, *, on: str = "asked") -> Action:
    """Press (force) `data` on the question on screen, the old welcome or the old yes/no question."""

    def act(c: Ctx) -> str:
        message = {"asked": c.asked, "intro": c.w.intro_message, "strategy": c.w.strategy_message}[on]
        assert message is not None
        return c.api.press(c.user, message, data, force=True)

    return act


def random_payload(seed: int, alphabet: str, size: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(size))


GARBAGE_ASCII = random_payload(1, "".join(map(chr, range(33, 127))), 64)
GARBAGE_UNICODE = random_payload(2, "éàü€中文🙂ä:a_", 16)
CONTROL_BYTES = "".join(map(chr, range(1, 32))) + "\x7f"


def random_payloads(count: int) -> list[str]:
    """Seeded random payloads of 1 to 64 UTF-8 bytes, some shaped like ours ("a:…", "c:…")."""
    rng = random.Random(64)
    alphabet = "".join(map(chr, range(32, 127))) + "é€中🙂\u200b\u202e"
    found: list[str] = []
    while len(found) < count:
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        payload = rng.choice(("", "a:", "c:", "c:edit:q:", "a:core_team:")) + body
        if len(payload.encode()) <= 64:
            found.append(payload)
    return found


async def fill_files(c: Ctx, count: int) -> None:
    """Make the report hold exactly `count` attachments."""
    storage, report_id = c.w.h.storage, c.w.report_ids[c.user]
    attached = await storage.attachments(report_id)
    for a in attached[count:]:
        await storage.remove_attachment(report_id, a.sha256, now=c.w.h.front.service.clock())
    person = c.w.people[c.user]
    for i in range(len(attached), count):
        name = f"filler-{i}-{next(_raw_ids)}.pdf"
        send = functools.partial(c.api.send_document, c.user, file_name=name, content=name.encode())
        await person.act(send, name)  # the file name is in the reply whatever the language


async def room_for_a_file(c: Ctx) -> None:
    await fill_files(c, min(len(await c.w.h.storage.attachments(c.w.report_ids[c.user])), 3))


CAPTION_KEPT = L(
    "Its caption is kept as the file's description. To answer the question, send your answer as a message."
)


def caption_kept(caption: str) -> Callable[[Ctx], Awaitable[None]]:
    """The newest file of the report carries the caption, exactly as written, as its description."""

    async def check(c: Ctx) -> None:
        files = await c.w.h.storage.attachments(c.w.report_ids[c.user])
        assert files and files[-1].caption == caption
        await c.w.people[c.user].send("/files", f"{files[-1].name} ")  # listed with its description:
        listing = c.api.messages(c.user)[-1].shown_text or ""
        assert f"— {caption}" in listing

    return check


async def shows_literally(c: Ctx, question_id: str) -> None:
    """The stored answer is shown back exactly as typed (escaped HTML, not parsed)."""
    stored = (await c.w.h.storage.answers_of(c.w.report_ids[c.user]))[question_id]
    assert isinstance(stored, str)
    await c.w.people[c.user].send(f"/edit q:{question_id}", "Current answer: " + stored)


def stored_literally(question_id: str) -> Callable[[Ctx], Awaitable[None]]:
    async def check(c: Ctx) -> None:
        await shows_literally(c, question_id)

    return check


# -- rows that need a little preparation


async def send_command_to_edit_later(c: Ctx) -> None:
    person = c.w.people[c.user]
    mark = c.api.mark()
    c.data["message"] = c.api.send_text(c.user, "/progress")["message_id"]
    await person.expect(mark, "questions answered")


async def revoked_token(c: Ctx) -> None:
    token = await c.w.h.invite("Porto", "Portugal")
    assert await c.w.h.storage.revoke_invitation(token, now=c.w.h.front.service.clock())
    c.data["token"] = token


async def still_hamburg(c: Ctx) -> None:
    contact = await c.w.h.contact(c.user)
    assert contact.report_id == c.w.report_ids[c.user]


async def stranger_has_a_message(c: Ctx) -> None:
    # A forged link is always answered (plain messages of strangers only once per few minutes).
    await c.w.people[STRANGER].send(f"/start {FORGED_TOKEN}", "not valid")
    last = c.api.last_message(STRANGER)
    assert last is not None
    c.data["message"] = last.message_id


async def stranger_not_bound(c: Ctx) -> None:
    assert await c.w.h.storage.contact_by_telegram_user(STRANGER) is None


async def five_files(c: Ctx) -> None:
    await fill_files(c, 5)


async def not_submitted(c: Ctx) -> None:
    city = await c.w.h.storage.get_report(c.w.report_ids[c.user])
    assert city is not None and city.status == ReportStatus.OPEN


async def nothing_downloaded(c: Ctx) -> None:
    """A file refused by its declared size is never fetched."""
    assert not c.api.calls_to("getFile", since=c.data["mark"])


def group_text(chat_id: int, chat_type: str) -> Action:
    return lambda c: c.api.send_text(c.user, "Head of Unit", chat_type=chat_type, chat_id=chat_id)


def channel_post(c: Ctx) -> object:
    chat = c.api.add_chat(-1003000003, chat_type="channel", title="City news")
    return c.api.add_raw_update(
        {"channel_post": {"message_id": 7, "sender_chat": chat, "chat": chat, "date": int(time.time()), "text": "hi"}}
    )


def group_message_without_sender(c: Ctx) -> object:
    group = c.api.add_chat(-1002000004, chat_type="supergroup", title="Learning city team")
    channel = {"id": -1003000005, "type": "channel", "title": "Linked channel"}
    message = {"message_id": 3, "sender_chat": channel, "chat": group, "date": int(time.time()), "text": "/help"}
    return c.api.add_raw_update({"message": message})


FORWARD_FROM_USER = {
    "type": "user",
    "date": 1_600_000_000,
    "sender_user": {"id": 4242, "is_bot": False, "first_name": "Bo"},
}
FORWARD_FROM_CHANNEL = {
    "type": "channel",
    "date": 1_600_000_000,
    "chat": {"id": -1001234, "type": "channel", "title": "City news"},
    "message_id": 55,
}
HTML_LIKE = '<b>Bold?</b> & <i>x</i> &amp; &lt;tag&gt; <a href="https://x.org">link</a> <script>alert(1)</script> a<b'
MARKDOWN_LIKE = "*bold* _x_ [a](b) `code` ```pre``` ~strike~ ||spoiler|| \\*escaped\\* # heading > quote"
RTL = "مديرة قسم التعلّم مدى الحياة"
BIDI = "Plan \u202eevil\u202c and \u2067עברית\u2069 1234 \u200fok\u200e done"
ZERO_WIDTH_INSIDE = "learn\u200bing ci\u200dties\u2060 grow"
EMOJI = "👩\u200d👩\u200d👧\u200d👦 families 🇩🇪🇫🇷 learn 👍🏽 together 🏳\ufe0f\u200d🌈 🧑🏿\u200d🦱"
LONG_4096 = ("learning " * 456)[:4096]
FORGED_TOKEN = "forgedtokenforgedtokenforgedtokenforgedtok"


CASES: list[Case] = [
    # -- message kinds the questionnaire cannot use
    Case("sticker", lambda c: c.api.send_sticker(c.user), UNSUPPORTED),
    Case("sticker-fr", lambda c: c.api.send_sticker(c.user), UNSUPPORTED, who=FR_USER),
    Case("voice", lambda c: c.api.send_voice(c.user), UNSUPPORTED),
    Case(
        "video-note",
        lambda c: raw_message(
            c,
            {"video_note": {"file_id": "DQACAgIAAxk", "file_unique_id": "AgADvn", "length": 240, "duration": 4}},
        ),
        UNSUPPORTED,
    ),
    Case("location", lambda c: c.api.send_location(c.user), UNSUPPORTED),
    Case("location-fr", lambda c: c.api.send_location(c.user), UNSUPPORTED, who=FR_USER),
    Case(
        "venue",
        lambda c: raw_message(
            c,
            {
                "location": {"latitude": 53.55, "longitude": 9.99},
                "venue": {
                    "location": {"latitude": 53.55, "longitude": 9.99},
                    "title": "Rathaus",
                    "address": "Rathausmarkt 1",
                },
            },
        ),
        UNSUPPORTED,
    ),
    Case("poll", lambda c: c.api.send_poll(c.user), UNSUPPORTED),
    Case("dice", lambda c: raw_message(c, {"dice": {"emoji": "🎲", "value": 4}}), UNSUPPORTED),
    # -- contact cards
    Case(
        "someone-elses-contact-at-text-question",
        lambda c: c.api.send_contact(c.user, "+4940123456", 555),
        L("A contact card is only needed for the phone question."),
    ),
    Case(
        "someone-elses-contact-at-phone-question",
        lambda c: c.api.send_contact(c.user, "+4940428231234", 555),
        L("This is someone else's contact card. Please type the number or share your own."),
        at="contact_phone",
    ),
    Case(
        "phonebook-contact-without-user-at-phone-question",
        lambda c: c.api.send_contact(c.user, "+4940428231234"),
        L("This is someone else's contact card. Please type the number or share your own."),
        at="contact_phone",
    ),
    Case(
        "someone-elses-contact-fr",
        lambda c: c.api.send_contact(c.user, "+33472101010", 556),
        L("This is someone else's contact card. Please type the number or share your own."),
        at="contact_phone",
        who=FR_USER,
    ),
    # -- forwarded messages: read like typed text, so what does not fit the question is refused
    Case(
        "forwarded-text-at-email-question",
        lambda c: raw_message(c, {"text": "Meeting moved to Friday", "forward_origin": FORWARD_FROM_USER}),
        L("That does not look like an e-mail address. Please check it, for example name@city.org."),
        at="contact_email",
    ),
    Case(
        "forwarded-channel-post-at-month-question",
        lambda c: raw_message(c, {"text": "Read our news!", "forward_origin": FORWARD_FROM_CHANNEL}),
        L("I could not read that date. Please give the month and year, for example 03/2019."),
        at="strategy_adoption_date",
    ),
    # -- captions: the file is kept with its caption as description; the caption is not taken as the answer
    Case(
        "photo-with-caption-at-text-question",
        lambda c: c.api.send_photo(c.user, content=b"\xff\xd8caption-photo\xff\xd9", caption="Head of Unit"),
        CAPTION_KEPT,
        setup=room_for_a_file,
        check=caption_kept("Head of Unit"),
    ),
    Case(
        "document-with-caption-at-long-text-question",
        lambda c: c.api.send_document(
            c.user, file_name="notes.pdf", content=b"%PDF captioned", caption="<b>Our answer</b> is attached"
        ),
        CAPTION_KEPT,
        at="initiative_1",
        setup=room_for_a_file,
        check=caption_kept("<b>Our answer</b> is attached"),
    ),
    # -- empty-looking texts (Telegram refuses messages of only spaces; see test_fake_refuses_blank_text)
    Case("no-break-spaces", text("\u00a0\u00a0 \u00a0"), EMPTY),
    Case("ideographic-space", text("\u3000"), EMPTY),
    Case("zero-width-only", text("\u200b\u200c\u200d\u2060\ufeff"), EMPTY),
    Case("zero-width-only-long-text", text("\u200b\u200b"), EMPTY, at="initiative_1"),
    Case("zero-width-only-fr", text("\u200b"), EMPTY, who=FR_USER),
    Case("hangul-filler-only", text("\u3164"), EMPTY),
    Case("empty-text-raw-update", lambda c: raw_message(c, {"text": ""}), EMPTY),
    # -- a full-length message where a short answer is expected
    Case(
        "4096-characters-at-short-text",
        text(LONG_4096),
        L("That answer is too long for this question. Please shorten it."),
    ),
    Case(
        "4096-characters-at-name",
        text(LONG_4096),
        L("Please type a name (letters, not a link or an e-mail address)."),
        at="mayor_name",
    ),
    Case(
        "4096-characters-at-website",
        text("www." + "a" * 4088 + ".org"),
        L("That does not look like a web address. Please check it, for example www.city.org."),
        at="city_website",
    ),
    # -- text that looks like markup: stored exactly, shown back literally
    Case(
        "html-like-long-text",
        text(HTML_LIKE),
        L("Saved ({count} words of {limit}).", count=count_words(HTML_LIKE), limit=400),
        at="initiative_1",
        stores={"initiative_1": HTML_LIKE},
        check=stored_literally("initiative_1"),
    ),
    Case(
        "markdown-like-long-text",
        text(MARKDOWN_LIKE),
        lit("Saved ("),
        at="initiative_2",
        stores={"initiative_2": MARKDOWN_LIKE},
        check=stored_literally("initiative_2"),
    ),
    Case(
        "html-like-short-text",
        text("<b>Head</b> & <i>Unit</i>"),
        lit(question_text("contact_gender", "en")),
        stores={"contact_position": "<b>Head</b> & <i>Unit</i>"},
        check=stored_literally("contact_position"),
    ),
    # -- right-to-left, bidi controls, zero-width joiners, emoji sequences
    Case(
        "right-to-left-short-text",
        text(RTL),
        lit(question_text("contact_gender", "en")),
        stores={"contact_position": RTL},
        check=stored_literally("contact_position"),
    ),
    Case(
        "bidi-controls-long-text",
        text(BIDI),
        lit("Saved ("),
        at="learning_formats",
        stores={"learning_formats": BIDI},
        check=stored_literally("learning_formats"),
    ),
    Case(
        "zero-width-inside-words",
        text(ZERO_WIDTH_INSIDE),
        L("Saved ({count} words of {limit}).", count=5, limit=250),
        at="decent_work",
        stores={"decent_work": ZERO_WIDTH_INSIDE},
        check=stored_literally("decent_work"),
    ),
    Case(
        "emoji-sequences-long-text",
        text(EMOJI),
        L("Saved ({count} words of {limit}).", count=3, limit=250),
        at="equity_inclusion",
        stores={"equity_inclusion": EMOJI},
        check=stored_literally("equity_inclusion"),
    ),
    Case(
        "emoji-only-at-name",
        text("👩\u200d👩\u200d👧\u200d👦🇩🇪👍🏽"),
        L("Please type a name (letters, not a link or an e-mail address)."),
        at="contact_name",
    ),
    Case(
        "emoji-at-yes-no",
        text("👍🏽"),
        L("That is not one of the options. Please press a button or type one of the options."),
        at="strategy_adopted",
    ),
    Case(
        "emoji-at-phone",
        text("📞 ☎️"),
        L("That phone number is not valid. Please check it."),
        at="contact_phone",
    ),
    # -- forged and replayed button payloads
    Case("callback-garbage-64-bytes", press(GARBAGE_ASCII), SILENCE, answer=INACTIVE),
    Case("callback-unicode-64-bytes", press(GARBAGE_UNICODE), SILENCE, answer=INACTIVE),
    Case("callback-control-characters", press(CONTROL_BYTES), SILENCE, answer=INACTIVE),
    Case("callback-over-64-bytes", press("a:mayor_gender:" + "f" * 60), SILENCE, answer=INACTIVE),
    Case("callback-unknown-command", press("c:drop_tables"), SILENCE, answer=INACTIVE),
    *(
        Case(f"callback-random-{i}", press(payload), SILENCE, answer=INACTIVE)
        for i, payload in enumerate(random_payloads(6))
    ),
    Case("callback-other-question", press("a:mayor_gender:female"), SILENCE, answer=INACTIVE),
    Case("callback-choice-for-text-question", press("a:contact_position:yes"), SILENCE, answer=INACTIVE),
    Case("callback-unknown-choice", press("a:strategy_adopted:maybe"), SILENCE, answer=INACTIVE, at="strategy_adopted"),
    Case("callback-unknown-question", press("c:edit:q:no_such_question"), SILENCE, answer=INACTIVE),
    Case("callback-unknown-section", press("c:edit:s:no_such_section"), SILENCE, answer=INACTIVE),
    Case("callback-remove-unknown-file", press("c:remove_file:00000000"), SILENCE, answer=INACTIVE),
    Case(
        "callback-confirm-submit-without-asking",
        press("c:confirm_submit"),
        SILENCE,
        answer=INACTIVE,
        check=not_submitted,
    ),
    Case(
        "callback-edit-inapplicable-question",
        press("c:edit:q:core_team_why_not"),
        L("That question does not apply given your earlier answers."),
    ),
    Case("callback-unknown-language", press("c:set_language:xx"), L("Choose your language:")),
    # Skipping a required question (only the city information is, and these contacts have answered it)
    # is refused in tests/scenarios/branch_flip_and_navigation.yaml and tests/test_engine.py.
    Case("callback-without-data", press(None), SILENCE, answer=INACTIVE),
    Case("callback-without-data-fr", press(None), SILENCE, answer=INACTIVE, who=FR_USER),
    Case("callback-forged-fr", press("a:mayor_gender:\x00"), SILENCE, answer=INACTIVE, who=FR_USER),
    Case(
        "replayed-old-answer-button",
        press("a:strategy_adopted:no", on="strategy"),
        SILENCE,
        answer=INACTIVE,
    ),
    Case(
        "replayed-old-begin-button",
        press("c:begin", on="intro"),
        lit(question_text("contact_position", "en")),
    ),
    Case(
        "stranger-presses-forged-button",
        lambda c: c.api.press(STRANGER, c.data["message"], "a:strategy_adopted:no", force=True),
        SILENCE,
        answer=INACTIVE,
        setup=stranger_has_a_message,
        who=STRANGER,
        at="",
    ),
    # -- deep links
    Case("forged-deep-link", text(f"/start {FORGED_TOKEN}"), LINK_NOT_VALID, check=still_hamburg),
    Case("forged-deep-link-fr", text(f"/start {FORGED_TOKEN}"), LINK_NOT_VALID, who=FR_USER),
    Case("deep-link-with-markup", text("/start <b>x</b>&amp;"), LINK_NOT_VALID, check=still_hamburg),
    Case("deep-link-far-too-long", text("/start " + "A" * 3000), LINK_NOT_VALID, check=still_hamburg),
    Case(
        "revoked-deep-link",
        lambda c: c.api.send_text(c.user, f"/start {c.data['token']}"),
        LINK_NOT_VALID,
        setup=revoked_token,
        check=still_hamburg,
    ),
    Case(
        "stranger-with-revoked-deep-link",
        lambda c: c.api.send_text(c.user, f"/start {c.data['token']}"),
        LINK_NOT_VALID,
        setup=revoked_token,
        check=stranger_not_bound,
        who=STRANGER,
        at="",
        item_helps=1,  # the refusal is the probe's text too
    ),
    # -- files over the limits
    Case(
        "declared-50-mb-document",
        lambda c: c.api.send_document(c.user, file_name="film.mp4", file_size=50 * 1024 * 1024, content=b"0" * 64),
        L(
            "This file is {size}; the limit is {limit}. For larger files, please write to {email}.",
            size="50 MiB",
            limit="10 MiB",
            email=SURVEY.contact_email,
        ),
        check=nothing_downloaded,
    ),
    Case(
        "declared-50-mb-photo",
        lambda c: c.api.send_photo(c.user, file_size=50 * 1024 * 1024),
        lit("the limit is 10 MiB"),
        at="supporting_files",
        check=nothing_downloaded,
    ),
    Case(
        "document-without-declared-size",
        lambda c: raw_message(
            c,
            {
                "document": {
                    "file_id": c.api.add_file(b"%PDF small", file_name="nosize.pdf")[0],
                    "file_unique_id": "AgADnosize",
                    "file_name": "nosize.pdf",
                    "mime_type": "application/pdf",
                }
            },
        ),
        lit("File saved: nosize.pdf"),
        setup=room_for_a_file,
    ),
    Case(
        "sixth-file",
        lambda c: c.api.send_document(c.user, file_name="sixth.pdf", content=b"sixth file"),
        lit("You have already sent 5 files, the maximum."),
        setup=five_files,
        check=nothing_downloaded,
    ),
    Case(
        "sixth-file-fr",
        lambda c: c.api.send_document(c.user, file_name="sixième.pdf", content=b"sixieme"),
        N("You have already sent {count} file, the maximum.", "You have already sent {count} files, the maximum.", 5),
        setup=five_files,
        who=FR_USER,
    ),
    # -- groups and channels
    Case(
        "text-in-group",
        group_text(-4001, "group"),
        PRIVATE_ONLY,
        chat=-4001,
        wait_call="leaveChat",
    ),
    Case(
        "text-in-supergroup",
        group_text(-1004002, "supergroup"),
        PRIVATE_ONLY,
        chat=-1004002,
        wait_call="leaveChat",
    ),
    Case(
        "command-in-group-fr",
        lambda c: c.api.send_text(c.user, "/help@gnlc_test_bot", chat_type="group", chat_id=-4003),
        PRIVATE_ONLY,
        chat=-4003,
        wait_call="leaveChat",
        who=FR_USER,
    ),
    Case(
        "sticker-in-group",
        lambda c: c.api.send_sticker(c.user, chat_type="group", chat_id=-4004),
        PRIVATE_ONLY,
        chat=-4004,
        wait_call="leaveChat",
    ),
    Case(
        "bot-added-to-group",
        lambda c: c.api.add_bot_to_group(-4005, by_user_id=c.user),
        PRIVATE_ONLY,
        chat=-4005,
        wait_call="leaveChat",
    ),
    Case("channel-post", channel_post, SILENCE, chat=-1003000003, wait_call="leaveChat"),
    Case(
        "group-message-without-from",
        group_message_without_sender,
        PRIVATE_ONLY,
        chat=-1002000004,
        wait_call="leaveChat",
    ),
    # -- edits that carry no answer, messages without a sender
    Case(
        "edited-command",
        lambda c: c.api.edit_text(c.user, c.data["message"], "Head of Unit"),
        SILENCE,
        setup=send_command_to_edit_later,
    ),
    Case(
        "edited-sticker-without-text",
        lambda c: raw_message(
            c,
            {
                "edit_date": int(time.time()),
                "sticker": {
                    "file_id": "CAACAgIAAxk",
                    "file_unique_id": "AgADst",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                },
            },
            kind="edited_message",
        ),
        SILENCE,
    ),
    Case(
        "edited-message-never-seen",
        lambda c: raw_message(c, {"edit_date": int(time.time()), "text": "Head of Unit"}, kind="edited_message"),
        SILENCE,
    ),
    Case(
        "message-without-from",
        lambda c: raw_message(c, {"text": "Head of Unit"}, sender=False),
        SILENCE,
    ),
    # -- commands addressed to a bot
    Case("help-with-bot-username", text("/help@gnlc_test_bot"), HELP, item_helps=1),
    Case("help-with-bot-username-upper-case", text("/HELP@GNLC_TEST_BOT"), HELP, item_helps=1),
    Case(
        "edit-with-bot-username",
        text("/edit@gnlc_test_bot q:mayor_name"),
        lit(question_text("mayor_name", "en")),
    ),
    Case(
        "help-for-another-bot",
        text("/help@other_bot"),
        (SILENCE, UNKNOWN_COMMAND),
    ),
    Case(
        "start-for-another-bot",
        text(f"/start@other_bot {FORGED_TOKEN}"),
        (SILENCE, UNKNOWN_COMMAND),
        at="initiative_1",
    ),
    Case("unknown-command", text("/drop_tables"), UNKNOWN_COMMAND),
    Case("unknown-command-fr", text("/supprimer"), UNKNOWN_COMMAND, who=FR_USER),
]


def test_table_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


def test_fake_refuses_blank_text() -> None:
    """Telegram clients cannot send a message of only spaces; the table uses what they can send."""
    api = FakeBotAPI()
    for blank in (" ", "   ", "\t\n", "\n\n"):
        with pytest.raises(ValueError, match="empty"):
            api.send_text(1, blank)


# ---------------------------------------------------------------- the runner


def _split_at_last_help(messages: list[BotMessage], help_text: str) -> list[BotMessage]:
    """The item's replies: everything before the reply to the probing `/help`."""
    last = max(i for i, m in enumerate(messages) if help_text in (m.shown_text or ""))
    return messages[:last]


def _shown(messages: list[BotMessage]) -> str:
    return "\n".join(m.shown_text or "" for m in messages)


def _probe_text(user: int) -> Text:
    """What the probe gets: /help's commands for a contact; for someone without an invitation (who
    is answered once per few minutes) the probe is a forged link, which is always refused."""
    return LINK_NOT_VALID if user == STRANGER else HELP


def _probe(user: int) -> str:
    return f"/start {FORGED_TOKEN}" if user == STRANGER else "/help"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input(world: World, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    h, api = world.h, world.h.api
    person = world.people[case.who]
    language = person.language_code
    asked: int | None = None
    if case.at:
        q = SURVEY.question(case.at)
        assert q is not None
        mark = api.mark()
        api.send_text(case.who, f"/edit q:{case.at}")
        await person.expect(mark, question_text(case.at, language))
        await h.quiet()  # the whole reply, and the previous keyboard's removal, before the row's mark
        question = api.messages_since(mark, case.who)
        asked = question[-1].message_id
        if q.kind == Kind.LONG_TEXT:  # the question's own keyboard, not the "Saved" one of an earlier answer
            assert question[-1].inline_keyboard
    ctx = Ctx(world, case.who, asked)
    if case.setup is not None:
        await case.setup(ctx)

    report_id = world.report_ids.get(case.who, world.report_ids[EN_USER])
    before = await h.storage.answers_of(report_id)
    others_before = {u: await h.storage.answers_of(r) for u, r in world.report_ids.items() if r != report_id}
    mark = ctx.data["mark"] = api.mark()
    result = case.act(ctx)
    if inspect.isawaitable(result):
        result = await result
    if case.wait_call is not None:  # finished, and about this row's chat (an earlier group may still be left)
        method, chat = case.wait_call, case.chat
        await api.async_wait_until(
            lambda: [
                r
                for r in api.calls_to(method, since=mark)
                if r.status is not None and (chat is None or r.int_param("chat_id") == chat)
            ],
            TIMEOUT,
        )

    # No crash: the bot still answers /help, after the item (one chat's updates run in order).
    probe = _probe_text(case.who)(language)
    api.send_text(case.who, _probe(case.who))
    wanted_helps = 1 + (case.item_helps if case.chat is None else 0)

    def helps_arrived() -> list[BotMessage] | None:
        msgs = api.messages_since(mark, case.who)
        helps = [i for i, m in enumerate(msgs) if probe in (m.shown_text or "")]
        if len(helps) < wanted_helps:
            return None
        # /help shows the current question after its text: wait for that too, or it arrives during
        # the next case (a contact's; the stranger's probe is answered with one message).
        return msgs if case.who == STRANGER or helps[-1] < len(msgs) - 1 else None

    try:
        in_chat = await api.async_wait_until(helps_arrived, TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"no answer to /help; got:\n{_shown(api.messages_since(mark, case.who))}") from None
    replies = _split_at_last_help(in_chat, probe)
    if case.chat is not None:
        assert not replies, f"unexpected private replies: {_shown(replies)}"
        replies = api.messages_since(mark, case.chat)

    # The reply: the expected polite text, or silence.
    shown = _shown(replies)
    options = case.expect if isinstance(case.expect, tuple) else (case.expect,)
    wanted = [None if option is None else option(language) for option in options]
    if language != "en":  # localized: the contact does not read the English text
        english = [None if option is None else option("en") for option in options]
        assert wanted == [None] or any(w != e for w, e in zip(wanted, english, strict=True)), wanted
    assert any((not replies) if w is None else (w in shown) for w in wanted), (
        f"expected one of {wanted}; got:\n{shown or '(silence)'}"
    )
    if case.answer is not None:
        assert isinstance(result, str)
        answer = await api.async_wait_until(lambda: api.callback_answer(result), TIMEOUT)  # this press's own
        assert answer is not None and case.answer(language) in (answer.get("text") or ""), answer
        assert language == "en" or case.answer(language) != case.answer("en")

    # Nothing went wrong on the bot's side.
    everything = _shown(api.messages_since(mark))
    for lang in {"en", language}:
        assert get_translator(lang).t(SOMETHING_WENT_WRONG) not in everything
    private_chats = {EN_USER, FR_USER, STRANGER}
    refused = [
        r
        for r in api.calls_to("sendMessage", since=mark, ok=False)
        if r.int_param("chat_id") in private_chats and r.status != 429  # flood control is waited out, not a fault
    ]
    assert not refused, [(r.params, r.error) for r in refused]
    assert not api.internal_errors
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]

    # Stored answers: unchanged, or changed exactly as the row says.
    after = await h.storage.answers_of(report_id)
    assert after == {**before, **case.stores}
    for user, answers in others_before.items():
        assert await h.storage.answers_of(world.report_ids[user]) == answers
    if case.check is not None:
        await case.check(ctx)


# ---------------------------------------------------------------- broken questionnaire files


@pytest.mark.parametrize(
    ("fixture", "question_id"), [(name, qid) for name, (qid, _fragment) in sorted(BROKEN_CASES.items())]
)
def test_broken_questionnaire_stops_status(tmp_path: Path, fixture: str, question_id: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "LOG_LEVEL", "DEADLINE")}
    env.update(SURVEY_FILE=str(BROKEN / fixture), DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "status"],
        cwd=tmp_path,  # no .env of the developer's working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"'{question_id}'" in lines[0] and fixture in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not result.stdout.strip()
    assert not (tmp_path / "data" / "gnlc.sqlite3").exists()  # refused before touching the database


def test_every_broken_questionnaire_is_covered() -> None:
    assert {p.name for p in BROKEN.glob("*.yaml")} == set(BROKEN_CASES)
