"""The console front end driven end to end as a subprocess, over a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bot.storage import Storage
from conversation import commands

ROOT = Path(__file__).resolve().parent.parent


def run_console(data_dir: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    env.pop("BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", "--key", "console:test", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


async def stored_answers(data_dir: Path) -> dict[str, object]:
    storage = await Storage.open(data_dir / "gnlc.sqlite3")
    try:
        (city,) = await storage.list_reports("gnlc-biennial-2019-2021")
        return dict(await storage.answers_of(city.id))
    finally:
        await storage.close()


def test_console_answers_are_stored_and_resumed_after_restart(tmp_path):
    first = run_console(
        tmp_path,
        ["1", "www.hamburg.de", "03/2016", "Peter Tschentscher", "not-an-email", "mayor@hamburg.de", "/quit"],
        "--city",
        "Hamburg",
        "--country",
        "Germany",
    )
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "[1] Begin" in out
    assert "Official city website address" in out  # city and country came from the command line
    assert "does not look like an e-mail address" in out
    assert "Mayor: gender" in out
    answers = asyncio.run(stored_answers(tmp_path))
    assert answers["city_name"] == "Hamburg"
    assert answers["joined_gnlc"] == "2016-03"
    assert answers["mayor_email"] == "mayor@hamburg.de"

    # A new process resumes at the same question, with the same report.
    second = run_console(tmp_path, ["2", "/back", "/review"])
    assert second.returncode == 0, second.stderr
    assert "Welcome back" in second.stdout
    assert "Mayor: gender" in second.stdout.split("Welcome back", 1)[1]  # resumed at the unanswered question
    assert "Contact person for the GNLC: name" in second.stdout  # "2" pressed the second button: Male
    assert "Current answer: Male" in second.stdout  # /back shows what was chosen
    assert "Your answers" in second.stdout
    answers = asyncio.run(stored_answers(tmp_path))
    assert answers["mayor_gender"] == "male"


def test_console_attaches_a_local_file(tmp_path):
    doc = tmp_path / "plan.pdf"
    doc.write_bytes(b"%PDF-1.4 plan")
    lines = [f"/file {doc}", f"/file {doc}", "/file /nonexistent/x.pdf", "/files"]
    result = run_console(tmp_path, lines, "--city", "Lyon", "--country", "France")
    assert result.returncode == 0, result.stderr
    assert "File saved: plan.pdf" in result.stdout
    assert "already sent this file" in result.stdout
    assert "No such file" in result.stdout
    assert "Your 1 file" in result.stdout
    blobs = list((tmp_path / "files").rglob("*"))
    assert any(b.is_file() and b.read_bytes() == b"%PDF-1.4 plan" for b in blobs)


def test_no_token_and_no_terminal_is_a_clear_error(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    env.pop("BOT_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "BOT_TOKEN is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_setting_stops_startup_naming_it(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "ADMIN_IDS": "12,abc"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "status"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ADMIN_IDS")


MAYOR_AND_CONTACT = (
    "mayor_name",
    "mayor_email",
    "mayor_gender",
    "contact_name",
    "contact_email",
    "contact_phone",
    "contact_position",
    "contact_gender",
)


async def stored_report(data_dir: Path) -> tuple[str, dict[str, object]]:
    storage = await Storage.open(data_dir / "gnlc.sqlite3")
    try:
        (city,) = await storage.list_reports("gnlc-biennial-2019-2021")
        return city.status.value, dict(await storage.answers_of(city.id))
    finally:
        await storage.close()


def test_console_skips_every_mayor_and_contact_question_and_submits(tmp_path):
    # As on the form, only the city information is mandatory: a city without its mayor's e-mail at hand can submit.
    lines = ["1", "www.hamburg.de", "03/2016", *["/skip"] * len(MAYOR_AND_CONTACT), "/submit", "1"]
    result = run_console(tmp_path, lines, "--city", "Hamburg", "--country", "Germany")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "This question is required and cannot be skipped" not in out
    warning = out.split("still unanswered", 1)[1]
    for text in ("Mayor: name", "Mayor: e-mail", "Mayor: gender", "Contact person for the GNLC: phone"):
        assert text in warning  # listed in the "still unanswered" warning before submission
    assert "Thank you. Your report has been submitted" in out
    status, answers = asyncio.run(stored_report(tmp_path))
    assert status == "submitted"
    assert not set(MAYOR_AND_CONTACT) & set(answers)
    assert answers["city_website"] == "https://www.hamburg.de"


def test_console_started_without_token_logs_no_info_lines(tmp_path):
    # `python -m bot` in a terminal without BOT_TOKEN starts the console; like `console`, it logs
    # warnings only unless LOG_LEVEL is set (opening a new database logs its migrations at INFO).
    import pty

    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    env.pop("BOT_TOKEN", None)
    env.pop("LOG_LEVEL", None)
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"Hamburg\nGermany\n/quit\n")
        result = subprocess.run(
            [sys.executable, "-m", "bot"],
            stdin=terminal,
            capture_output=True,
            text=True,
            cwd=tmp_path,  # no .env from the repository
            env={**env, "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, result.stderr
    assert "starting the console" in result.stderr
    assert " INFO " not in result.stderr, result.stderr
    assert (tmp_path / "gnlc.sqlite3").is_file()  # the database was opened (and migrated) quietly


async def stored_contact(data_dir: Path) -> dict[str, object]:
    storage = await Storage.open(data_dir / "gnlc.sqlite3")
    try:
        contact = await storage.console_contact_if_exists("console:test")
        assert contact is not None
        return {"reminders_paused": contact.reminders_paused}
    finally:
        await storage.close()


def test_console_accepts_the_contact_commands_telegram_has(tmp_path):
    # /reminders and /mydata work as in Telegram; /colleague says where links are made; none is "unknown".
    lines = ["/reminders", "/mydata", "/colleague"]
    assert {line[1:] for line in lines} == commands.CONTACT_TOOLS  # every one the registry declares
    result = run_console(tmp_path, lines, "--city", "Hamburg", "--country", "Germany")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "I do not know that command" not in out
    assert "Deadline reminders are paused. Send /reminders again to resume them." in out
    assert "What is stored about you" in out and "City: Hamburg (Germany)" in out
    assert "Deadline reminders: paused" in out  # /mydata reads what /reminders just stored
    assert "Links for colleagues are made in Telegram" in out
    assert asyncio.run(stored_contact(tmp_path)) == {"reminders_paused": True}

    again = run_console(tmp_path, ["/reminders"])
    assert again.returncode == 0, again.stderr
    assert "Deadline reminders are on again." in again.stdout
    assert asyncio.run(stored_contact(tmp_path)) == {"reminders_paused": False}


def test_console_help_lists_the_commands_of_the_registry(tmp_path):
    result = run_console(tmp_path, ["/help", "/mydata"], "--city", "Lyon", "--country", "France", "--language", "fr")
    assert result.returncode == 0, result.stderr
    for command in commands.contact_help():
        assert f"/{command.name} — " in result.stdout
    assert "Ce qui est enregistré à votre sujet" in result.stdout  # /mydata in the contact's language
