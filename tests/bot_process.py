"""Runs `python -m bot run` as a real subprocess against the fake Bot API, and kills it at will.

`BotProcess` starts the bot with the environment a deployment would give it (token, Bot API
URLs, data directory), tells when it is ready (its first `getUpdates` reached the fake), kills
it with SIGKILL (nothing is flushed, nothing is confirmed) and starts it again over the same
data directory and the same fake server, so updates it never confirmed are delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

from bot.settings import ENVIRONMENT_VARIABLES
from tests.fakes.bot_api import FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent


def bot_environment(api: FakeBotAPI, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process talking to `api` and keeping its data in `data_dir`."""
    # The bot's own variables must not leak in from the developer's shell.
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env.update(
        BOT_TOKEN=api.token,
        BOT_API_BASE_URL=api.base_url,
        BOT_API_FILE_URL=api.base_file_url,
        DATA_DIR=str(data_dir),
        REMINDERS_ENABLED="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class BotProcess:
    """One bot at a time, in a subprocess; `start` after `kill` resumes over the same data."""

    def __init__(self, api: FakeBotAPI, data_dir: Path, log_path: Path) -> None:
        self.api = api
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.generation = 0
        self.kills = 0
        # monotonic time at which the running process polled for the first time; None while down
        self.ready_at: float | None = None
        self._spawn_mark = 0
        self._log: IO[bytes] | None = None

    @property
    def live_mark(self) -> int | None:
        """The call-record index from which the running process's calls are recorded (None while down)."""
        return self._spawn_mark if self.running else None

    @property
    def running(self) -> bool:
        """Whether a bot process exists and has not exited."""
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 20.0) -> None:
        """Start a new bot process and wait until it polls for updates."""
        assert not self.running, "one bot at a time"
        self.generation += 1
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open across restarts, closed in close()
        self._log.write(f"--- generation {self.generation}\n".encode())
        self._log.flush()
        self._spawn_mark = self.api.mark()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=bot_environment(self.api, self.data_dir),
            cwd=str(self.data_dir),  # no stray .env file from the repository is read
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        await self._wait_ready(timeout)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.api.calls_to("getUpdates", since=self._spawn_mark):
            if not self.running:
                raise AssertionError(f"the bot exited during start-up; see {self.log_path}:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not poll within {timeout} s; see {self.log_path}")
            await asyncio.sleep(0.02)
        self.ready_at = time.monotonic()

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        self.ready_at = None
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            self.kills += 1
        self.proc = None

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful stop), SIGKILL if it takes longer than `timeout`; the exit code."""
        self.ready_at = None
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None

    async def close(self) -> None:
        """Kill whatever still runs and close the log."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self.proc = None
        self.ready_at = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Everything the bot processes wrote so far."""
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
