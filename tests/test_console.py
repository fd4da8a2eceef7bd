"""The console front end driven end to end as a subprocess, over a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bot.storage import Storage

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
