"""Webhook mode on top of the durable inbox (`bot.telegram.inbox`): an update is acknowledged only once kept.

Rules of this module:
- Telegram POSTs each update to `/<url_path>` with the secret token in the
  `X-Telegram-Bot-Api-Secret-Token` header; a request without the right token gets 403 and is
  dropped, a body that is not an update gets 400.
- The 200 goes back only after `DurableInbox.accept` has committed the update, so an update in
  flight when the process dies is either redelivered by Telegram or replayed from the inbox.
- The server listens before setWebhook is called, so Telegram's first POST finds it; the secret
  is never logged. Given a health check, the same server answers GET /healthz and /metrics.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update
from telegram.ext import Application

from bot.monitoring import HealthCheck
from bot.monitoring import routes as monitoring_routes
from bot.startup import port_in_use
from bot.storage import Storage
from bot.telegram.inbox import DurableInbox

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1 << 20  # an update is a few kilobytes; Telegram's own messages stay far below this


class DurableWebhook:
    """Receives the updates Telegram POSTs and acknowledges each once the inbox holds it."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        storage: Storage,
        *,
        secret_token: str,
        url_path: str = "telegram",
        replays: dict[int, bool] | None = None,
        health: HealthCheck | None = None,
    ) -> None:
        self.app = app
        self.health = health
        self.inbox = DurableInbox(app, storage, replays)
        self.secret_token = secret_token
        self.url_path = url_path.strip("/")
        self._server: tornado.httpserver.HTTPServer | None = None

    async def start(self, *, listen: str, port: int, webhook_url: str, allowed_updates: list[str] | None) -> None:
        """Replay what the last run kept but did not finish, listen, then register the webhook."""
        await self.inbox.start()
        routes: list[Any] = [(rf"/{self.url_path}", _UpdateHandler, {"hook": self})]
        if self.health is not None:
            routes += monitoring_routes(self.health)  # GET /healthz and /metrics beside the webhook
        application = tornado.web.Application(routes, log_function=_log_request)
        self._server = tornado.httpserver.HTTPServer(application, max_body_size=MAX_BODY_BYTES, xheaders=True)
        try:
            self._server.listen(port, address=listen)
        except OSError as exc:
            self._server = None
            raise port_in_use("the webhook (WEBHOOK_PORT)", listen, port, exc) from None
        logger.info("webhook server listening on %s:%d/%s", listen, port, self.url_path)
        await self.app.bot.set_webhook(
            url=webhook_url,
            secret_token=self.secret_token,
            allowed_updates=allowed_updates,
            drop_pending_updates=False,
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting updates and let the ones being handled finish (they stay in the inbox if not)."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
        await self.inbox.stop(grace)

    def authorised(self, header: str | None) -> bool:
        """Whether a request carries this webhook's secret token (compared in constant time)."""
        return header is not None and hmac.compare_digest(header.encode(), self.secret_token.encode())


class _UpdateHandler(tornado.web.RequestHandler):
    """POST /<url_path>: one update from Telegram."""

    def initialize(self, hook: DurableWebhook) -> None:
        self.hook = hook

    async def post(self) -> None:
        if not self.hook.authorised(self.request.headers.get(SECRET_HEADER)):
            logger.warning("webhook request from %s without the secret token refused", self.request.remote_ip)
            self.send_error(403)
            return
        try:
            data = json.loads(self.request.body)
            update = Update.de_json(data, self.hook.app.bot) if isinstance(data, dict) else None
        except Exception as exc:  # python-telegram-bot raises all sorts on a malformed update
            logger.warning("webhook request with an unreadable body refused: %r", exc)
            update = None
        if update is None:
            self.send_error(400)
            return
        await self.hook.inbox.accept([update])  # kept before Telegram hears it arrived
        self.set_status(200)
        self.finish()


def _log_request(handler: tornado.web.RequestHandler) -> None:
    logger.debug("%d %s %.1f ms", handler.get_status(), handler.request.method, 1000 * handler.request.request_time())
