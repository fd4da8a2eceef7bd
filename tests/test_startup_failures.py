"""Start-up failures of `python -m bot run`, tried as a new user would, and `python -m bot health`.

Each failure must end in ONE line on standard error that says what is wrong and what to do, never
the token, and a non-zero exit: a refused token, an unreachable Bot API (retried with backoff, one
line per attempt), DATA_DIR unwritable or held by another instance, the webhook port in use, a
database written by newer code. `health` exits 0 on a good deployment and 1 with one line on an
unwritable directory or a newer schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.startup import StartupError
from bot.storage import SCHEMA_VERSION, Storage
from bot.telegram import startup
from tests.bot_process import ROOT, BotProcess, bot_environment
from tests.fakes.bot_api import FakeBotAPI

WRONG_TOKEN = "987654321:AAHwrongTOKENforTHEfakeBOTapi_1234567"


def run_bot(api: FakeBotAPI, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    cwd = data_dir if data_dir.is_dir() else ROOT / "tests"
    return subprocess.run(
        [sys.executable, "-m", "bot", *(args or ("run",))],
        env=bot_environment(api, data_dir, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def one_line(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The single line on standard error of a failed command (asserting there is exactly one)."""
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.stderr and secret not in result.stdout
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make `directory` refuse new files (chmod, or the immutable flag where the tests run as root)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root where the immutable flag is not available: cannot make a directory unwritable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_a_refused_token_is_one_line_without_the_token(api: FakeBotAPI, tmp_path: Path) -> None:
    result = run_bot(api, tmp_path, BOT_TOKEN=WRONG_TOKEN)
    line = one_line(result, WRONG_TOKEN, WRONG_TOKEN.split(":")[1])
    assert line.startswith("error: the Bot API refused BOT_TOKEN") and "@BotFather" in line


def test_a_refused_token_in_a_one_shot_command_is_one_line_too(api: FakeBotAPI, tmp_path: Path) -> None:
    result = run_bot(api, tmp_path, "invite", "--city", "Hamburg", "--country", "Germany", BOT_TOKEN=WRONG_TOKEN)
    assert "refused BOT_TOKEN" in one_line(result, WRONG_TOKEN, WRONG_TOKEN.split(":")[1])


def test_an_unreachable_bot_api_is_retried_one_line_per_attempt(api: FakeBotAPI, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = bot_environment(api, tmp_path, BOT_API_BASE_URL=f"{dead}/bot", BOT_API_FILE_URL=f"{dead}/file/bot")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]  # the first two attempts (1 s apart)
        proc.send_signal(signal.SIGTERM)  # a supervisor stopping it while it waits
        err = "".join(lines) + proc.communicate(timeout=15)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "attempt 1 of" in lines[0] and "attempt 2 of" in lines[1], err
    assert all("cannot reach the Bot API at 127.0.0.1" in line for line in lines)
    assert "Traceback" not in err and api.token not in err
    assert proc.returncode == 0  # stopped on request, not crashed


async def test_the_start_up_retries_give_up_with_one_line() -> None:
    from telegram import Bot

    bot = Bot(FakeBotAPI().token, base_url=f"http://127.0.0.1:{free_port()}/bot")
    with pytest.raises(StartupError) as failure:
        await startup.connect(bot, bot.base_url, attempts=3, first_delay=0.01)
    message = str(failure.value)
    assert "unreachable after 3 attempts" in message and "\n" not in message and bot.token not in message


def test_an_unwritable_data_dir_is_one_line(api: FakeBotAPI, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with unwritable(data):
        line = one_line(run_bot(api, data), api.token)
    assert line.startswith(f"error: DATA_DIR {data} is not writable")
    assert not api.calls_to("getMe")  # checked before anything else


def test_a_data_dir_under_a_file_is_one_line(api: FakeBotAPI, tmp_path: Path) -> None:
    (tmp_path / "volume").write_text("not a directory")
    data = tmp_path / "volume" / "data"
    line = one_line(run_bot(api, data), api.token)
    assert line.startswith(f"error: DATA_DIR {data} is not writable")


async def test_a_second_instance_on_the_same_data_refuses_naming_the_first(api: FakeBotAPI, tmp_path: Path) -> None:
    first = BotProcess(api, tmp_path, tmp_path / "first.log")
    try:
        await first.start()
        assert first.proc is not None
        result = await asyncio.to_thread(run_bot, api, tmp_path)
        line = one_line(result, api.token)
        assert f"is in use by bot pid {first.proc.pid} on {socket.gethostname()}" in line
        assert first.running  # the first one is untouched
    finally:
        assert await first.stop() == 0
        await first.close()


def test_the_webhook_port_in_use_is_one_line(api: FakeBotAPI, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot(
            api,
            tmp_path,
            WEBHOOK_URL="https://bot.example.org",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET="hook-secret-value-of-at-least-32-chars",
        )
    line = one_line(result, api.token, "hook-secret-value-of-at-least-32-chars")
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port} for the webhook (WEBHOOK_PORT)")


def create_database(path: Path) -> None:
    """A database at the current schema."""

    async def create() -> None:
        await (await Storage.open(path)).close()

    asyncio.run(create())


def newer_database(data_dir: Path) -> Path:
    path = data_dir / "gnlc.sqlite3"
    create_database(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1:d}")
    db.commit()
    db.close()
    return path


def test_a_database_of_newer_code_is_one_line_and_left_alone(api: FakeBotAPI, tmp_path: Path) -> None:
    path = newer_database(tmp_path)
    before = path.read_bytes()
    line = one_line(run_bot(api, tmp_path), api.token)
    assert line.startswith("error: database") and f"newer than this code (v{SCHEMA_VERSION})" in line
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.bak"))


def test_health_of_a_good_deployment(api: FakeBotAPI, tmp_path: Path) -> None:
    create_database(tmp_path / "gnlc.sqlite3")
    started = time.monotonic()
    result = run_bot(api, tmp_path, "health")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n" and result.stderr == ""
    assert time.monotonic() - started < 30


def test_health_fails_on_an_unwritable_directory(api: FakeBotAPI, tmp_path: Path) -> None:
    create_database(tmp_path / "gnlc.sqlite3")
    with unwritable(tmp_path):
        line = one_line(run_bot(api, tmp_path, "health"))
    assert line.startswith(f"unhealthy: DATA_DIR {tmp_path} is not writable")


def test_health_fails_on_a_newer_schema_and_a_missing_database(api: FakeBotAPI, tmp_path: Path) -> None:
    assert "no database" in one_line(run_bot(api, tmp_path, "health"))
    newer_database(tmp_path)
    line = one_line(run_bot(api, tmp_path, "health"))
    assert line.startswith("unhealthy: database") and "newer than this code" in line
