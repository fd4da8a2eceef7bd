"""The Bot API transport: python-telegram-bot's HTTPX request, counting errors and shortening error pages.

Rules of this module:
- `BotApiRequest` overrides only the public `do_request` of python-telegram-bot's HTTPX transport.
- Every failed call is counted in `bot.metrics` by method name and kind (never anything else).
- A non-JSON error answer (a proxy's HTML "502 Bad Gateway" page) becomes a short JSON error, so
  python-telegram-bot raises its usual `NetworkError` with a short message instead of logging a
  traceback with the whole page; the caller that retries it logs the one WARNING line.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest, RequestData

from bot.metrics import API_429, API_ERRORS

# Names of Bot API methods as label values: only plain names, so a label can never carry anything else.
_METHOD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _method_of(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name if name and len(name) <= 40 and set(name) <= _METHOD_CHARS else "other"


def _error_kind(code: int) -> str:
    if code == 429:
        return "429"
    return "5xx" if code >= 500 else str(code) if code in (400, 401, 403, 404, 409) else "other"


class BotApiRequest(HTTPXRequest):
    """HTTPX transport that counts Bot API errors and shortens non-JSON error pages (see the module rules)."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        """Send the request; count a failure; give a non-JSON error body a short JSON form."""
        api_method = _method_of(url)
        try:
            code, payload = await super().do_request(
                url,
                method,
                request_data=request_data,
                read_timeout=read_timeout,
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
            )
        except TimedOut:
            API_ERRORS.labels(api_method, "timeout").inc()
            raise
        except NetworkError:
            API_ERRORS.labels(api_method, "network").inc()
            raise
        if code >= 300:
            API_ERRORS.labels(api_method, _error_kind(code)).inc()
            if code == 429:
                API_429.inc()
            if not _is_json(payload):
                description = f"{_phrase(code)} ({code}, the answer was not JSON: a proxy's error page)"
                payload = json.dumps({"ok": False, "error_code": code, "description": description}).encode()
        return code, payload


def _is_json(payload: bytes) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except ValueError:
        return False


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "HTTP error"
