"""No secret in logs, exit messages or the database; chat ids and message text only at DEBUG.

The Bot API address answering with a redirect loop (as a misconfigured proxy did) makes every HTTP error
quote the request URL, and with it the token: the real channel and senders run against the fake server
doing exactly that."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from conftest import PROJECT_DIR, eventually, make_settings
from fake_telegram import Call, FakeTelegram
from sqlalchemy import select

import redaction
from broadcasts.dispatcher import Dispatcher
from broadcasts.models import BroadcastRow, DeliveryRow
from channels import telegram as tg
from channels.outbound import Outcome, TelegramSender
from reminders.dispatch import Claimed, outcome_values

TOKEN = "123456789:TEST-token-for-the-fake-server"
PERSONAL = "tôi tên Nguyễn Văn Bình, số điện thoại 0901234567, hỏi về khai sinh"
USER = 4242


class RedirectLoop(FakeTelegram):
    """The fake Bot API, with the methods in `looping` answered by a redirect to the same address."""

    looping: frozenset[str] = frozenset()

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"].lower() in self.looping:
            self.calls.append(Call(request.match_info["method"], {}, time.perf_counter(), 302))
            self._wake()
            raise web.HTTPFound(str(request.url))
        return await super()._api(request)


@pytest.fixture
def redacted(caplog):
    """The filter installed at startup (bot.py), on the handlers of this test, at every level."""
    caplog.set_level(logging.DEBUG)
    redaction.install(make_settings(telegram_bot_token=TOKEN))
    yield caplog
    redaction.uninstall()


def logged(caplog, level: int = logging.DEBUG) -> list[str]:
    """Everything the handlers received at `level` and above: messages and exception texts."""
    return [f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records if r.levelno >= level]


# --------------------------------------------------------------------------- the filter

def test_every_configured_secret_is_blanked_in_message_arguments_and_exception(caplog):
    caplog.set_level(logging.DEBUG)
    settings = make_settings("postgresql://motcua:pg-Pa55word@db.local/motcua", telegram_bot_token=TOKEN,
                             zalo_bot_token="zalo-secret-token-0001", webhook_secret="hook-secret-0002",
                             dossier_push_api_key="push-api-key-0003", zalo_oa_app_secret="oa-app-secret-0004",
                             zalo_oa_secret_key="oa-webhook-key-0005", zalo_oa_access_token="oa-access-0006",
                             zalo_oa_refresh_token="oa-refresh-0007")
    redaction.install(settings)
    try:
        log = logging.getLogger("motcua.test")
        log.warning("POST https://api.telegram.org/bot%s/sendMessage failed", TOKEN)
        log.warning("zalo %s, hook %s, key %s", "zalo-secret-token-0001", "hook-secret-0002", "push-api-key-0003")
        log.warning("zalo oa %s %s %s %s", "oa-app-secret-0004", "oa-webhook-key-0005", "oa-access-0006", "oa-refresh-0007")
        log.error("database %s", "postgresql://motcua:pg-Pa55word@db.local/motcua")
        log.info("another bot's URL: https://bot-api.zaloplatforms.com/bot99999:otherTOKENvalue/getUpdates")
        parameters = ("telegram", str(USER))
        try:
            raise RuntimeError(f"url='http://127.0.0.1:8081/bot{TOKEN}/getMe'\n[parameters: {parameters}]")
        except RuntimeError:
            log.exception("request failed")
    finally:
        redaction.uninstall()
    text = "\n".join(logged(caplog)) + caplog.text
    for secret in (TOKEN, "zalo-secret-token-0001", "hook-secret-0002", "push-api-key-0003", "pg-Pa55word",
                   "otherTOKENvalue", str(USER), "oa-app-secret-0004", "oa-webhook-key-0005", "oa-access-0006", "oa-refresh-0007"):
        assert secret not in text
    assert "/bot<redacted>/sendMessage" in text and "RuntimeError" in text, "what happened is still told"
    assert "https://bot-api.zaloplatforms.com/bot<redacted>/getUpdates" in text


# --------------------------------------------------------------------------- what is stored

async def test_an_outcome_reason_never_holds_the_token():
    async with RedirectLoop() as fake:
        fake.looping = frozenset({"sendmessage"})
        sender = TelegramSender(TOKEN, fake.base_url)
        try:
            delivery = await sender.send("4242", "Hồ sơ của bạn đã có kết quả.")
        finally:
            await sender.aclose()
    assert delivery.outcome is Outcome.TRANSIENT and "TooManyRedirects" in delivery.detail
    assert TOKEN not in delivery.detail
    claimed = Claimed(1, 1, "telegram", "4242", "000.00.12.H12-240506-0001", "x", attempts=6)
    values, _ = outcome_values(claimed, delivery, datetime.now(UTC))
    assert values["state"] == "undeliverable" and TOKEN not in values["reason"], "reminders.reason stays clean"


async def test_an_announcement_failing_on_a_redirect_loop_stores_no_token(db, database_url):
    with db.begin() as session:
        row = BroadcastRow(text="Nghỉ lễ", created_by="test", state="sending", recipients=1)
        session.add(row)
        session.flush()
        session.add(DeliveryRow(broadcast_id=row.id, channel="telegram", chat_id="4242", state="pending"))
        broadcast_id = row.id
    async with RedirectLoop() as fake:
        fake.looping = frozenset({"sendmessage"})
        sender = TelegramSender(TOKEN, fake.base_url)
        try:
            settings = make_settings(database_url, telegram_bot_token=TOKEN, broadcast_max_attempts=1)
            await Dispatcher(db, {"telegram": sender}, settings).deliver(broadcast_id)
        finally:
            await sender.aclose()
    with db() as session:
        [delivery] = session.scalars(select(DeliveryRow).where(DeliveryRow.broadcast_id == broadcast_id)).all()
    assert delivery.state == "failed" and "TooManyRedirects" in delivery.last_error
    assert TOKEN not in delivery.last_error


# --------------------------------------------------------------------------- the running channel

async def test_the_channel_logs_no_token_and_no_personal_data_above_debug(router, redacted):
    def broken(incoming, context):
        raise RuntimeError("a feature failed")

    router.command("hong", broken)
    async with RedirectLoop() as fake:
        app = tg.build_application(router, make_settings(telegram_bot_token=TOKEN), base_url=fake.base_url)
        await tg.start(app)
        try:
            fake.looping = frozenset({"sendmessage"})
            fake.push_text(USER, PERSONAL)
            fake.push_text(USER, "/hong")
            tag = redaction.chat_tag("telegram", USER)
            await eventually(lambda: sum("not sent after" in r.getMessage() for r in redacted.records) >= 2)
        finally:
            await tg.stop(app)
    everything = logged(redacted)
    assert not [line for line in everything if TOKEN in line], "the token at any level"
    warnings = [r for r in redacted.records if r.levelno >= logging.WARNING and r.name.startswith("channels")]
    assert any(tag in r.getMessage() and "TooManyRedirects" in r.getMessage() for r in warnings)
    assert any(tag in line and "a feature failed" in line for line in logged(redacted, logging.ERROR))
    above_debug = "\n".join(logged(redacted, logging.INFO))
    assert str(USER) not in above_debug and "0901234567" not in above_debug and "Nguyễn Văn Bình" not in above_debug
    assert any(str(USER) in line for line in everything), "DEBUG still says which chat, for the operator who asks"


async def test_the_exit_message_and_the_log_of_a_rejected_token_do_not_show_it(tmp_path):
    """`bot.py run` with a token the Bot API refuses: PTB's error quotes the token; the citizen's operator
    sees why it stopped, not the token (even at LOG_LEVEL=DEBUG)."""
    wrong = "987654321:WRONG-token-that-the-server-refuses"
    async with FakeTelegram() as fake:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": wrong, "TELEGRAM_API_BASE_URL": fake.base_url, "LOG_LEVEL": "DEBUG",
               "DATABASE_URL": f"sqlite:///{tmp_path / 'motcua.db'}", "CORE_WORKERS": "0", "ZALO_BOT_TOKEN": ""}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(PROJECT_DIR) / "bot.py"), "run", "--channel", "telegram", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 180)
    output = (out + err).decode("utf-8", "replace")
    assert process.returncode == 1, output[-2000:]
    assert "Không khởi động được Telegram" in output
    assert wrong not in output and "WRONG-token" not in output, output[-2000:]
