"""Progress bars for long commands (backup, restore, export-files, exports).

Rules of this module:
- A bar is drawn only when standard error is a terminal; in pipes, logs and cron nothing is written.
- Bars count bytes (with sizes shown in KB/MB) or items; they never show names of files or cities
  (those are personal data).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    """What long operations report to: how much more is done."""

    def update(self, n: float = 1) -> object:
        """Add `n` to what is done."""
        ...


class _Silent:
    def update(self, n: float = 1) -> object:
        return None


SILENT: Progress = _Silent()


def on_terminal() -> bool:
    """Whether a progress bar would be seen (standard error is a terminal)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


@contextmanager
def progress_bar(
    description: str, total: float | None, *, unit: str = "B", shown: bool | None = None
) -> Iterator[Progress]:
    """A bar on standard error when it is a terminal (or `shown`), else a silent counter."""
    if not (on_terminal() if shown is None else shown):
        yield SILENT
        return
    scaled = unit == "B"
    with tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=scaled,
        unit_divisor=1024 if scaled else 1000,
        file=sys.stderr,
        leave=True,
        dynamic_ncols=True,
    ) as bar:
        yield bar
