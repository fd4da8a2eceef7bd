"""A background write that gathers many requests into one run, a short delay after the first.

Rules of this module:
- `request` never waits and never does I/O: it only makes sure one run is scheduled.
- `settle` cancels a pending run and waits for a started one, so the owner can make the final
  run itself when stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Coalesced:
    """Runs `job` once, `delay` seconds after the first `request` since its last run."""

    def __init__(self, delay: float, job: Callable[[], Awaitable[None]]) -> None:
        self.delay = delay
        self.job = job
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    def request(self) -> None:
        """Make sure a run is scheduled (at most one is pending at a time)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._run)

    async def settle(self) -> None:
        """Cancel the pending run, if any, and wait for one already started."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running:
            await asyncio.wait(set(self._running))

    def _run(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._call())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _call(self) -> None:
        await self.job()
