"""Start-up checks of the bot: DATA_DIR writable and locked, server ports free.

Rules of this module:
- Every failure is a `StartupError` whose message is one line saying what is wrong and what to
  do; `python -m bot` prints it on standard error and exits non-zero.
- One bot per DATA_DIR: the first takes an exclusive lock on `DATA_DIR/bot.lock` (held until the
  process ends, released by the system even after SIGKILL) and writes who it is into the file;
  a second instance refuses to start, naming the first.
- The Bot API side of start-up (token, reachability) is `bot.telegram.startup`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

LOCK_NAME = "bot.lock"


class StartupError(Exception):
    """The bot cannot start; the message is one line naming the problem and the remedy."""


def check_writable(data_dir: Path) -> None:
    """Create DATA_DIR if needed and make sure files can be written in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise StartupError(
            f"DATA_DIR {data_dir} is not writable ({exc.strerror or exc}); "
            "give the bot a writable persistent directory (set DATA_DIR)"
        ) from None


class DataDirLock:
    """An exclusive lock on DATA_DIR for the life of the process."""

    def __init__(self, data_dir: Path, purpose: str = "bot") -> None:
        self.path = data_dir / LOCK_NAME
        self.purpose = purpose
        self._fh: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise `StartupError` naming the process that holds it."""
        import fcntl

        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StartupError(
                f"DATA_DIR {self.path.parent} is in use by {holder}; stop that instance first "
                "(one bot per data directory)"
            ) from None
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{self.purpose} pid {os.getpid()} on {socket.gethostname()} since {started}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Give the lock up (the system does it anyway when the process ends)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.seek(0)
                self._fh.truncate()
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None


def prepare_data_dir(data_dir: Path, purpose: str = "bot") -> DataDirLock:
    """DATA_DIR checked writable and locked for this process."""
    check_writable(data_dir)
    return DataDirLock(data_dir, purpose).acquire()


def port_in_use(what: str, listen: str, port: int, exc: OSError) -> StartupError:
    """The one line for a server port that cannot be opened."""
    return StartupError(
        f"cannot listen on {listen}:{port} for {what} ({exc.strerror or exc}); "
        "another program uses that port: stop it or choose another port"
    )
