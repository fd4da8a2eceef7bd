"""The coordination team's chat commands, and webhook mode, through the fake Bot API."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from bot.exports import column_ids
from bot.service import IntakeService, utc_now
from bot.settings import ENVIRONMENT_VARIABLES, Settings
from bot.storage import Storage
from bot.telegram import inbox
from bot.telegram.app import build_application, on_startup
from bot.telegram.webhook import DurableWebhook
from conversation.i18n import get_translator
from conversation.state import Report, ReportStatus
from tests.fakes.bot_api import BotMessage, FakeBotAPI
from tests.telegram_harness import SURVEY, Harness, Person, running_bot

ROOT = Path(__file__).resolve().parent.parent
ADMIN = 900
LINK_RE = re.compile(r"https://t\.me/gnlc_test_bot\?start=([A-Za-z0-9_-]+)")
REQUIRED = {
    "city_website": "https://www.lyon.fr",
    "mayor_name": "Grégory Doucet",
    "mayor_email": "maire@lyon.fr",
    "mayor_gender": "male",
    "contact_name": "Claire Martin",
    "contact_email": "claire@lyon.fr",
    "contact_phone": "+33472101010",
    "contact_position": "Cheffe de service",
    "contact_gender": "female",
}


CONFIRM = "Submit the report to the UNESCO GNLC Coordination Team? After submission it can no longer be changed."
SUBMITTED = "Thank you. Your report has been submitted to the UNESCO GNLC Coordination Team."
READ_ONLY = (
    "The report has been submitted and can no longer be changed. "
    "Please contact the coordination team if something must be corrected."
)


def text_of(messages: list[BotMessage]) -> str:
    return "\n".join(m.shown_text or "" for m in messages)


async def invite_via_chat(admin: Person, arg: str, city: str) -> str:
    """`/invite arg` from the admin; the token of the link it answers with."""
    replies = await admin.send(f"/invite {arg}", f"Invitation for {city}", "https://t.me/")
    match = LINK_RE.search(text_of(replies))
    assert match is not None, text_of(replies)
    return match.group(1)


async def submit(user: Person, confirm: str, submit_now: str, submitted: str) -> None:
    """/submit, then "Submit now" once the (possibly split) confirmation shows its buttons."""
    await user.send("/submit", confirm)
    await user.api.async_wait_until(lambda: any(b.get("text") == submit_now for b in user.api.messages(
        user.user_id)[-1].buttons()), 15)  # fmt: skip
    await user.press(submit_now, submitted)


async def replies_to(user: Person, text: str, *, contact: bool) -> str:
    """Everything the bot answers to `text`: a /help afterwards marks the end (one chat is handled
    in order); someone without an invitation is answered once per few minutes, but always told
    that a forged invitation link is not valid, which marks the end for them."""
    mark = user.api.mark()
    user.api.send_text(user.user_id, text, language_code=user.language_code)
    if contact:
        user.api.send_text(user.user_id, "/help", language_code=user.language_code)
        await user.expect(mark, "/review — ")
    else:
        user.api.send_text(user.user_id, "/start " + "forged" * 7 + "x", language_code=user.language_code)
        await user.expect(mark, "not valid")
    return user.texts_since(mark)


async def fill_required(h: Harness, user_id: int) -> None:
    """Answer the required questions directly in storage (the walk itself is tested elsewhere)."""
    contact = await h.contact(user_id)
    before, session = await h.storage.load(contact)
    after = Report(answers={**before.answers, **REQUIRED}, status=before.status, attachments=before.attachments)
    await h.storage.save(contact, before, after, session, h.front.service.clock())


async def stored(h: Harness, user_id: int, question_id: str, value: object) -> None:
    """Wait until the user's report holds `value` for the question."""
    contact = await h.contact(user_id)
    for _ in range(500):
        if (await h.storage.answers_of(contact.report_id)).get(question_id) == value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{question_id} never became {value!r}")


async def test_admin_commands_invite_status_reopen_export(tmp_path: Path) -> None:
    fr = get_translator("fr")
    async with running_bot(tmp_path, admin_ids=frozenset({ADMIN})) as h:
        admin = h.person(ADMIN)
        welcome = await admin.send("/start", "coordination team", "/invite", "/status", "/export", "/reopen")
        assert "Lyon" not in text_of(welcome)

        # /invite: a deep link that works for another user, with the joining month pre-filled.
        lyon_token = await invite_via_chat(admin, "Lyon | France | 2014-03", "Lyon (France)")
        await invite_via_chat(admin, "Hamburg | Germany", "Hamburg (Germany)")
        usage = await admin.send("/invite Lyon", "Usage: /invite")
        assert not LINK_RE.search(text_of(usage))
        await admin.send("/invite Lyon | France | March", "2019-03")  # the joining month must look like 2019-03
        user = h.person(1001, "fr")
        await user.send(f"/start {lyon_token}", "Lyon, France")
        assert await user.answered("joined_gnlc") == "2014-03"
        assert (await h.contact(1001)).language == "fr"

        # /status: counts, and the cities behind.
        status = text_of(await admin.send("/status", "Reports", "Not started: 2"))
        assert "In progress: 0" in status and "Submitted: 0" in status
        assert "Lyon (France)" in status and "Hamburg (Germany)" in status

        # The contact answers and submits; the admin is told.
        await fill_required(h, 1001)
        mark = h.api.mark()
        await submit(user, fr.t(CONFIRM), fr.t("Submit now"), fr.t(SUBMITTED))
        await admin.expect(mark, "Lyon (France) submitted")
        await user.send("/edit q:contact_position", fr.t(READ_ONLY))
        status = text_of(await admin.send("/status", "Reports", "Submitted: 1"))
        assert "Not started: 1" in status and "Hamburg (Germany)" in status
        assert "Lyon (France)" not in status  # a submitted city is not behind

        # /reopen: the contact can change answers again.
        await admin.send("/reopen Lyon", "The report of Lyon can be changed again")
        lyon = (await h.storage.find_reports(SURVEY.id, "Lyon"))[0]
        assert lyon.status == ReportStatus.OPEN
        await user.send("/edit q:contact_position", fr.gettext("Contact person for the GNLC: position"))
        user.api.send_text(1001, "Directrice de l'apprentissage")
        await stored(h, 1001, "contact_position", "Directrice de l'apprentissage")
        await admin.send("/reopen Atlantis", "no city matches")
        await admin.send("/reopen", "Usage: /reopen")

        # /export: an XLSX document in the chat.
        mark = h.api.mark()
        await admin.send("/export", "2 reports exported")
        document = await admin.document(mark)  # in the admin's own chat
        assert document.content is not None
        assert (document.document or {}).get("file_name", "").endswith(".xlsx")
        rows = list(load_workbook(io.BytesIO(document.content))["Reports"].iter_rows(values_only=True))
        assert list(rows[0]) == column_ids(SURVEY)
        by_city = {row[0]: dict(zip(column_ids(SURVEY), row, strict=True)) for row in rows[2:]}
        assert set(by_city) == {"Lyon", "Hamburg"}
        assert by_city["Lyon"]["contact_position"] == "Directrice de l'apprentissage"
        assert by_city["Lyon"]["joined_gnlc"] == "2014-03"


async def test_non_admins_learn_nothing_about_other_cities(tmp_path: Path) -> None:
    async with running_bot(tmp_path, admin_ids=frozenset({ADMIN})) as h:
        admin = h.person(ADMIN)
        lyon = await invite_via_chat(admin, "Lyon | France | 2014-03", "Lyon (France)")
        hamburg = await invite_via_chat(admin, "Hamburg | Germany", "Hamburg (Germany)")
        lyon_contact = h.person(1001)
        await lyon_contact.send(f"/start {lyon}", "Lyon, France")
        await fill_required(h, 1001)
        await submit(lyon_contact, CONFIRM, "Submit now", SUBMITTED)
        hamburg_contact = h.person(1002)
        await hamburg_contact.send(f"/start {hamburg}", "Hamburg, Germany")
        stranger = h.person(1500)

        mark = h.api.mark()
        for person, own in ((stranger, None), (hamburg_contact, "Hamburg")):
            for command in ("/status", "/invite Paris | France | 2019-03", "/export", "/reopen Lyon", "/reopen"):
                reply = await replies_to(person, command, contact=own is not None)
                for city in ("Lyon", "Hamburg", "Paris", "France"):
                    if city != own:
                        assert city not in reply, (person.user_id, command, reply)
                for leak in ("t.me/", "exported", "Not started", "In progress", "can be changed again"):
                    assert leak not in reply, (person.user_id, command, reply)
        assert not h.api.calls_to("sendDocument", since=mark)
        cities = await h.storage.list_reports(SURVEY.id)
        assert sorted(c.name for c in cities) == ["Hamburg", "Lyon"]  # no invitation was created
        assert next(c for c in cities if c.name == "Lyon").status == ReportStatus.SUBMITTED  # not reopened
        assert await h.storage.contact_by_telegram_user(1500) is None


# ---------------------------------------------------------------- webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def idle(app: Any, timeout: float = 10.0) -> None:
    """Wait until the application has no update queued or running (three checks in a row)."""
    loop = asyncio.get_running_loop()
    end, streak = loop.time() + timeout, 0
    while streak < 3:
        assert loop.time() < end, "the application did not become idle"
        busy = not app.update_queue.empty() or app.update_processor.in_flight
        streak = 0 if busy else streak + 1
        await asyncio.sleep(0.02)


def start_update(api: FakeBotAPI, user_id: int, text: str) -> dict[str, Any]:
    """An update as Telegram would POST it (the fake only records it: webhooks are not delivered)."""
    api.send_text(user_id, text)
    update = api.updates_sent()[-1]
    assert update["message"]["text"] == text
    return update


async def test_webhook_checks_the_secret_token_and_keeps_updates_before_acknowledging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "FORGET_AFTER", 3600.0)  # finished updates stay until the next one or the stop
    api = FakeBotAPI().start()
    settings = Settings(
        bot_token=api.token,
        bot_api_base_url=api.base_url,
        bot_api_file_url=api.base_file_url,
        data_dir=tmp_path,
        webhook_url="https://bot.example.org",
        reminders_enabled=False,
    )
    storage = await Storage.open(settings.database_path)
    service = IntakeService(SURVEY, storage, settings.files_dir)
    app, front = build_application(settings, SURVEY, storage, service)
    assert app.updater is None  # updates come through DurableWebhook, not PTB's Updater
    port = free_port()
    await app.initialize()
    await on_startup(app, front)
    await app.start()
    hook = DurableWebhook(app, storage, secret_token="s3cret", replays=front.replays)
    try:
        await hook.start(
            listen="127.0.0.1", port=port, webhook_url="https://bot.example.org/telegram", allowed_updates=None
        )
        (call,) = api.calls_to("setWebhook")
        assert call.ok and call.params["url"] == "https://bot.example.org/telegram"
        assert call.params["secret_token"] == "s3cret"
        assert api.webhook["secret_token"] == "s3cret"

        city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, utc_now())
        token = await storage.create_invitation(city.id, utc_now())
        update = start_update(api, 4001, f"/start {token}")
        url = f"http://127.0.0.1:{port}/telegram"
        mark = api.mark()
        secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        async with httpx.AsyncClient(timeout=10) as client:
            missing = await client.post(url, json=update)
            wrong = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-not"})
            assert missing.status_code == 403
            assert wrong.status_code == 403
            assert (await client.post(url, content=b"{not json", headers=secret)).status_code == 400
            assert (await client.post(url, json={"message": "no update id"}, headers=secret)).status_code == 400
            assert (await client.post(url, json=[update], headers=secret)).status_code == 400
            assert (await client.post(url + "-other", json=update, headers=secret)).status_code == 404
            await idle(app)  # had a refused update got through, it would have been handled by now
            assert not api.calls_to("sendMessage", since=mark)  # refused updates are not handled
            assert await storage.contact_by_telegram_user(4001) is None
            assert await storage.inbox_pending() == []
            right = await client.post(url, json=update, headers=secret)
            assert right.status_code == 200
            # Acknowledged only once kept: a crash from here on replays it from the inbox.
            assert [i for i, _ in await storage.inbox_pending()] == [update["update_id"]]
            again = await client.post(url, json=update, headers=secret)  # Telegram retrying: not applied twice
            assert again.status_code == 200
        await api.async_wait_until(lambda: "This report is for Hamburg" in "\n".join(api.bot_texts_since(mark, 4001)))
        assert await storage.contact_by_telegram_user(4001) is not None
        assert len([t for t in api.bot_texts_since(mark, 4001) if "This report is for Hamburg" in t]) == 1
        assert not api.calls_to("getUpdates")  # no polling alongside the webhook
    finally:
        await hook.stop()
        assert await storage.inbox_pending() == []  # handled and answered: forgotten on stopping
        await app.stop()
        await app.shutdown()
        await storage.close()
        api.shutdown()


@pytest.mark.parametrize("secret", ["s3cret-with-at-least-32-characters", None])
def test_run_command_serves_the_webhook(tmp_path: Path, secret: str | None) -> None:
    """`python -m bot run` with WEBHOOK_URL: setWebhook with a secret, updates POSTed to /telegram."""
    api = FakeBotAPI().start()
    port = free_port()

    async def invitation() -> str:
        storage = await Storage.open(tmp_path / "gnlc.sqlite3")
        try:
            city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, utc_now())
            return await storage.create_invitation(city.id, utc_now())
        finally:
            await storage.close()

    token = asyncio.run(invitation())
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env.update(
        PYTHONPATH=str(ROOT),
        DATA_DIR=str(tmp_path),
        BOT_TOKEN=api.token,
        BOT_API_BASE_URL=api.base_url,
        BOT_API_FILE_URL=api.base_file_url,
        WEBHOOK_URL="https://bot.example.org/",
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
        REMINDERS_ENABLED="false",
        LOG_LEVEL="WARNING",
    )
    if secret is not None:
        env["WEBHOOK_SECRET"] = secret
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        call = api.wait_for_call("setWebhook", timeout=30)
        assert call.ok, call.error
        assert call.params["url"] == "https://bot.example.org/telegram"
        recorded = str(call.params.get("secret_token", ""))
        if secret is not None:
            assert recorded == secret
        else:
            assert len(recorded) >= 32  # a random secret per start
        update = start_update(api, 4002, f"/start {token}")
        url = f"http://127.0.0.1:{port}/telegram"
        with httpx.Client(timeout=10) as client:
            for _ in range(100):  # the server starts listening right after setWebhook
                try:
                    missing = client.post(url, json=update)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            else:
                raise AssertionError("the webhook server never listened")
            assert missing.status_code == 403
            wrong = client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            assert wrong.status_code == 403
            mark = api.mark()
            right = client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": recorded})
            assert right.status_code == 200
        api.wait_until(lambda: "This report is for Hamburg" in "\n".join(api.bot_texts_since(mark, 4002)), 15)
        assert not api.calls_to("getUpdates")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        assert api.token not in err and (secret is None or secret not in err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        api.shutdown()
