"""Personal data accounted for: /mydata, purging a city, logs without secrets, the webhook secret."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from bot.storage import Storage
from conversation.state import Attachment, Report, ReportStatus
from tests.bot_process import ROOT, bot_environment
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY, running_bot
from tests.test_cli import acli, cli
from tests.test_invitations import personal_link

PLANTED_ANSWER = "Planted answer text 7f3c: our learning festival reached the harbour districts"
PLANTED_PHONE = "+33 4 72 10 10 10"
PLANTED_EMAIL = "planted.person@example.org"


async def test_mydata_shows_what_is_stored_about_the_contact(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        h.api.add_user(2101, first_name="Anna", last_name="Schmidt", username="anna_hh")
        anna = h.person(2101)
        token = await personal_link(h, name="Anna Schmidt", email="anna@hamburg.de")
        await anna.send(f"/start {token}", "This report is for Hamburg, Germany")
        await anna.press("Begin", "Official city website address")
        await anna.send("https://www.hamburg.de", "Date of joining the UNESCO GNLC")
        replies = await anna.send("/mydata", "What is stored about you", "write to")
        text = "\n".join(m.shown_text or "" for m in replies)
        for expected in (
            "Name: Anna Schmidt",
            "Telegram username: @anna_hh",
            "Telegram user id: 2101",
            "City: Hamburg (Germany)",
            "Invitation made for: Anna Schmidt",
            "E-mail address the invitation was sent to: anna@hamburg.de",
            "Deadline reminders: on",
            "Files you sent: 0",
        ):
            assert expected in text, text
        given = int(text.split("Answers last given by you: ", 1)[1].split()[0])
        assert given >= 1  # the website (and what the invitation pre-filled)
        fr = h.person(2102, "fr")
        await fr.send(f"/start {await personal_link(h, 'Lyon', 'France')}", "Lyon")
        await fr.send("/mydata", "Ce qui est enregistré à votre sujet")


async def seed_two_cities(data: Path) -> tuple[str, str]:
    """Hamburg and Lyon with answers, a shared file and one of Hamburg's own; returns the two hashes."""
    storage = await Storage.open(data / "gnlc.sqlite3")
    now = dt.datetime(2021, 10, 1, tzinfo=dt.UTC)
    try:
        shared, own = b"the same leaflet, sent by both cities", b"Hamburg's own plan"
        for blob in (shared, own):
            sha = hashlib.sha256(blob).hexdigest()
            path = data / "files" / sha[:2] / sha
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
        for user, (city_name, country) in ((2201, ("Hamburg", "Germany")), (2202, ("Lyon", "France"))):
            city = await storage.find_or_create_report(SURVEY.id, city_name, country, None, now)
            token = await storage.create_invitation(city.id, now, max_uses=1)
            contact = (
                await storage.redeem(
                    token, telegram_user_id=user, chat_id=user, display_name=city_name, language="en", now=now
                )
            ).contact
            assert contact is not None
            before, session = await storage.load(contact)
            answer = PLANTED_ANSWER if city_name == "Hamburg" else "Lyon keeps this answer"
            after = Report(answers={"city_website": f"https://{city_name.lower()}.example", "mayor_name": answer})
            await storage.save(contact, before, after, session, now, answer_message=(5, "mayor_name", answer))
            blobs = (shared, own) if city_name == "Hamburg" else (shared,)
            for blob in blobs:
                attachment = Attachment(
                    sha256=hashlib.sha256(blob).hexdigest(), name="plan.pdf", mime_type="application/pdf",
                    size=len(blob), caption=answer,
                )  # fmt: skip
                assert await storage.add_attachment(city.id, contact.id, attachment, now)
            payload = {"update_id": user, "message": {"from": {"id": user}, "text": answer}}
            await storage.inbox_add([(user, json.dumps(payload))], now)
        return hashlib.sha256(shared).hexdigest(), hashlib.sha256(own).hexdigest()
    finally:
        await storage.close()


def database_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data.iterdir() if p.name.startswith("gnlc.sqlite3"))


async def test_purge_a_city_then_the_export_shows_nothing_of_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shared, own = await seed_two_cities(data)
    assert PLANTED_ANSWER.encode() in database_bytes(data)

    purged = await acli(data, None, "purge", "--city", "Hamburg")
    assert purged.returncode == 0, purged.stderr
    assert "erased 1 report(s): 1 contact(s), 2 answer(s)" in purged.stdout
    assert "1 file(s)" in purged.stdout

    exported = await acli(data, None, "export", "--format", "csv", "--output", str(tmp_path / "all.csv"))
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "all.csv").open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == 2  # the header and Lyon
    assert "Hamburg" not in (tmp_path / "all.csv").read_text(encoding="utf-8-sig")
    assert "Lyon keeps this answer" in (tmp_path / "all.csv").read_text(encoding="utf-8-sig")
    # Erased rows are overwritten (secure_delete) and the write-ahead log emptied: no trace on disk.
    blob = database_bytes(data)
    assert PLANTED_ANSWER.encode() not in blob and b"Hamburg" not in blob
    # Hamburg's own file is gone; the file Lyon sent too stays.
    assert not (data / "files" / own[:2] / own).exists()
    assert (data / "files" / shared[:2] / shared).exists()
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        assert [p for p, _ in await storage.inbox_pending()] == [2202]
        assert await storage.contact_by_telegram_user(2201) is None
    finally:
        await storage.close()


async def test_purge_everything_submitted_before_a_date(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await seed_two_cities(data)
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        lyon = (await storage.find_reports(SURVEY.id, "Lyon"))[0]
        await storage.set_status(lyon.id, ReportStatus.SUBMITTED, dt.datetime(2021, 10, 15, tzinfo=dt.UTC))
    finally:
        await storage.close()
    kept = await acli(data, None, "purge", "--submitted-before", "2021-10-15")
    assert kept.returncode == 0 and "erased 0 report(s)" in kept.stdout, kept.stdout + kept.stderr
    gone = await acli(data, None, "purge", "--submitted-before", "2021-10-16")
    assert gone.returncode == 0 and "erased 1 report(s)" in gone.stdout, gone.stdout + gone.stderr
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        assert [c.name for c in await storage.list_reports(SURVEY.id)] == ["Hamburg"]
    finally:
        await storage.close()


async def test_debug_logs_carry_no_answer_token_phone_or_email(tmp_path: Path, api: FakeBotAPI) -> None:
    """The bot as deployed (`python -m bot run`) at LOG_LEVEL=DEBUG, with secrets planted everywhere."""
    data = tmp_path / "data"
    data.mkdir()
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        now = dt.datetime.now(dt.UTC)
        city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, now)
        token = await storage.create_invitation(
            city.id, now, max_uses=1, expires_at=now + dt.timedelta(days=1), name="Planted Person", email=PLANTED_EMAIL
        )
    finally:
        await storage.close()
    log_path = tmp_path / "bot.log"
    env = bot_environment(api, data, LOG_LEVEL="DEBUG")
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=str(data), stdout=log, stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await api.async_wait_until(lambda: api.calls_to("getUpdates"), timeout=30)
            user = 2301

            async def exchange(text: str, wanted: str) -> None:
                mark = api.mark()
                api.send_text(user, text)
                await api.async_wait_until(
                    lambda: any(wanted in (m.shown_text or "") for m in api.messages_since(mark, user)), timeout=20
                )

            await exchange(f"/start {token}", "This report is for Hamburg")
            await exchange(f"{PLANTED_ANSWER} {PLANTED_PHONE} {PLANTED_EMAIL}", "Official city website")
            await exchange("/mydata", PLANTED_EMAIL)  # the bot itself sends the address back
            await exchange(f"/start {token}", "Welcome back")
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    text = log_path.read_text(errors="replace")
    assert "DEBUG" in text and "Calling Bot API endpoint" in text  # DEBUG really was on
    secrets = {
        "bot token": api.token,
        "bot token's secret part": api.token.split(":", 1)[1],
        "invitation token": token,
        "answer": PLANTED_ANSWER[:30],
        "phone number": PLANTED_PHONE,
        "phone number (digits)": PLANTED_PHONE.replace(" ", ""),
        "e-mail address": PLANTED_EMAIL,
    }
    leaked = {what: value for what, value in secrets.items() if value in text}
    assert not leaked, f"in the DEBUG log: {sorted(leaked)}"


def test_a_short_webhook_secret_stops_start_up(tmp_path: Path) -> None:
    env = {"WEBHOOK_URL": "https://bot.example.org/", "WEBHOOK_SECRET": "too-short-a-secret"}
    result = cli(tmp_path / "data", None, "run", BOT_TOKEN="123456789:TEST-token_for_fake", **env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: WEBHOOK_SECRET:") and "32 characters" in line
    assert "too-short-a-secret" not in result.stderr
    # Without WEBHOOK_URL a short secret is harmless (long polling does not use it).
    ok = cli(tmp_path / "data", None, "status", WEBHOOK_SECRET="too-short-a-secret")
    assert ok.returncode == 0, ok.stderr
    assert ROOT.exists()


def test_the_log_filter_on_library_records_and_tracebacks() -> None:
    import io
    import logging

    from bot.redaction import Redactor

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor(["123456789:TEST-token_for_fake"]))
    log = logging.getLogger("telegram.ext.ExtBot.redaction-test")
    ours = logging.getLogger("bot.redaction-test")
    for logger in (log, ours):
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        log.debug("Calling Bot API endpoint `%s` with parameters `%s`", "sendMessage", {"text": PLANTED_ANSWER})
        log.debug("Set Bot API URL: %s", "https://api.telegram.org/bot123456789:TEST-token_for_fake")
        log.error('Can not load invalid JSON data: "%s"', PLANTED_ANSWER)
        try:
            raise ValueError(f"bad value {PLANTED_EMAIL} {PLANTED_PHONE}")
        except ValueError:
            ours.exception("update failed")
    finally:
        for logger in (log, ours):
            logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Calling Bot API endpoint `sendMessage` with parameters `<text>`" in text
    assert "https://api.telegram.org/bot<secret>" in text
    assert f"<text, {len(PLANTED_ANSWER)} characters>" in text
    assert "ValueError: bad value <e-mail> <phone>" in text  # the traceback is kept, redacted
    for secret in (PLANTED_ANSWER, PLANTED_EMAIL, PLANTED_PHONE, "TEST-token_for_fake"):
        assert secret not in text
