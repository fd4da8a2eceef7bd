"""The `/healthz` and `/metrics` endpoints, on the webhook's server or a server of their own.

Rules of this module:
- `/healthz` answers 200 `ok` or 503 with the one line of `bot.health` (nothing personal).
- `/metrics` serves `bot.metrics` in Prometheus' text format.
- In polling mode they are served only when METRICS_PORT is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST

from bot import health
from bot.metrics import exposition

logger = logging.getLogger(__name__)


HealthCheck = Callable[[], str | None]


def health_check(data_dir: Path, database: Path) -> HealthCheck:
    """The deployment's health check (see `bot.health`)."""
    return lambda: health.problem(data_dir, database)


class HealthHandler(tornado.web.RequestHandler):
    """GET /healthz: 200 `ok`, or 503 with the problem in one line."""

    def initialize(self, check: HealthCheck) -> None:
        self.check = check

    async def get(self) -> None:
        trouble = await asyncio.to_thread(self.check)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if trouble is None:
            self.finish("ok\n")
        else:
            self.set_status(503)
            self.finish(trouble + "\n")


class MetricsHandler(tornado.web.RequestHandler):
    """GET /metrics: Prometheus' text format."""

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(exposition())


def routes(check: HealthCheck) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The `/healthz` and `/metrics` routes for a tornado application."""
    return [(r"/healthz", HealthHandler, {"check": check}), (r"/metrics", MetricsHandler, {})]


class MetricsServer:
    """`/healthz` and `/metrics` on a port of their own (polling mode with METRICS_PORT)."""

    def __init__(self, check: HealthCheck) -> None:
        self.check = check
        self._server: tornado.httpserver.HTTPServer | None = None

    def start(self, listen: str, port: int) -> None:
        """Listen (raises OSError when the port cannot be opened)."""
        application = tornado.web.Application(routes(self.check), log_function=lambda handler: None)
        server = tornado.httpserver.HTTPServer(application)
        server.listen(port, address=listen)
        self._server = server
        logger.info("metrics and health on %s:%d (/metrics, /healthz)", listen, port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
