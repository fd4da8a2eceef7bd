"""Tests for ``tests/fakes/bot_api.py``: a real PTB ``Application`` polling the fake over HTTP.

The first part drives python-telegram-bot end to end (updates in, API calls out); the second part
checks protocol details of the fake with plain HTTP requests, the way an independent Bot API client
would see them.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.bot_api import FakeBotAPI, parse_html, utf16_len

TOKEN = "123:ABC"
USER = 4242
OTHER_USER = 5151
# PTB itself reads RetryAfter.retry_after while constructing the exception (deprecation noise).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

App = Application[Any, Any, Any, Any, Any, Any]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI(token=TOKEN) as fake:
        yield fake
    assert fake.internal_errors == []


def build_app(api: FakeBotAPI, token: str = TOKEN) -> App:
    return Application.builder().token(token).base_url(api.base_url).base_file_url(api.base_file_url).build()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Yes", callback_data="pick:yes"), InlineKeyboardButton("No", callback_data="pick:no")]]
    )
    await update.effective_message.reply_text("Pick one", reply_markup=keyboard)


async def picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer(f"Saved {query.data}")
    await query.edit_message_text(f"You chose: {query.data.split(':', 1)[1]}")


async def document_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.document is not None
    file = await message.document.get_file()
    data = await file.download_as_bytearray()
    await message.reply_text(f"got {len(data)} bytes {hashlib.sha256(data).hexdigest()[:12]}")


@pytest.fixture
async def app(api: FakeBotAPI) -> AsyncIterator[App]:
    application = build_app(api)
    errors: list[object] = application.bot_data.setdefault("errors", [])

    async def collect_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    application.add_handler(CommandHandler("menu", menu))
    application.add_handler(CallbackQueryHandler(picked, pattern=r"^pick:"))
    application.add_handler(MessageHandler(filters.Document.ALL, document_received))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_error_handler(collect_error)
    await application.initialize()
    await application.start()
    assert application.updater is not None
    # timeout=1 keeps each long poll short; Updater.stop() cancels the pending poll anyway.
    await application.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=1))
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
    assert errors == [], f"handler errors: {errors}"


def seconds(value: int | dtm.timedelta) -> float:
    """PTB 22 returns ints or timedeltas for durations depending on PTB_TIMEDELTA."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return seconds(exc.retry_after)


def inline(callback_data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("button", callback_data=callback_data)]])


# ----------------------------------------------------------------------------------- PTB end to end


async def test_text_round_trip(api: FakeBotAPI, app: App) -> None:
    mark = api.mark()
    sent = api.send_text(USER, "hello there")
    assert sent["chat"] == {"id": USER, "type": "private", "first_name": "Ana"}

    [reply] = await api.async_wait_for_message(USER, mark)

    assert reply.text == "echo: hello there"
    assert reply.raw["from"]["username"] == "gnlc_test_bot"
    assert reply.message_id == sent["message_id"] + 1  # message ids are per chat and shared by both sides
    assert api.bot_texts_since(mark, USER) == ["echo: hello there"]
    methods = [call.method for call in api.calls]
    assert methods[:2] == ["getMe", "deleteWebhook"] and "getUpdates" in methods
    # the bot confirms the update with its next getUpdates offset
    await api.async_wait_until(lambda: not api.pending_updates())


async def test_inline_keyboard_press_and_answer(api: FakeBotAPI, app: App) -> None:
    mark = api.mark()
    command = api.send_text(USER, "/menu")
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 5}]
    [menu_message] = await api.async_wait_for_message(USER, mark)
    assert [b["text"] for b in menu_message.buttons()] == ["Yes", "No"]

    with pytest.raises(ValueError, match="no button"):
        api.press(USER, menu_message.message_id, "pick:maybe")  # users can only press existing buttons

    query_id = api.press(USER, menu_message.message_id, menu_message.callback_data_for("Yes"))
    answer = await api.async_wait_until(lambda: api.callback_answer(query_id))
    assert answer["text"] == "Saved pick:yes"
    edited = await api.async_wait_until(lambda: [m for m in api.messages(USER) if m.edited])
    assert edited[0].text == "You chose: yes"
    assert edited[0].inline_keyboard is None  # editMessageText without reply_markup drops the keyboard

    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await app.bot.answer_callback_query(query_id)  # already answered
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await app.bot.edit_message_text("You chose: yes", chat_id=USER, message_id=menu_message.message_id)


async def test_callback_data_is_limited_to_64_bytes(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    ok = await app.bot.send_message(USER, "fits", reply_markup=inline("d" * 64))
    assert ok.reply_markup is not None

    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await app.bot.send_message(USER, "too long", reply_markup=inline("d" * 65))
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await app.bot.send_message(USER, "33 characters, 66 bytes", reply_markup=inline("é" * 33))
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await app.bot.send_message(USER, "no action", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]]))
    assert [m.text for m in api.messages(USER)] == ["fits"]


async def test_message_length_is_counted_after_entity_parsing(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    await app.bot.send_message(USER, "x" * 4096)
    await app.bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await app.bot.send_message(USER, "&amp;" * 4096, parse_mode="HTML")
    await app.bot.send_message(USER, "  " + "x" * 4096 + "\n")  # surrounding whitespace is trimmed
    await app.bot.send_message(USER, "😀" * 4096)  # code points, not UTF-16 units

    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await app.bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await app.bot.send_message(USER, "")
    with pytest.raises(BadRequest, match=r"(?i)text must be non-empty"):
        await app.bot.send_message(USER, " \n ")
    assert len(api.messages(USER)) == 5
    assert api.messages(USER)[1].entities == [{"type": "bold", "offset": 0, "length": 4096}]


async def test_html_parse_errors(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    bad = {
        "<foo>bar</foo>": 'unsupported start tag "foo" at byte offset 0',
        "Tom & Jerry": "can't parse entities",
        "a < b": 'unsupported start tag "" at byte offset 2',
        "<b>bold": "can't find end tag corresponding to start tag",
        "<b><i>x</b></i>": 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
        "line<br>break": 'unsupported start tag "br"',
        "&nbsp;": "can't parse entities",
    }
    for text, expected in bad.items():
        with pytest.raises(BadRequest) as excinfo:
            await app.bot.send_message(USER, text, parse_mode="HTML")
        assert expected.lower() in str(excinfo.value).lower(), (text, str(excinfo.value))

    message = await app.bot.send_message(
        USER, '<b>Hi</b> &lt;3 &#128512; <a href="https://example.com/?a=1&b=2">link</a>', parse_mode="HTML"
    )
    assert message.text == "Hi <3 😀 link"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 2), ("text_link", 9, 4)]
    assert message.entities[1].url == "https://example.com/?a=1&b=2"

    api.html_strict_entities = False  # Telegram's own (lenient) behaviour keeps a bare "&"
    assert (await app.bot.send_message(USER, "Tom & Jerry", parse_mode="HTML")).text == "Tom & Jerry"


async def test_document_download_round_trip(api: FakeBotAPI, app: App) -> None:
    mark = api.mark()
    api.send_document(USER, file_name="report.pdf", mime_type="application/pdf", content=PDF, caption="my report")

    [reply] = await api.async_wait_for_message(USER, mark)

    assert reply.text == f"got {len(PDF)} bytes {hashlib.sha256(PDF).hexdigest()[:12]}"
    [get_file] = api.calls_to("getFile", since=mark)
    assert get_file.ok and get_file.result["file_path"].startswith("documents/")


async def test_get_file_refuses_files_over_20_mb(api: FakeBotAPI, app: App) -> None:
    huge, _ = api.add_file(b"x" * 16, file_size=20 * 1024 * 1024 + 1)
    limit, _ = api.add_file(b"y" * 16, file_size=20 * 1024 * 1024)

    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await app.bot.get_file(huge)
    assert (await app.bot.get_file(limit)).file_size == 20 * 1024 * 1024
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await app.bot.get_file("AgADBAADv6kxG-unknown")


async def test_bot_uploads_document_with_caption(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    sent = await app.bot.send_document(
        USER, document=b"col1,col2\n1,2\n", filename="export.csv", caption="<b>Export</b> ready", parse_mode="HTML"
    )
    assert sent.document is not None and sent.document.file_name == "export.csv"
    assert sent.caption == "Export ready"
    [stored] = api.messages(USER)
    assert stored.kind == "document" and stored.content == b"col1,col2\n1,2\n"
    assert stored.entities == [{"type": "bold", "offset": 0, "length": 6}]
    [call] = api.calls_to("sendDocument")
    assert call.files["document"].filename == "export.csv"
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await app.bot.send_document(USER, document=sent.document.file_id, caption="c" * 1025)


async def test_rate_limit_answers_429_with_retry_after(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    api.rate_limit_per_second = 2
    await app.bot.send_message(USER, "one")
    await app.bot.send_message(USER, "two")
    with pytest.raises(RetryAfter) as excinfo:
        await app.bot.send_message(USER, "three")
    assert retry_seconds(excinfo.value) == 1
    assert api.count_429 == 1

    api.rate_limit_per_second = None
    api.fail_next("429", method="sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as excinfo:
        await app.bot.send_message(USER, "four")
    assert retry_seconds(excinfo.value) == 7
    assert api.count_429 == 2
    assert [m.text for m in api.messages(USER)] == ["one", "two"]


def test_telegram_limits_are_on_by_default_and_can_be_turned_off() -> None:
    fake = FakeBotAPI()
    assert fake.rate_limit_per_second == 30 and fake.rate_limit_per_chat_per_second == 1
    assert fake.callback_answer_timeout == 15
    assert {"editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"} <= fake.rate_limited_methods
    relaxed = FakeBotAPI(rate_limit_per_chat_per_second=None, lost_response_rate=0.25)
    assert relaxed.rate_limit_per_chat_per_second is None and relaxed.lost_response_rate == 0.25
    with pytest.raises(TypeError, match="no setting"):
        FakeBotAPI(rate_limit_per_chatt=None)


async def test_per_chat_flood_control_counts_sends_edits_and_callback_answers(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    api.add_user(OTHER_USER)
    api.rate_limit_per_chat_burst = 3
    first = await app.bot.send_message(USER, "one", reply_markup=inline("a"))
    await app.bot.edit_message_text("one, edited", chat_id=USER, message_id=first.message_id, reply_markup=inline("a"))
    query = api.press(USER, first.message_id, "a")
    await app.bot.answer_callback_query(query)  # the third call of the burst
    for call in (
        lambda: app.bot.send_message(USER, "two"),
        lambda: app.bot.edit_message_reply_markup(chat_id=USER, message_id=first.message_id),
    ):
        with pytest.raises(RetryAfter) as excinfo:
            await call()
        assert retry_seconds(excinfo.value) == 1  # a token comes back within the second
    await app.bot.send_message(OTHER_USER, "another chat is not held up")
    # Refilled at one per second: one call passes after a second, the next one is refused again.
    await asyncio.sleep(1.05)
    await app.bot.send_message(USER, "two")
    with pytest.raises(RetryAfter):
        await app.bot.send_message(USER, "three")
    assert [m.text for m in api.messages(USER)] == ["one, edited", "two"]
    assert api.stats["rate_limited"] == 3 and api.count_429 == 3


async def test_global_flood_control_is_a_bucket_of_one_second(api: FakeBotAPI, app: App) -> None:
    api.rate_limit_per_chat_per_second = None
    api.rate_limit_per_second = 5
    users = list(range(7000, 7006))
    for user in users:
        api.add_user(user)
    for user in users[:5]:
        await app.bot.send_message(user, "burst")
    with pytest.raises(RetryAfter):
        await app.bot.send_message(users[5], "over the global limit")


async def test_callback_queries_expire_and_are_answered_once(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    sent = await app.bot.send_message(USER, "pick", reply_markup=inline("a"))
    api.callback_answer_timeout = 0.2
    late = api.press(USER, sent.message_id, "a")
    await asyncio.sleep(0.3)
    with pytest.raises(BadRequest, match=r"(?i)query is too old and response timeout expired or query id is invalid"):
        await app.bot.answer_callback_query(late)
    assert api.callback_answer(late) is None
    api.callback_answer_timeout = 15
    query = api.press(USER, sent.message_id, "a")
    assert await app.bot.answer_callback_query(query, text="Saved")
    delay = api.callback_answer_delay(query)
    assert delay is not None and 0 <= delay < 15
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await app.bot.answer_callback_query(query, text="again")
    assert (api.callback_answer(query) or {})["text"] == "Saved"


async def test_a_lost_response_is_executed_but_never_answered(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    api.lost_response_rate = 1.0
    with pytest.raises(NetworkError):
        await app.bot.send_message(USER, "did it arrive?")
    assert [m.text for m in api.messages(USER)] == ["did it arrive?"]  # it did
    api.lost_response_rate = 0.0
    assert api.stats["drop_after"] == 1


async def test_blocked_user_and_unknown_chat(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    api.block(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(USER, "hello?")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_chat_action(USER, "typing")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await app.bot.send_message(OTHER_USER, "who are you?")

    mark = api.mark()
    api.send_text(USER, "sent just before blocking")  # still delivered; the bot's answer is refused
    failed = await api.async_wait_for_call("sendMessage", since=mark, ok=False)
    assert failed.status == 403 and failed.error == "Forbidden: bot was blocked by the user"
    # surfaced in the echo handler (PTB's error handler runs just after the call returned)
    await api.async_wait_until(lambda: app.bot_data["errors"])
    assert [type(e) for e in app.bot_data["errors"]] == [Forbidden]
    app.bot_data["errors"].clear()

    api.unblock(USER)
    mark = api.mark()
    api.send_text(USER, "I'm back")
    [reply] = await api.async_wait_for_message(USER, mark)
    assert reply.text == "echo: I'm back"


async def test_wrong_token_is_rejected_on_initialize(api: FakeBotAPI) -> None:
    application = build_app(api, token="123:WRONG")
    try:
        with pytest.raises(InvalidToken):
            await application.initialize()
    finally:
        await application.bot.shutdown()
    assert api.calls == []  # requests with a wrong token are not recorded as method calls


async def test_faults_surface_as_ptb_errors(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    for kind in ("500", "502", "drop"):
        api.fail_next(kind, method="sendMessage")
        with pytest.raises(NetworkError):
            await app.bot.send_message(USER, f"fault {kind}")
    assert api.messages(USER) == []

    # "timeout": Telegram executed the request, but the answer comes too late for the client.
    api.timeout_delay = 0.5
    api.fail_next("timeout", method="sendMessage")
    with pytest.raises(TimedOut):
        await app.bot.send_message(USER, "slow", read_timeout=0.1)
    assert [m.text for m in api.messages(USER)] == ["slow"]

    # random faults are seeded and never hit getUpdates unless asked to
    api.fail_rate = 1.0
    api.fault_weights = {"429": 1.0}
    with pytest.raises(RetryAfter):
        await app.bot.send_message(USER, "random")
    api.fail_rate = 0.0
    assert (await app.bot.send_message(USER, "recovered")).text == "recovered"
    assert api.stats["500"] == api.stats["502"] == api.stats["drop"] == 1


async def test_reply_keyboard_and_commands(api: FakeBotAPI, app: App) -> None:
    api.add_user(USER)
    keyboard = ReplyKeyboardMarkup([[KeyboardButton("Share phone", request_contact=True)]], one_time_keyboard=True)
    sent = await app.bot.send_message(USER, "Your phone number?", reply_markup=keyboard)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    shown = api.reply_keyboard(USER)
    assert shown is not None and shown["keyboard"][0][0]["request_contact"] is True

    contact = api.send_contact(USER, "+33 6 12 34 56 78", contact_user_id=USER)
    assert contact["contact"]["user_id"] == USER

    assert await app.bot.set_my_commands([("start", "Start the survey")], language_code="fr")
    assert api.commands(language_code="fr") == [{"command": "start", "description": "Start the survey"}]
    assert await app.bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await app.bot.set_my_commands([("/start", "slash is not part of the command")])
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await app.bot.set_my_commands([("Start", "commands are lowercase")])


async def test_update_builders_produce_valid_updates(api: FakeBotAPI) -> None:
    api.send_text(USER, "/start@gnlc_test_bot deep-link", language_code="fr", first_name="Zoé")
    api.send_document(USER, file_name="plan.xlsx", file_size=1234, caption="see https://example.org")
    api.send_photo(USER, caption="receipt", media_group_id="album-1")
    api.send_contact(USER, "+15551234567", contact_user_id=USER)
    api.send_sticker(USER)
    api.send_location(USER, 1.5, 2.5)
    api.send_voice(USER, duration=7)
    api.send_poll(USER, "Best city?", ["Lyon", "Porto"])
    api.edit_text(USER, 1, "/start edited")
    api.send_text(OTHER_USER, "hello group", chat_type="supergroup", chat_id=-1001)
    api.add_raw_update({"my_chat_member": {"weird": True}})

    updates = [Update.de_json(data, None) for data in api.updates_sent()[:10]]

    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = updates[0].message
    assert first is not None and first.from_user is not None
    assert first.from_user.language_code == "fr" and first.from_user.first_name == "Zoé"
    assert first.entities[0].type == "bot_command" and first.entities[0].length == len("/start@gnlc_test_bot")
    doc = updates[1].message.document  # type: ignore[union-attr]
    assert doc is not None and doc.file_name == "plan.xlsx" and doc.file_size == 1234
    assert doc.mime_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    photo_message = updates[2].message
    assert photo_message is not None and photo_message.media_group_id == "album-1"
    assert photo_message.photo[-1].width == 1280
    assert updates[3].message.contact.user_id == USER  # type: ignore[union-attr]
    assert updates[4].message.sticker.emoji == "👍"  # type: ignore[union-attr]
    assert updates[5].message.location.latitude == 1.5  # type: ignore[union-attr]
    assert seconds(updates[6].message.voice.duration) == 7  # type: ignore[union-attr]
    assert [o.text for o in updates[7].message.poll.options] == ["Lyon", "Porto"]  # type: ignore[union-attr]
    assert updates[8].edited_message is not None and updates[8].edited_message.text == "/start edited"
    group = updates[9].message
    assert group is not None and group.chat.type == "supergroup" and group.message_id == 1


# ----------------------------------------------------------------------------------- raw HTTP


def call(api: FakeBotAPI, method: str, token: str = TOKEN, **params: Any) -> tuple[int, dict[str, Any]]:
    response = httpx.post(f"{api.base_url}{token}/{method}", json=params, timeout=5)
    return response.status_code, response.json()


def test_routing_tokens_and_encodings(api: FakeBotAPI) -> None:
    assert call(api, "getMe", token="not-a-token") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert call(api, "getMe", token="123:WRONG") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert call(api, "sendTelepathy")[0] == 404
    status, body = call(api, "GETME")  # method names are case-insensitive
    assert status == 200 and body["result"]["username"] == "gnlc_test_bot" and body["result"]["can_join_groups"]

    api.add_user(USER)
    form = httpx.post(f"{api.base_url}{TOKEN}/sendMessage", data={"chat_id": str(USER), "text": "form"}, timeout=5)
    query = httpx.get(f"{api.base_url}{TOKEN}/sendMessage", params={"chat_id": USER, "text": "query"}, timeout=5)
    status, body = call(api, "sendMessage", chat_id=USER, text="<i>json</i>", parse_mode="html")
    assert form.json()["ok"] and query.json()["ok"] and status == 200
    assert body["result"]["entities"] == [{"type": "italic", "offset": 0, "length": 4}]
    assert [m.text for m in api.messages(USER)] == ["form", "query", "json"]
    assert call(api, "sendMessage", chat_id=USER, text="x", parse_mode="XML")[1]["description"] == (
        "Bad Request: unsupported parse_mode"
    )
    assert call(api, "sendMessage", text="no chat")[1]["description"] == "Bad Request: chat_id is empty"


def test_get_updates_offsets_allowed_updates_and_conflicts(api: FakeBotAPI) -> None:
    first = api.send_text(USER, "one")
    api.send_text(USER, "two")
    _, body = call(api, "getUpdates", limit=1)
    [update] = body["result"]
    assert update["message"]["message_id"] == first["message_id"]
    _, body = call(api, "getUpdates", offset=update["update_id"] + 1)
    assert [u["message"]["text"] for u in body["result"]] == ["two"]
    _, body = call(api, "getUpdates", offset=body["result"][-1]["update_id"] + 1, timeout=0)
    assert body["result"] == []

    # allowed_updates persists until changed; updates of other types are dropped at creation
    _, body = call(api, "getUpdates", allowed_updates=["message"])
    bot_message = call(
        api,
        "sendMessage",
        chat_id=USER,
        text="menu",
        reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]},
    )[1]["result"]
    api.press(USER, bot_message["message_id"], "go")
    assert api.pending_updates() == [] and "callback_query" in api.dropped_updates()[-1]
    call(api, "getUpdates", allowed_updates=[])  # back to the default set
    api.press(USER, bot_message["message_id"], "go")
    assert "callback_query" in api.pending_updates()[-1]

    assert call(api, "setWebhook", url="http://insecure.example.com/hook")[0] == 400
    status, body = call(api, "setWebhook", url="https://bot.example.com/hook", secret_token="s3cr3t")
    assert status == 200 and body["description"] == "Webhook was set"
    assert api.webhook["secret_token"] == "s3cr3t"
    status, body = call(api, "getUpdates")
    assert status == 409 and body["description"].startswith("Conflict: can't use getUpdates method while webhook")
    assert call(api, "deleteWebhook")[1]["description"] == "Webhook was deleted"


def test_editing_and_deleting(api: FakeBotAPI) -> None:
    api.add_user(USER)
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    sent = call(api, "sendMessage", chat_id=USER, text="Question", reply_markup=markup)[1]["result"]
    mid = sent["message_id"]

    status, body = call(api, "editMessageReplyMarkup", chat_id=USER, message_id=mid, reply_markup=markup)
    assert status == 400 and body["description"].startswith("Bad Request: message is not modified")
    status, body = call(api, "editMessageText", chat_id=USER, message_id=mid, text="Question", reply_markup=markup)
    assert status == 400
    status, body = call(api, "editMessageText", chat_id=USER, message_id=mid, text="Answered")
    assert status == 200 and "reply_markup" not in body["result"] and body["result"]["edit_date"]
    assert call(api, "editMessageText", chat_id=USER, message_id=999, text="x")[1]["description"] == (
        "Bad Request: message to edit not found"
    )
    user_message = api.send_text(USER, "mine")
    assert call(api, "editMessageText", chat_id=USER, message_id=user_message["message_id"], text="x")[0] == 400
    assert call(api, "deleteMessage", chat_id=USER, message_id=mid) == (200, {"ok": True, "result": True})
    assert call(api, "deleteMessage", chat_id=USER, message_id=mid)[1]["description"] == (
        "Bad Request: message to delete not found"
    )
    assert api.messages(USER) == [] and api.messages(USER, include_deleted=True)[0].text == "Answered"


def test_entity_parsers() -> None:
    assert parse_html('<pre><code class="language-python">x = 1</code></pre>') == (
        "x = 1",
        [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
    )
    assert parse_html("<blockquote expandable>q</blockquote><tg-spoiler>s</tg-spoiler>")[1] == [
        {"type": "expandable_blockquote", "offset": 0, "length": 1},
        {"type": "spoiler", "offset": 1, "length": 1},
    ]
    assert parse_html("😀<b>x</b>")[1] == [{"type": "bold", "offset": 2, "length": 1}]  # UTF-16 offsets
    assert utf16_len("a😀") == 3


def test_markdown_parse_modes_are_refused_by_name(api: FakeBotAPI) -> None:
    # The bot sends HTML only; the fake does not model Markdown, and says so instead of guessing.
    api.add_user(USER)
    for mode in ("Markdown", "MarkdownV2"):
        status, body = call(api, "sendMessage", chat_id=USER, text="*bold*", parse_mode=mode)
        assert status == 400 and "not modelled by the fake Bot API" in body["description"]
        assert mode in body["description"]
    assert api.messages(USER) == []
