"""The command line (`python -m bot ...`) run as subprocesses against a real database and the fake Bot API."""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot import admin
from bot.exports import column_ids
from bot.storage import City, Contact, Storage
from conversation.i18n import get_translator
from conversation.model import Kind
from conversation.state import AnswerValue, Attachment, Report, ReportStatus
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY, running_bot

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2021, 11, 3, 10, 0, tzinfo=dt.UTC)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LINK_RE = re.compile(r"https://t\.me/gnlc_test_bot\?start=(\S+)")
# Settings a developer's shell might hold; the subprocesses must not see them.
SETTINGS_VARS = (
    "BOT_TOKEN", "BOT_API_BASE_URL", "BOT_API_FILE_URL", "DATA_DIR", "ADMIN_IDS", "DEADLINE", "LOG_LEVEL",
    "SURVEY_FILE", "WEBHOOK_URL", "WEBHOOK_LISTEN", "WEBHOOK_PORT", "WEBHOOK_SECRET", "REMINDER_DAYS",
    "REMINDER_HOUR", "TIMEZONE", "ACCEPT_LATE_SUBMISSIONS", "REMINDERS_ENABLED", "REMINDER_CHECK_SECONDS",
)  # fmt: skip


def cli_env(data_dir: Path, api: FakeBotAPI | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_VARS}
    env["DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    if api is not None:
        env.update(BOT_TOKEN=api.token, BOT_API_BASE_URL=api.base_url, BOT_API_FILE_URL=api.base_file_url)
    env.update(extra)
    return env


def cli(data_dir: Path, api: FakeBotAPI | None, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in a directory without a .env file."""
    workdir = data_dir.parent / "cwd"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=cli_env(data_dir, api, **extra),
        timeout=60,
    )


async def acli(data_dir: Path, api: FakeBotAPI | None, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`cli` without blocking the event loop (an in-process bot may be running)."""
    return await asyncio.to_thread(cli, data_dir, api, *args, **extra)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failing command prints on standard error."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


async def open_storage(data_dir: Path) -> Storage:
    return await Storage.open(data_dir / "gnlc.sqlite3")


async def redeem(storage: Storage, token: str, user_id: int, language: str = "en") -> Contact | None:
    return (
        await storage.redeem(
            token, telegram_user_id=user_id, chat_id=user_id, display_name=f"User {user_id}", language=language, now=NOW
        )
    ).contact


async def new_token(storage: Storage, city: str, country: str, joined: str | None = None) -> str:
    _, link = await admin.invite(storage, SURVEY, "gnlc_test_bot", city, country, joined, NOW)
    return link.rsplit("start=", 1)[1]


async def save_answers(storage: Storage, contact: Contact, answers: Mapping[str, AnswerValue], language: str) -> None:
    before, session = await storage.load(contact)
    after = Report(answers={**before.answers, **answers}, status=before.status, attachments=before.attachments)
    await storage.save(contact, before, after, session.model_copy(update={"language": language}), NOW)


HAMBURG: dict[str, AnswerValue] = {
    "city_name": "Hamburg",
    "country": "Germany",
    "joined_gnlc": "2016-03",
    "city_website": "https://www.hamburg.de",
    "strategy_adopted": "yes",
    "strategy_adoption_date": "2018-05",
    "clusters": ("health_wellbeing", "literacy"),
    "contact_phone": "+4940428231234",
}
LYON: dict[str, AnswerValue] = {"city_name": "Lyon", "country": "France", "joined_gnlc": "2014-03", "core_team": "no"}


async def populate(data_dir: Path) -> dict[str, City]:
    """Four cities: Hamburg in progress, Lyon submitted, São Paulo not started, 上海 exempt."""
    storage = await open_storage(data_dir)
    try:
        hamburg = await redeem(storage, await new_token(storage, "Hamburg", "Germany", "2016-03"), 3001)
        lyon = await redeem(storage, await new_token(storage, "Lyon", "France", "2014-03"), 3002, "fr")
        sao_paulo = await redeem(storage, await new_token(storage, "São Paulo", "Brasil"), 3003, "pt")
        assert hamburg and lyon and sao_paulo
        await save_answers(storage, hamburg, HAMBURG, "en")
        await save_answers(storage, lyon, LYON, "fr")
        await save_answers(storage, sao_paulo, {"city_name": "São Paulo", "country": "Brasil"}, "pt")
        await storage.set_status(lyon.report_id, ReportStatus.SUBMITTED, NOW)
        shanghai = await storage.find_or_create_report(SURVEY.id, "上海", "中国", "2021-06", NOW)
        await storage.set_status(shanghai.id, ReportStatus.EXEMPT, NOW)
        # One supporting file of Hamburg, stored by content hash as the bot stores it.
        data = b"%PDF-1.4 Hamburg learning city plan"
        sha = hashlib.sha256(data).hexdigest()
        blob = data_dir / "files" / sha[:2] / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        attachment = Attachment(sha256=sha, name="plan.pdf", mime_type="application/pdf", size=len(data))
        assert await storage.add_attachment(hamburg.report_id, hamburg.id, attachment, NOW)
        return {c.name: c for c in await storage.list_reports(SURVEY.id)}
    finally:
        await storage.close()


def question_columns() -> list[str]:
    return [q.id for q in SURVEY.questions if q.kind != Kind.FILE_UPLOAD]


# ---------------------------------------------------------------- invite and revoke


async def test_invite_prints_a_link_that_redeems_until_revoked(tmp_path: Path, api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    first = await acli(data, api, "invite", "--city", "Hamburg", "--country", "Germany", "--joined", "2016-03")
    assert first.returncode == 0, first.stderr
    assert api.calls_to("getMe")  # the bot's username comes from getMe
    match = LINK_RE.search(first.stdout)
    assert match is not None, first.stdout
    assert first.stdout.strip().endswith(match.group(0))
    assert first.stdout.startswith("Hamburg (Germany): ")
    token = match.group(1)
    assert TOKEN_RE.fullmatch(token)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) * 8 >= 128  # at least 128 bits of randomness
    second = await acli(data, api, "invite", "--city", "hamburg", "--country", "germany")
    assert second.returncode == 0, second.stderr
    match2 = LINK_RE.search(second.stdout)
    assert match2 is not None
    other = match2.group(1)
    assert other != token and TOKEN_RE.fullmatch(other)

    async with running_bot(data, api=api) as h:
        (city,) = await h.storage.list_reports(SURVEY.id)  # the same city, not a second report
        assert (city.name, city.country, city.joined) == ("Hamburg", "Germany", "2016-03")
        user = h.person(3101)
        await user.send(f"/start {token}", "This report is for Hamburg, Germany")
        assert await user.answered("joined_gnlc") == "2016-03"  # --joined pre-fills the question

        revoked = await acli(data, api, "revoke", "--token", other)
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked 1 invitation" in revoked.stdout
        late = h.person(3102)
        await late.send(f"/start {other}", "not valid")
        assert await h.storage.contact_by_telegram_user(3102) is None
        # The first link still works for the person who already joined with it.
        await user.send("/start", "This report is for Hamburg, Germany")

    again = await acli(data, api, "revoke", "--token", other)
    assert again.returncode == 2
    assert "no active invitation" in one_error_line(again)


async def test_invite_needs_a_token_and_a_valid_month(tmp_path: Path, api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    no_token = await acli(data, None, "invite", "--city", "Hamburg", "--country", "Germany")
    assert no_token.returncode == 2
    assert "BOT_TOKEN" in one_error_line(no_token)
    bad_month = await acli(data, api, "invite", "--city", "Hamburg", "--country", "Germany", "--joined", "2016-13")
    assert bad_month.returncode == 2
    assert "--joined" in one_error_line(bad_month)


async def test_revoke_by_city_unknown_and_ambiguous(tmp_path: Path) -> None:
    data = tmp_path / "data"
    storage = await open_storage(data)
    try:
        hamburg = [await new_token(storage, "Hamburg", "Germany") for _ in range(2)]
        sao_paulo = await new_token(storage, "São Paulo", "Brasil")
    finally:
        await storage.close()

    unknown = await acli(data, None, "revoke", "--city", "Atlantis")
    assert unknown.returncode == 2
    assert "no city matches 'Atlantis'" in one_error_line(unknown)

    ambiguous = await acli(data, None, "revoke", "--city", "a")
    assert ambiguous.returncode == 2
    line = one_error_line(ambiguous)
    assert "several" in line and "Hamburg (Germany)" in line and "São Paulo (Brasil)" in line

    done = await acli(data, None, "revoke", "--city", "HAMBURG")
    assert done.returncode == 0, done.stderr
    assert "revoked 2 invitation(s) of Hamburg (Germany)" in done.stdout

    storage = await open_storage(data)
    try:
        assert [await redeem(storage, token, 3201 + i) for i, token in enumerate(hamburg)] == [None, None]
        assert await redeem(storage, sao_paulo, 3203) is not None  # the ambiguous request revoked nothing
    finally:
        await storage.close()


# ---------------------------------------------------------------- status and exports


async def test_status_lists_counts_and_the_cities_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await populate(data)
    result = await acli(data, None, "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in ("Not started: 1", "In progress: 1", "Submitted: 1", "Exempt this cycle: 1"):
        assert line in out.splitlines(), out
    behind = out.split("Submitted: 1", 1)[1]
    assert "São Paulo (Brasil)" in behind and "Hamburg (Germany)" in behind
    assert "Lyon" not in out and "上海" not in behind  # submitted and exempt cities are not behind
    assert re.search(r"Hamburg \(Germany\) — \d+ of \d+ answered, \d+ required missing", out)
    assert "<b>" not in out  # plain text in the terminal


async def test_exports_parse_back_one_row_per_city(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await populate(data)
    ids = column_ids(SURVEY)
    assert ids[5:-2] == question_columns()
    results = await asyncio.gather(
        *(acli(data, None, "export", "--format", fmt, "--output", str(tmp_path / f"out.{fmt}")) for fmt in
          ("csv", "xlsx", "json"))
    )  # fmt: skip
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "exported 4 report(s)" in result.stdout

    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ids
    by_city = {row[0]: dict(zip(ids, row, strict=True)) for row in rows[1:]}
    assert len(rows) == 5 and set(by_city) == {"Hamburg", "Lyon", "São Paulo", "上海"}
    hamburg = by_city["Hamburg"]
    assert hamburg["joined_gnlc"] == "2016-03"
    assert hamburg["strategy_adoption_date"] == "2018-05"
    assert hamburg["clusters"] == "health_wellbeing;literacy"
    assert hamburg["status"] == "open" and hamburg["languages"] == "en"
    assert hamburg["attachment_count"] == "1"
    assert by_city["Lyon"]["status"] == "submitted" and by_city["Lyon"]["core_team"] == "no"
    assert by_city["Lyon"]["languages"] == "fr"
    assert by_city["上海"]["status"] == "exempt"

    sheet = load_workbook(tmp_path / "out.xlsx")["Reports"]
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == ids
    assert len(cells) == 2 + 4  # ids, titles, one row per city
    xlsx = {row[0]: dict(zip(ids, row, strict=True)) for row in cells[2:]}
    assert xlsx["Hamburg"]["joined_gnlc"] == "2016-03"
    assert xlsx["São Paulo"]["country"] == "Brasil"
    assert xlsx["Lyon"]["core_team"] == "no"

    reports = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert len(reports) == 4
    by_name = {r["city"]: r for r in reports}
    assert by_name["Hamburg"]["answers"]["clusters"] == ["health_wellbeing", "literacy"]
    assert by_name["Hamburg"]["answers"]["city_website"] == "https://www.hamburg.de"
    assert by_name["Lyon"]["languages"] == ["fr"]
    assert set(by_name["Hamburg"]["answers"]) <= set(question_columns())


@pytest.mark.parametrize("where", ["missing-dir/out.csv", "a-directory", "a-file/out.csv"])
async def test_export_to_an_unwritable_path_is_a_clear_error(tmp_path: Path, where: str) -> None:
    data = tmp_path / "data"
    await populate(data)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("not a directory")
    target = tmp_path / where
    for command in (["export", "--format", "csv"], ["export-files"]):
        result = await acli(data, None, *command, "--output", str(target))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        line = one_error_line(result)
        assert str(target) in line
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing-dir").exists()
    assert (tmp_path / "a-file").read_text() == "not a directory"


async def test_export_files_writes_a_folder_per_city(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await populate(data)
    out = tmp_path / "files.zip"
    result = await acli(data, None, "export-files", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "exported 1 file(s)" in result.stdout
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["Hamburg (Germany)/plan.pdf"]
        assert zf.read("Hamburg (Germany)/plan.pdf") == b"%PDF-1.4 Hamburg learning city plan"


# ---------------------------------------------------------------- reminders


async def reminder_setup(data: Path, api: FakeBotAPI) -> None:
    """Hamburg (two contacts: en, fr), São Paulo (pt), Lyon submitted; one Hamburg contact paused."""
    await populate(data)
    storage = await open_storage(data)
    try:
        extra = await redeem(storage, await new_token(storage, "Hamburg", "Germany"), 3004, "fr")
        paused = await redeem(storage, await new_token(storage, "Hamburg", "Germany"), 3005)
        assert extra and paused
        await storage.set_reminders_paused(paused.id, True, now=NOW)
    finally:
        await storage.close()
    for user_id in (3001, 3002, 3003, 3004, 3005):
        api.add_user(user_id)  # each contact has started a chat with the bot


def reminders_to(api: FakeBotAPI, since: int = 0) -> dict[int, str]:
    return {
        int(call.params["chat_id"]): str(call.params.get("text", ""))
        for call in api.calls_to("sendMessage", since=since, ok=True)
    }


def far_from_midnight(days_ahead: int) -> tuple[str, dt.date]:
    """A time zone where it is about noon now, and the date `days_ahead` days from today there.

    `python -m bot remind` reads the real clock in its own process; in a zone 12 hours from
    midnight, "5 days before the deadline" stays true however slowly the command runs.
    """
    now = dt.datetime.now(dt.UTC)
    offset = (12 - now.hour + 12) % 24 - 12  # -12 .. +11 hours from UTC
    zone = f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3
    local_today = (now + dt.timedelta(hours=offset)).date()
    return zone, local_today + dt.timedelta(days=days_ahead)


async def test_remind_sends_due_reminders_once(tmp_path: Path, api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    await reminder_setup(data, api)
    zone, deadline = far_from_midnight(days_ahead=5)
    env = {
        "DEADLINE": deadline.isoformat(),
        "REMINDER_DAYS": "30,14,7,5,3,1,0",
        "REMINDER_HOUR": "0",
        "TIMEZONE": zone,
    }
    first = await acli(data, api, "remind", **env)
    assert first.returncode == 0, first.stderr
    assert "reminders: 3 sent, 0 blocked, 0 failed" in first.stdout
    sent = reminders_to(api)
    assert set(sent) == {3001, 3003, 3004}  # not Lyon (submitted), not the paused contact
    for user_id, language in ((3001, "en"), (3003, "pt"), (3004, "fr")):
        tr = get_translator(language)
        expected = tr.n(
            "Reminder: the Biennial Progress Report of {city} is due in {count} day, on {date}.",
            "Reminder: the Biennial Progress Report of {city} is due in {count} days, on {date}.",
            5,
            city="São Paulo" if user_id == 3003 else "Hamburg",
            date=tr.format_date(deadline, "long"),
        )
        assert expected in sent[user_id], (language, sent[user_id])

    mark = api.mark()
    second = await acli(data, api, "remind", **env)
    assert second.returncode == 0, second.stderr
    assert "reminders: 0 sent" in second.stdout
    assert not api.calls_to("sendMessage", since=mark)


async def test_remind_states_the_days_actually_left(tmp_path: Path, api: FakeBotAPI) -> None:
    """A reminder sent late (a contact who joined after the 7-day reminder, or a bot that was down)
    must not claim more days than are left: with the default schedule and the deadline 5 days away,
    the due reminder is the 7-day one, but the contact has 5 days."""
    data = tmp_path / "data"
    await reminder_setup(data, api)
    zone, deadline = far_from_midnight(days_ahead=5)
    result = await acli(data, api, "remind", DEADLINE=deadline.isoformat(), REMINDER_HOUR="0", TIMEZONE=zone)
    assert result.returncode == 0, result.stderr
    text = reminders_to(api)[3001]
    en = get_translator("en")
    assert "due in 7 days" not in text, text
    assert "due in 5 days, on " + en.format_date(deadline, "long") in text, text


async def test_remind_needs_a_token(tmp_path: Path) -> None:
    result = await acli(tmp_path / "data", None, "remind")
    assert result.returncode == 2
    assert "BOT_TOKEN" in one_error_line(result)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEADLINE", "2021-13-01"),
        ("DEADLINE", "31/12/2021"),
        ("WEBHOOK_URL", "not-a-url"),
        ("WEBHOOK_URL", "http://bot.example.org"),  # Telegram only delivers to HTTPS
        ("REMINDER_DAYS", "30,x,7"),
        ("REMINDER_DAYS", "-1"),
    ],
)
def test_malformed_setting_stops_startup_naming_it(tmp_path: Path, api: FakeBotAPI, name: str, value: str) -> None:
    result = cli(tmp_path / "data", api, "run", **{name: value})
    assert result.returncode == 2, result.stderr[-2000:]
    line = one_error_line(result)
    assert line.startswith(f"error: {name}"), line
    assert api.token not in result.stderr


@pytest.mark.parametrize("command", ["status", "export"])
def test_malformed_setting_stops_every_command(tmp_path: Path, api: FakeBotAPI, command: str) -> None:
    args = [command] + (["--output", str(tmp_path / "x.csv")] if command == "export" else [])
    result = cli(tmp_path / "data", api, *args, DEADLINE="2021-02-30")
    assert result.returncode == 2
    assert one_error_line(result).startswith("error: DEADLINE")
    assert not api.calls  # nothing was sent
