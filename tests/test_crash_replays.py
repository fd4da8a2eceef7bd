"""A real bot process (`python -m bot run`) SIGKILLed at the worst moments, then started again.

- During a file download: the update that carried the file is handled again after the restart
  (downloaded and stored), no partial file is left, and the contact is told the file was saved.
- After a button press was handled and answered, while the pressed keyboard is being retired:
  the replay after the restart makes no Bot API call that Telegram would refuse
  (no second answerCallbackQuery, no edit of a message whose keyboard is already gone).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

from bot import admin
from bot.storage import Storage
from tests.bot_process import BotProcess
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY

USER = 6001
WAIT = 20.0


class HeldDownloads(FakeBotAPI):
    """The fake Bot API, with file downloads held until released (to kill the bot mid-download)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.downloading = threading.Event()
        self.release = threading.Event()

    def _handle_file_download(self, rest: str) -> Any:
        self.downloading.set()
        self.release.wait(WAIT)
        return super()._handle_file_download(rest)


class HeldEdits(FakeBotAPI):
    """The fake Bot API, with editMessageReplyMarkup requests held (while `hold`) until released."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold = False
        self.held = threading.Event()
        self.release = threading.Event()

    def _handle_http(self, raw_path: str, content_type: str, body: bytes) -> Any:
        if self.hold and raw_path.split("?")[0].endswith("/editMessageReplyMarkup"):
            self.held.set()
            self.release.wait(WAIT)
        return super()._handle_http(raw_path, content_type, body)


async def invitation(data_dir: Path) -> tuple[str, int]:
    """A fresh report and its invitation token, created before the bot starts."""
    async with await Storage.open(data_dir / "gnlc.sqlite3") as storage:
        city, link = await admin.invite(
            storage, SURVEY, "gnlc_test_bot", "Espoo", "Finland", None, dt.datetime.now(dt.UTC)
        )
        return link.rsplit("start=", 1)[1], city.id


def texts_since(api: FakeBotAPI, mark: int) -> str:
    return "\n".join(m.shown_text or "" for m in api.messages_since(mark, USER))


async def wait_text(api: FakeBotAPI, mark: int, wanted: str) -> None:
    await api.async_wait_until(lambda: wanted in texts_since(api, mark), WAIT)


async def start_and_join(bot: BotProcess, api: FakeBotAPI, token: str) -> None:
    """Start the bot and open the city's invitation link as USER; return once welcomed."""
    await bot.start()
    mark = api.mark()
    api.send_text(USER, f"/start {token}")
    await wait_text(api, mark, "Espoo")


def refused_since(api: FakeBotAPI, mark: int) -> list[str]:
    """Calls Telegram would refuse (4xx), made since `mark`."""
    return [
        f"{r.method}: {r.error}"
        for r in api.calls_to("getUpdates", since=mark) + _all_calls(api, mark)
        if r.status is not None and 400 <= r.status < 500 and r.status != 409
    ]


def _all_calls(api: FakeBotAPI, mark: int) -> list[Any]:
    methods = ("sendMessage", "editMessageReplyMarkup", "editMessageText", "answerCallbackQuery", "sendDocument")
    return [r for method in methods for r in api.calls_to(method, since=mark)]


async def test_sigkill_during_a_file_download_loses_no_file(tmp_path: Path) -> None:
    token, report_id = await invitation(tmp_path)
    api = HeldDownloads()
    api.start()
    try:
        bot = BotProcess(api, tmp_path, tmp_path / "bot.log")
        try:
            await start_and_join(bot, api, token)
            mark = api.mark()
            content = b"%PDF-1.4 the learning festival programme"
            api.send_document(USER, file_name="festival.pdf", content=content)
            await asyncio.get_running_loop().run_in_executor(None, api.downloading.wait, WAIT)
            await bot.kill()  # mid-download: the file is neither stored nor recorded
            api.release.set()
            async with await Storage.open(tmp_path / "gnlc.sqlite3") as storage:
                assert await storage.attachments(report_id) == ()
            assert "File saved" not in texts_since(api, mark)

            restart = api.mark()
            await bot.start()
            await wait_text(api, mark, "File saved: festival.pdf")
            assert not refused_since(api, restart), refused_since(api, restart)
        finally:
            api.release.set()
            await bot.close()
    finally:
        api.shutdown()
    async with await Storage.open(tmp_path / "gnlc.sqlite3") as storage:
        (stored,) = await storage.attachments(report_id)
    assert stored.name == "festival.pdf" and stored.size == len(content)
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [stored.sha256] and blobs[0].read_bytes() == content
    assert "Traceback" not in bot.log_text()


async def test_a_replayed_button_press_makes_no_call_telegram_would_refuse(tmp_path: Path) -> None:
    token, _ = await invitation(tmp_path)
    api = HeldEdits()
    api.start()
    try:
        api.callback_answer_timeout = 15.0
        bot = BotProcess(api, tmp_path, tmp_path / "bot.log")
        try:
            await start_and_join(bot, api, token)
            intro = api.messages(USER)[-1]
            label = next(str(b["text"]) for b in intro.buttons() if "callback_data" in b)
            mark = api.mark()
            api.hold = True
            api.press(USER, intro.message_id, button_text=label)
            # Handled and answered, the next question sent, the pressed keyboard being retired: killed
            # while the retirement is on its way (the update is still in the bot's inbox).
            await api.async_wait_for_call("answerCallbackQuery", since=mark, timeout=WAIT)
            await asyncio.get_running_loop().run_in_executor(None, api.held.wait, WAIT)
            await api.async_wait_until(lambda: len(api.messages_since(mark, USER)) > 0, WAIT)
            await bot.kill()
            with sqlite3.connect(tmp_path / "gnlc.sqlite3") as db:  # the press is replayed from the inbox
                kept = {row[0] for row in db.execute("SELECT update_id FROM inbox")}
                done = {row[0] for row in db.execute("SELECT update_id FROM handled_updates")}
            assert kept & done, "the handled press should still be in the inbox"
            restart = api.mark()
            api.hold = False
            api.release.set()  # Telegram carries out the retirement the killed bot asked for
            await bot.start()
            api.send_text(USER, "/progress")
            await wait_text(api, restart, "question")
            refused = refused_since(api, restart)
            assert not refused, refused
        finally:
            api.release.set()
            await bot.close()
    finally:
        api.shutdown()
