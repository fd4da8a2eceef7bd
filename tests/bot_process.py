"""A bot in a child process, talking real HTTP to the fake Bot API; started, killed and restarted at will.

`BotProcess` is the one way the tests and the benchmarks run a bot in its own process. By default
it runs `python -m bot run` with the environment a deployment would give it (token, Bot API URLs,
data directory), tells when it is ready (its first `getUpdates` reached the fake), kills it with
SIGKILL (nothing is flushed, nothing is confirmed), stops it with SIGTERM, and starts it again
over the same data directory and the same fake server, so updates it never confirmed are
delivered again. Every generation writes to one log file.

The benchmarks give their own `command` (`python -m bench.botproc ...`) and use the blocking side:
`with bot:` starts the child and waits for its "READY" line, `ask` sends it one line and reads one
back, leaving sends "quit". The tests' `start`, `kill` and `stop` are coroutines that never block
the event loop, so the contacts a test plays go on while the bot starts and stops.

The bot's own environment variables never leak in from the developer's shell: what is tested or
measured does not depend on who runs it. Nothing here imports pytest (the benchmarks use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bot.settings import ENVIRONMENT_VARIABLES
from tests.fakes.bot_api import FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.02  # seconds between two looks at the child or the fake while waiting


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the bot's own variables, with this repository importable."""
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def bot_environment(api: FakeBotAPI, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process talking to `api` and keeping its data in `data_dir`."""
    deployment = {
        "BOT_TOKEN": api.token,
        "BOT_API_BASE_URL": api.base_url,
        "BOT_API_FILE_URL": api.base_file_url,
        "DATA_DIR": str(data_dir),
        "REMINDERS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    return child_environment(**{**deployment, **extra})


class BotProcess:
    """One bot child process at a time; `start` after `kill` or `stop` resumes over the same data.

    Without `command`, the child is `python -m bot run` in `data_dir` (so no stray .env file from
    the repository is read) with `bot_environment`. With `command` (the benchmarks'), it runs in
    the repository with `child_environment`: the command line carries the rest, its data
    directory included (`data_dir` is then only where the caller keeps its files).
    """

    def __init__(self, api: FakeBotAPI, data_dir: Path, log_path: Path, command: Sequence[str] | None = None) -> None:
        self.api = api
        self.data_dir = data_dir
        self.log_path = log_path
        self.command = list(command) if command is not None else [sys.executable, "-m", "bot", "run"]
        self._own_command = command is not None
        self.name = " ".join(self.command[2:4])  # "bot run", "bench.botproc ours" ...
        self.proc: subprocess.Popen[str] | None = None
        self.generation = 0
        self.kills = 0
        # monotonic time at which the running process polled for the first time; None while down
        self.ready_at: float | None = None
        self._spawn_mark = 0
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------ the child

    @property
    def live_mark(self) -> int | None:
        """The call-record index from which the running process's calls are recorded (None while down)."""
        return self._spawn_mark if self.running else None

    @property
    def running(self) -> bool:
        """Whether a bot process exists and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, *, talk: bool) -> None:
        """Start the child; with `talk`, its standard input and output are lines to and from us."""
        assert not self.running, "one bot at a time"
        self.generation += 1
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open across restarts, closed in close()
        self._log.write(f"--- generation {self.generation}\n".encode())
        self._log.flush()
        self._spawn_mark = self.api.mark()
        self.proc = subprocess.Popen(
            self.command,
            env=child_environment() if self._own_command else bot_environment(self.api, self.data_dir),
            cwd=str(ROOT if self._own_command else self.data_dir),
            stdin=subprocess.PIPE if talk else subprocess.DEVNULL,
            stdout=subprocess.PIPE if talk else self._log,
            stderr=self._log,
            text=True,
        )

    async def _exited(self, proc: subprocess.Popen[str], timeout: float) -> int | None:
        """The exit code once `proc` has ended; None if it still runs after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(POLL / 2)
        return proc.returncode

    # ------------------------------------------------------------ the tests' side (coroutines)

    async def start(self, timeout: float = 20.0) -> None:
        """Start a new bot process and wait until it polls for updates."""
        self._spawn(talk=False)
        deadline = time.monotonic() + timeout
        while not self.api.calls_to("getUpdates", since=self._spawn_mark):
            if not self.running:
                raise AssertionError(f"the bot exited during start-up; see {self.log_path}:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not poll within {timeout} s; see {self.log_path}")
            await asyncio.sleep(POLL)
        self.ready_at = time.monotonic()

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        self.ready_at = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            await self._exited(proc, math.inf)
            self.kills += 1

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful stop), SIGKILL if it takes longer than `timeout`; the exit code."""
        self.ready_at = None
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        code = await self._exited(proc, timeout)
        if code is None:
            proc.kill()
            await self._exited(proc, math.inf)
        return code

    async def close(self) -> None:
        """Kill whatever still runs and close the log."""
        proc, self.proc = self.proc, None
        self.ready_at = None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await self._exited(proc, math.inf)
        self._close_log()

    # ------------------------------------------------------------ the benchmarks' side (blocking)

    def __enter__(self) -> BotProcess:
        """Start the child and wait for its "READY" line."""
        if self.proc is None:
            self._spawn(talk=True)
            line = self.readline(90.0)
            if line != "READY":
                raise RuntimeError(f"{self.name} did not start: {line!r}\n{self.log_tail()}")
            self.ready_at = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        """Send "quit" and wait for the child to end (SIGKILL after 30 s)."""
        proc, self.proc = self.proc, None
        self.ready_at = None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        self._close_log()

    def readline(self, timeout: float) -> str:
        """The child's next line on standard output (the child is killed if none comes in `timeout` s)."""
        assert self.proc is not None and self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            raise RuntimeError(f"{self.name} ended (exit {self.proc.poll()})\n{self.log_tail()}")
        return line.strip()

    def ask(self, request: str, timeout: float = 60.0) -> str:
        """Send one line to the child, return its answer line."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self.readline(timeout)

    # ------------------------------------------------------------ the log

    def _close_log(self) -> None:
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

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def errors_logged(self) -> list[str]:
        """ERROR and Traceback lines the bot processes logged."""
        return [line for line in self.log_text().splitlines() if "ERROR" in line or line.startswith("Traceback")]
