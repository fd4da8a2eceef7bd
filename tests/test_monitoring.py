"""`/healthz` and Prometheus `/metrics` of a running bot, and transient Bot API errors in the log.

- Webhook mode (`python -m bot run` with WEBHOOK_URL): the webhook's own server answers
  `GET /healthz` and `GET /metrics`; the counters move as a contact answers, and no label or
  value carries a user id, a city or an answer.
- Polling mode serves the same on METRICS_PORT.
- A proxy's HTML 502 page and a dropped connection, retried by the bot, leave one WARNING line
  each and no traceback (python-telegram-bot used to log the whole page with a traceback).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.service import utc_now
from bot.storage import Storage
from tests.bot_process import bot_environment
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY, running_bot
from tests.test_startup_failures import free_port

SECRET = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret-of-at-least-thirty-two-characters"}


def scrape(text: str) -> dict[str, float]:
    """Sample name (with labels) -> value."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return values


def without_sample_values(text: str) -> str:
    """The exposition with each sample line's value (its last field) cut off."""
    kept = []
    for line in text.splitlines():
        kept.append(line if line.startswith("#") else line.rsplit(" ", 1)[0])
    return "\n".join(kept)


async def invitation(data_dir: Path, city: str) -> str:
    storage = await Storage.open(data_dir / "gnlc.sqlite3")
    try:
        report = await storage.find_or_create_report(SURVEY.id, city, "Germany", None, utc_now())
        return await storage.create_invitation(report.id, utc_now())
    finally:
        await storage.close()


def start_bot(api: FakeBotAPI, data_dir: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=bot_environment(api, data_dir, **env),
        cwd=data_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_bot(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err


def get(client: httpx.Client, url: str) -> httpx.Response:
    for _ in range(200):  # the server listens right after setWebhook / before polling
        try:
            return client.get(url)
        except httpx.ConnectError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered at {url}")


def test_webhook_mode_serves_healthz_and_metrics_that_follow_the_answers(tmp_path: Path) -> None:
    api = FakeBotAPI().start()
    city = "Metricstadt"
    token = asyncio.run(invitation(tmp_path, city))
    port = free_port()
    proc = start_bot(
        api,
        tmp_path,
        WEBHOOK_URL="https://bot.example.org",
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
        WEBHOOK_SECRET=SECRET["X-Telegram-Bot-Api-Secret-Token"],
    )
    base = f"http://127.0.0.1:{port}"
    user = 4321
    try:
        api.wait_for_call("setWebhook", timeout=30)
        with httpx.Client(timeout=10) as client:
            health = get(client, f"{base}/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")
            first = get(client, f"{base}/metrics")
            assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
            before = scrape(first.text)
            assert before["gnlc_updates_received_total"] == 0
            assert before["gnlc_inbox_backlog"] == 0

            def deliver(action: Any, *wanted: str) -> None:
                mark = api.mark()
                action()
                update = api.updates_sent()[-1]
                assert client.post(f"{base}/telegram", json=update, headers=SECRET).status_code == 200
                api.wait_until(lambda: all(w in "\n".join(api.bot_texts_since(mark, user)) for w in wanted), 15)

            deliver(lambda: api.send_text(user, f"/start {token}"), f"This report is for {city}")
            deliver(lambda: api.press(user, api.messages(user)[-1].message_id, button_text="Begin"), "website")
            deliver(lambda: api.send_text(user, "www.metricstadt.example.org"), "Date of joining")
            deliver(lambda: api.send_text(user, "03/2016"), "Mayor")
            # Handled counts once the handler returns, which is just after its reply was sent.
            after: dict[str, float] = {}
            for _ in range(100):
                text = get(client, f"{base}/metrics").text
                after = scrape(text)
                if after["gnlc_updates_handled_total"] >= 4:
                    break
                time.sleep(0.05)
    finally:
        err = stop_bot(proc)
        api.shutdown()
    assert proc.returncode == 0, err[-2000:]
    assert after["gnlc_updates_received_total"] == 4
    assert after["gnlc_updates_handled_total"] == 4
    assert after["gnlc_answers_stored_total"] - before["gnlc_answers_stored_total"] == 2
    assert after["gnlc_handler_seconds_count"] == 4
    assert after["gnlc_inbox_backlog"] == 0
    assert after["gnlc_submissions_total"] == 0
    assert "gnlc_bot_api_429_total" in after and "gnlc_reminders_sent_total" in after
    # No personal data anywhere in the exposition: not in a name, a label or a help text (the
    # sample values are numbers; a creation timestamp may well contain the digits 4321), and no
    # sample's value is the user's id.
    words = without_sample_values(text)
    for personal in (str(user), city, "metricstadt", "2016", token):
        assert personal not in words
    assert float(user) not in after.values()
    assert api.token not in err and "Traceback" not in err


def test_polling_mode_serves_metrics_on_metrics_port(tmp_path: Path) -> None:
    api = FakeBotAPI().start()
    port = free_port()
    proc = start_bot(api, tmp_path, METRICS_PORT=str(port), METRICS_LISTEN="127.0.0.1")
    try:
        api.wait_for_call("getUpdates", timeout=30)
        with httpx.Client(timeout=10) as client:
            assert get(client, f"http://127.0.0.1:{port}/healthz").text == "ok\n"
            mark = api.mark()
            api.send_text(5555, "hello")  # a stranger: answered politely, counted
            api.wait_until(lambda: api.bot_texts_since(mark, 5555), 15)
            values: dict[str, float] = {}
            for _ in range(100):
                values = scrape(get(client, f"http://127.0.0.1:{port}/metrics").text)
                if values["gnlc_updates_handled_total"] >= 1:
                    break
                time.sleep(0.05)
    finally:
        err = stop_bot(proc)
        api.shutdown()
    assert proc.returncode == 0, err[-2000:]
    assert values["gnlc_updates_received_total"] == 1 and values["gnlc_updates_handled_total"] == 1


async def test_a_502_page_and_a_dropped_connection_are_one_warning_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    from bot import metrics

    errors_before = metrics.API_ERRORS.labels("sendMessage", "5xx")._value.get()
    async with running_bot(tmp_path) as h:
        user = h.person(6101)
        token = await h.invite("Gatewayville", "Faultland")
        caplog.clear()
        h.api.fail_next("502", method="sendMessage")
        await user.send(f"/start {token}", "This report is for Gatewayville")
        h.api.fail_next("drop", method="sendMessage")
        # The question's request went out and its answer was lost: it may be on the contact's screen,
        # so it is not sent again (no duplicates); the contact's next message shows where they are.
        await user.press("Begin")
        await h.quiet()
        await user.send("/start", "Official city website address")
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not problems, [(r.name, r.levelname, r.getMessage()[:200]) for r in problems]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    gateway = [w for w in warnings if "Bad Gateway" in w]
    assert len(gateway) == 1 and "\n" not in gateway[0] and "<html>" not in gateway[0], warnings
    dropped = [w for w in warnings if "sendMessage" in w and w not in gateway]
    assert len(dropped) == 1 and "\n" not in dropped[0], warnings
    assert metrics.API_ERRORS.labels("sendMessage", "5xx")._value.get() == errors_before + 1


async def test_a_bot_api_down_through_every_retry_is_warnings_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.telegram.outputs import MAX_ATTEMPTS

    caplog.set_level(logging.DEBUG)
    async with running_bot(tmp_path) as h:
        user = h.person(6102)
        token = await h.invite("Downtown", "Faultland")
        caplog.clear()
        h.api.fail_next("502", method="sendMessage", times=MAX_ATTEMPTS)  # the reply fails every attempt
        mark = h.api.mark()
        h.api.send_text(user.user_id, f"/start {token}")
        # The contact is told something went wrong (that reply gets through) and can carry on.
        await user.expect(mark, "Something went wrong on our side")
        await user.send("/start", "This report is for Downtown")
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not problems, [(r.name, r.levelname, r.getMessage()[:200]) for r in problems]
    gave_up = [r.getMessage() for r in caplog.records if "update not answered" in r.getMessage()]
    assert len(gave_up) == 1 and "Bad Gateway" in gave_up[0]
