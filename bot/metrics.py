"""Prometheus metrics of the bot, in one registry.

Rules of this module:
- Metrics live in one registry of their own (`REGISTRY`); their only labels are Bot API method
  names and error kinds: never a user, chat, city or text (no personal data in any label).
- Counting is a few increments at points that exist anyway (receiving, handling, saving,
  reminding, each Bot API response); nothing here changes what the bot does.
- Served by `bot.monitoring` at `/metrics` (the webhook's server, or METRICS_PORT when polling).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
UPDATES_RECEIVED = Counter("gnlc_updates_received", "Updates received from Telegram and kept", registry=REGISTRY)
UPDATES_HANDLED = Counter("gnlc_updates_handled", "Updates handled (answered or failed)", registry=REGISTRY)
ANSWERS_STORED = Counter("gnlc_answers_stored", "Answers committed (new or changed)", registry=REGISTRY)
SUBMISSIONS = Counter("gnlc_submissions", "Reports submitted", registry=REGISTRY)
REMINDERS_SENT = Counter("gnlc_reminders_sent", "Deadline reminders sent", registry=REGISTRY)
API_ERRORS = Counter(
    "gnlc_bot_api_errors", "Bot API calls that failed, by method and kind", ["method", "kind"], registry=REGISTRY
)
API_429 = Counter("gnlc_bot_api_429", "Bot API calls refused by flood control (429)", registry=REGISTRY)
INBOX_BACKLOG = Gauge("gnlc_inbox_backlog", "Updates received and not yet handled", registry=REGISTRY)
HANDLER_SECONDS = Histogram(
    "gnlc_handler_seconds",
    "Time to handle one update, from the start of its handling to its replies sent",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)


def observe_handling(started: float) -> None:
    """One update handled, `started` being its `time.perf_counter()` at the start."""
    UPDATES_HANDLED.inc()
    HANDLER_SECONDS.observe(time.perf_counter() - started)
