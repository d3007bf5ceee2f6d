"""The webhook endpoints under attack (issue 12, items 3 and 5): weak secrets refused at start in one line,
refused requests logged without the value sent, replayed updates answered once, malformed, deep and
out-of-range bodies answered 400 (never 500), undecodable secret headers answered 403/401.

Telegram's webhook is the real python-telegram-bot application behind our aiohttp server, replying to the
fake Bot API (tests/fake_telegram.py); Zalo's is the channel's own app replying to tests/fake_zalo.py; the
dossier push is reminders.sources.PushServer. Requests are sent like the platforms send them."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram
from fake_zalo import FakeZalo

from channels import telegram as tg
from channels.runner import ChannelError, run_channels
from channels.webhooks import RecentIds, check_secret, parse_json
from channels.zalo import SECRET_HEADER as ZALO_HEADER
from channels.zalo import ZaloChannel
from reminders.sources import API_KEY_HEADER, PUSH_PATH, PushServer

SECRET = "s3cret_Token-42"
TG_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ZALO_TOKEN = "123456789:test-token"
PUSH_KEY = "push-key-0123456789"


async def raw_post(port: int, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """An HTTP POST written byte by byte (clients refuse to send a header that is not valid text); its status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json",
                b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
        head += [name + b": " + value for name, value in headers]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


# --------------------------------------------------------------------------- secrets at start

@pytest.mark.parametrize("secret", ["a", "short12", "", "x" * 257, "có-dấu-nhưng-đủ-dài", "with space 123", None])
def test_a_weak_or_invalid_secret_is_refused_at_start_in_one_line(secret):
    with pytest.raises(ChannelError) as refused:
        tg.Webhook("127.0.0.1", 0, "/telegram", "https://bot.example.gov.vn/telegram", secret)
    message = str(refused.value)
    assert "\n" not in message and "WEBHOOK_SECRET" in message and "8–256" in message
    assert secret is None or len(secret) < 4 or secret not in message  # the value itself is not repeated
    with pytest.raises(ChannelError):
        ZaloChannel.webhook_app(object.__new__(ZaloChannel), secret)


def test_a_good_secret_passes():
    assert check_secret("A" * 8) == "A" * 8 and check_secret("x_Y-9" * 50) == "x_Y-9" * 50


async def test_the_bot_refuses_to_start_webhooks_with_a_one_character_secret(router):
    """Through the runner as `bot.py run --webhook` uses it: a ChannelError (one line, exit 1), nothing served."""
    for channel, token in (("telegram", "telegram_bot_token"), ("zalo", "zalo_bot_token")):
        settings = make_settings(**{token: "123:abc"}, webhook_url="https://bot.example.gov.vn", webhook_secret="x",
                                 webhook_port=0)
        with pytest.raises(ChannelError) as refused:
            await run_channels(router, settings, [channel], webhook=True)
        assert "WEBHOOK_SECRET" in str(refused.value) and "\n" not in str(refused.value)


# --------------------------------------------------------------------------- Telegram

@pytest.fixture
async def telegram(router):
    async with FakeTelegram() as fake:
        app = tg.build_application(router, make_settings(telegram_bot_token=fake.token), base_url=fake.base_url, webhook=True)
        await tg.start(app, tg.Webhook("127.0.0.1", 0, "/telegram", "https://bot.example.gov.vn/telegram", SECRET))
        port = app.bot_data[tg.WEBHOOK_SERVER].port
        async with aiohttp.ClientSession() as http:
            yield fake, http, port
        await tg.stop(app)


async def _post(http: aiohttp.ClientSession, port: int, body, headers: dict | None = None, path: str = "/telegram") -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({TG_HEADER: SECRET} if headers is None else headers)
    async with http.post(f"http://127.0.0.1:{port}{path}", data=data, headers=headers) as response:
        return response.status


async def test_telegram_refused_requests_are_logged_without_the_secret(telegram, caplog):
    fake, http, port = telegram
    caplog.set_level(logging.DEBUG)
    assert await _post(http, port, fake.text_update(31, "/lienhe"), {}) == 403
    assert await _post(http, port, fake.text_update(31, "/lienhe"), {TG_HEADER: "guess_number_2"}) == 403
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2 and all(r.levelno == logging.WARNING for r in caplog.records if "refused" in r.getMessage())
    assert "no secret" in refused[0] and "wrong secret" in refused[1]
    assert not any("guess_number_2" in r.getMessage() for r in caplog.records)
    assert await _post(http, port, fake.text_update(32, "/lienhe")) == 200
    await fake.wait_messages(32, 1)
    assert fake.messages(31) == []


async def test_a_replayed_telegram_update_is_answered_once(telegram):
    fake, http, port = telegram
    update = fake.text_update(41, "/lienhe")
    assert await _post(http, port, update) == 200
    assert await _post(http, port, update) == 200  # acknowledged, so Telegram stops resending, but not handled
    assert await _post(http, port, fake.text_update(41, "/help")) == 200
    # One chat's updates are handled in order: once /help is answered, a second /lienhe would have been too.
    messages = await fake.wait_messages(41, 2)
    await fake.wait_for(lambda: any("/thutuc" in m.text for m in fake.messages(41)))
    contact = [m for m in fake.messages(41) if "Bộ phận Một cửa" in m.text and "/thutuc" not in m.text]
    assert len(contact) == 1, [m.text[:40] for m in messages]


BAD_BODIES = {
    "not JSON": b"{not json",
    "not UTF-8": b"\xff\xfe{}",
    "a list": b"[1, 2]",
    "deeply nested": b'{"update_id": 7, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "nested within the recursion limit": b'{"update_id": 8, "message": ' + b'{"a": ' * 500 + b"1" + b"}" * 500 + b"}",
    "no update_id": b'{"message": {}}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_malformed_telegram_bodies_are_a_400_with_one_log_line(telegram, caplog, name):
    fake, http, port = telegram
    caplog.set_level(logging.INFO)
    assert await _post(http, port, BAD_BODIES[name]) == 400
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "bad request" in lines[0].getMessage() and not lines[0].exc_info
    assert await _post(http, port, fake.text_update(51, "/lienhe")) == 200  # the server goes on serving
    await fake.wait_messages(51, 1)


@pytest.mark.parametrize("date", [10**20, -(10**20), "not a date"])
async def test_an_out_of_range_date_is_a_400_and_a_corrected_resend_is_handled(telegram, caplog, date):
    fake, http, port = telegram
    update = fake.text_update(61, "/lienhe")
    update["message"]["date"] = date
    assert await _post(http, port, update) == 400
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    update["message"]["date"] = 1_790_000_000
    assert await _post(http, port, update) == 200
    await fake.wait_messages(61, 1)


async def test_an_undecodable_telegram_secret_header_is_a_403(telegram):
    fake, _, port = telegram
    body = json.dumps(fake.text_update(71, "/lienhe")).encode()
    assert await raw_post(port, "/telegram", [(TG_HEADER.encode(), b"\xff\xfe\xc3(")], body) == 403
    assert await raw_post(port, "/telegram", [(TG_HEADER.encode(), SECRET.encode())], body) == 200
    await fake.wait_messages(71, 1)


async def test_the_telegram_webhook_server_answers_healthz(telegram):
    _, http, port = telegram
    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ok"


# --------------------------------------------------------------------------- Zalo

@pytest.fixture
async def zalo(router):
    fake = await FakeZalo(token=ZALO_TOKEN, poll_cap=1.0).start()
    channel = ZaloChannel(router, make_settings(zalo_bot_token=ZALO_TOKEN), base_url=fake.base_url, chat_rate=50.0, chat_burst=10)
    await channel.start_webhook("https://motcua.example.vn/zalo", SECRET, listen="127.0.0.1", port=0)
    port = channel._runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        yield fake, http, port
    await channel.stop()
    await fake.stop()


async def _zalo_post(http, port, body, secret: str | None = SECRET) -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({ZALO_HEADER: secret} if secret is not None else {})
    async with http.post(f"http://127.0.0.1:{port}/zalo", data=data, headers=headers) as response:
        return response.status


async def test_a_replayed_zalo_update_is_answered_once(zalo):
    fake, http, port = zalo
    update = {"ok": True, "result": fake.update("message.text.received", "chat-replay", text="/lienhe")}
    assert await _zalo_post(http, port, update) == 200
    assert await _zalo_post(http, port, update) == 200
    assert await _zalo_post(http, port, fake.update("message.text.received", "chat-replay", text="/help")) == 200
    # One chat's messages are answered in order: once /help is answered, a replayed /lienhe would have been too.
    await eventually(lambda: any("/thutuc" in m for m in fake.sent["chat-replay"]), what="the answer to /help")
    assert len([m for m in fake.sent["chat-replay"] if "/thutuc" not in m]) == 1, fake.sent["chat-replay"]


async def test_zalo_bad_bodies_and_undecodable_secrets(zalo, caplog):
    _, http, port = zalo
    deep = b'{"event_name": "x", "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert await _zalo_post(http, port, deep) == 400
    assert await _zalo_post(http, port, b"{not json") == 400
    assert await _zalo_post(http, port, {"message": {}}, secret="wrong-secret-value") == 403
    assert await raw_post(port, "/zalo", [(ZALO_HEADER.encode(), b"\xff\xfe\xc3(")], b"{}") == 403
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert not any("wrong-secret-value" in r.getMessage() for r in caplog.records)
    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
        assert response.status == 200


# --------------------------------------------------------------------------- the dossier push (X-API-Key)

@pytest.fixture
async def push(db, database_url):
    server = PushServer(make_settings(database_url, dossier_push_api_key=PUSH_KEY), db)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def test_an_undecodable_api_key_is_a_401_not_a_500(push):
    for key in (b"\xff\xfe", PUSH_KEY.encode() + b"\xff", b"\xc3("):
        assert await raw_post(push.port, PUSH_PATH, [(API_KEY_HEADER.encode(), key)], b"{}") == 401


async def test_deep_json_pushed_is_a_400_not_a_500(push):
    deep = b"[" * 100_000 + b"]" * 100_000
    assert await raw_post(push.port, PUSH_PATH, [(API_KEY_HEADER.encode(), PUSH_KEY.encode())], deep) == 400


# --------------------------------------------------------------------------- the pieces

def test_recent_ids_are_bounded_and_recognise_replays():
    recent = RecentIds(size=3)
    assert [recent.add(k) for k in ("1", "2", "1", "3", "4")] == [True, True, False, True, True]
    assert len(recent) == 3 and recent.add("1")  # the oldest was forgotten: memory stays bounded


def test_parse_json_limits_depth_without_recursion():
    assert parse_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    for body in (b"[" * 40 + b"]" * 40, b"[" * 10**6 + b"]" * 10**6, b"\xff", b""):
        with pytest.raises(ValueError):
            parse_json(body)
