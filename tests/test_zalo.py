"""The Zalo channel end to end: the channel's own HTTP client long-polls a fake Zalo Bot API server on
127.0.0.1 (tests/fake_zalo.py) over real HTTP, the conversation core answers, and the tests read what
the user received. Webhook tests post to the channel's aiohttp app like the platform does."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time

import httpx
import pytest
from aiohttp import web
from conftest import Chat, eventually, make_settings, wait_until
from fake_zalo import FakeZalo

import redaction
from channels.zalo import MESSAGE_LIMIT, SECRET_HEADER, UNSUPPORTED_REPLY, RateLimiter, ZaloApiError, ZaloChannel, message_parts
from handlers.answers import ASPECT_LABELS, write_answer
from handlers.core import ONLY_TEXT
from handlers.messages import Button, Reply
from nlp.aspects import Aspect

TOKEN = "123456789:test-token"
SECRET = "webhook-secret-123"
KHAI_SINH = "📋 Làm giấy khai sinh cho con"
AMBIGUOUS = ["khai sinh", "giấy phép lái xe", "bằng lái", "thẻ căn cước", "sổ đỏ", "hộ khẩu", "làm lại thẻ"]


def channel_for(router, base_url: str, **options) -> ZaloChannel:
    """A channel tuned for tests: short polls and backoffs, limits loose enough for quick conversations."""
    defaults = dict(poll_timeout=1, backoff_base=0.05, backoff_max=0.3, chat_rate=50.0, chat_burst=10)
    defaults.update(options)
    return ZaloChannel(router, make_settings(zalo_bot_token=TOKEN), base_url=base_url, **defaults)


@pytest.fixture
async def fake():
    server = await FakeZalo(token=TOKEN, poll_cap=1.0).start()
    yield server
    await server.stop()


@pytest.fixture
async def zalo(router, fake):
    channel = channel_for(router, fake.base_url)
    await channel.start()
    yield channel
    await channel.stop()


async def say(fake: FakeZalo, chat_id: str, text: str, expect: int = 1) -> list[str]:
    """Send a text as the user of `chat_id`; the messages the bot sent back."""
    before = len(fake.sent[chat_id])
    fake.push_text(chat_id, text)
    return (await fake.wait_messages(chat_id, before + expect))[before:]


def choice(text: str, label: str) -> str:
    """The number to type for the choice whose label contains `label` (from the "Gõ số để chọn" list)."""
    listed = text.split("Gõ số để chọn:", 1)
    assert len(listed) == 2, f"no numbered choices in {text[-300:]!r}"
    for line in listed[1].splitlines():
        match = re.match(r"^(\d+)\. (.*)$", line.strip())
        if match and label in match.group(2):
            return match.group(1)
    raise AssertionError(f"{label!r} is not among the choices: {listed[1]!r}")


# --------------------------------------------------------------------------- conversations

async def test_start_welcomes_the_user(zalo, fake):
    [welcome] = await say(fake, "chat-start", "/start")
    assert welcome.startswith("Xin chào!")
    assert "/thutuc" in welcome
    assert fake.calls("getMe") and fake.calls("deleteWebhook"), "polling checks the token and removes a stale webhook"


async def test_a_question_with_and_without_diacritics_gets_the_same_answer(zalo, fake):
    [accented] = await say(fake, "chat-dau", "đăng ký khai sinh cần giấy tờ gì")
    [plain] = await say(fake, "chat-khong-dau", "dang ky khai sinh can giay to gi")
    for answer in (accented, plain):
        assert answer.startswith(KHAI_SINH)
        assert "Giấy chứng sinh" in answer
        assert "Gõ số để chọn:" in answer and "👍 Hữu ích" in answer, "buttons become numbered choices"
    assert accented.split("\n\n")[:2] == plain.split("\n\n")[:2]


async def test_a_clarifying_question_is_answered_by_typing_2(zalo, fake, router):
    probe = Chat(router, "probe", channel="probe")
    question = next((q for q in AMBIGUOUS if (r := probe.ask(q)).numbered and r.entry_id is None), None)
    assert question, "no ambiguous question gets a clarifying question"
    [clarify] = await say(fake, "chat-clarify", question)
    options = dict(re.findall(r"^(\d)\. (.+)$", clarify, re.MULTILINE))
    assert "1" in options and "2" in options, clarify
    [answer] = await say(fake, "chat-clarify", "2")
    assert answer.startswith(f"📋 {options['2']}"), answer[:120]


async def test_an_aspect_is_chosen_by_its_number(zalo, fake):
    [answer] = await say(fake, "chat-aspect", "đăng ký khai sinh cần giấy tờ gì")
    [fee] = await say(fake, "chat-aspect", choice(answer, "Lệ phí"))
    assert fee.startswith(KHAI_SINH)
    assert fee.split("\n\n")[1].startswith(f"{ASPECT_LABELS[Aspect.FEE]}:")


async def test_feedback_is_given_by_number(zalo, fake):
    [answer] = await say(fake, "chat-feedback", "lam ho chieu bao lau")
    [thanks] = await say(fake, "chat-feedback", choice(answer, "👎"))
    assert thanks.startswith("Cảm ơn bạn đã góp ý")
    [answer] = await say(fake, "chat-feedback-2", "lam ho chieu bao lau")
    [glad] = await say(fake, "chat-feedback-2", choice(answer, "👍"))
    assert glad.startswith("Cảm ơn bạn!")


@pytest.mark.parametrize("payload", ["1.001193", "1_001193"])
async def test_start_with_an_entry_opens_it(zalo, fake, payload):
    [answer] = await say(fake, f"chat-link-{payload}", f"/start {payload}")
    assert answer.startswith(KHAI_SINH)


async def test_an_over_long_answer_is_split_under_the_limit_and_its_choices_still_work(zalo, fake, router, catalog):
    long_text = "\n\n".join(write_answer(catalog.get(entry_id), (aspect,))
                            for entry_id in ("1.001193", "1.001456", "1.004222", "1.000894")
                            for aspect in (Aspect.OVERVIEW, Aspect.DOCUMENTS))
    assert len(long_text) > 3 * MESSAGE_LIMIT
    buttons = [[Button("👍 Hữu ích", "fb:1.001193:up"), Button("👎 Chưa đúng", "fb:1.001193:down")]]
    router.command("dai", lambda incoming, context: [Reply(long_text, buttons, entry_id="1.001193")], help="test")
    fake.push_text("chat-long", "/dai")
    await fake.wait_calls("sendMessage", 4)
    await asyncio.sleep(0.3)  # let any further parts arrive
    parts = fake.sent["chat-long"]
    assert len(parts) >= 4
    assert all(1 <= len(p) <= MESSAGE_LIMIT for p in parts), [len(p) for p in parts]
    assert not [r for r in fake.calls("sendMessage") if r.status != 200], "the server refused a part"
    joined = "\n".join(parts)
    for paragraph in long_text.split("\n\n"):
        assert paragraph.strip().splitlines()[0] in joined
    assert "Gõ số để chọn:" in parts[-1]
    [glad] = await say(fake, "chat-long", choice(parts[-1], "👍"))
    assert glad.startswith("Cảm ơn bạn!")


def test_parts_respect_the_limit_in_utf16_units_too():
    text = ("😀" * 900 + " ") * 4
    parts = message_parts(text)
    assert all(len(p.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


# --------------------------------------------------------------------------- failures

@pytest.mark.parametrize("in_body", [False, True], ids=["http-429", "429-in-an-http-200-body"])
async def test_a_429_is_retried_after_the_delay_it_asks(zalo, fake, in_body):
    fake.fail("sendMessage", 429, retry_after=0.3 if not in_body else None, in_body=in_body)
    [welcome] = await say(fake, "chat-429", "/start")
    assert welcome.startswith("Xin chào!")
    first, second = fake.calls("sendMessage", "chat-429")
    assert first.error_code == 429 and second.status == 200
    if not in_body:
        assert second.at - first.at >= 0.3


async def test_a_500_is_retried(zalo, fake):
    fake.fail("sendMessage", 500, times=2)
    [welcome] = await say(fake, "chat-500", "/start")
    assert welcome.startswith("Xin chào!")
    assert [r.error_code for r in fake.calls("sendMessage", "chat-500")] == [500, 500, None]


async def test_retries_are_bounded_and_give_up_quietly(zalo, fake, caplog):
    caplog.set_level(logging.WARNING, logger="channels.zalo")
    fake.fail("sendMessage", 503, times=10, chat_id="chat-down")
    fake.push_text("chat-down", "/start")
    [welcome] = await say(fake, "chat-up", "/start")
    assert welcome.startswith("Xin chào!")
    await eventually(lambda: "given up" in caplog.text, what="the channel giving up on the unreachable chat")
    assert len(fake.calls("sendMessage", "chat-down")) == zalo.max_attempts


async def test_polling_survives_errors_and_bad_updates(zalo, fake):
    fake.fail("getUpdates", 500, times=2)
    fake.fail("getUpdates", 429, retry_after=0.1)
    fake.push({"event_name": "message.text.received"})  # no message
    fake.push({"event_name": "message.text.received", "message": "garbage"})
    [welcome] = await say(fake, "chat-after-errors", "/start")
    assert welcome.startswith("Xin chào!")
    assert [r.error_code for r in fake.calls("getUpdates")][:3] == [500, 500, 429]


async def test_polling_survives_the_server_being_down(router):
    fake = await FakeZalo(token=TOKEN, poll_cap=1.0).start()
    port = fake.port
    await fake.stop()
    channel = channel_for(router, f"http://127.0.0.1:{port}")
    await channel.start()  # getMe fails with a network error: logged, polling starts anyway
    try:
        await asyncio.sleep(0.4)
        await fake.start(port)
        [welcome] = await say(fake, "chat-back", "/start")
        assert welcome.startswith("Xin chào!")
    finally:
        await channel.stop()
        await fake.stop()


async def test_a_user_who_blocked_the_bot_does_not_hold_up_the_others(zalo, fake, caplog):
    caplog.set_level(logging.WARNING, logger="channels.zalo")
    fake.block("chat-blocked")
    fake.push_text("chat-blocked", "dang ky khai sinh can giay to gi")
    [answer] = await say(fake, "chat-other", "dang ky khai sinh can giay to gi")
    assert answer.startswith(KHAI_SINH)
    await eventually(lambda: fake.calls("sendMessage", "chat-blocked"), what="the blocked chat's answer tried")
    [fee] = await say(fake, "chat-other", choice(answer, "Lệ phí"))  # later work done: a retry would have come by now
    assert ASPECT_LABELS[Aspect.FEE] in fee
    assert [r.error_code for r in fake.calls("sendMessage", "chat-blocked")] == [403], "a 403 is not retried"
    assert "cannot be reached" in caplog.text


@pytest.mark.parametrize("event, fields, expected", [
    ("message.sticker.received", {"sticker": "0e078a2fb66a5f34067b", "url": "https://zalo-api.zadn.vn/sticker.png"}, ONLY_TEXT),
    ("message.image.received", {"photo": "https://example.vn/anh.jpg", "caption": "cái này là gì"}, ONLY_TEXT),
    ("message.unsupported.received", {}, UNSUPPORTED_REPLY),
])
async def test_non_text_messages_get_a_polite_reply(zalo, fake, event, fields, expected):
    fake.push_event(event, "chat-media", **fields)
    [reply] = await fake.wait_messages("chat-media", 1)
    assert reply == expected


async def test_fifty_chats_at_once_are_all_answered(router, fake):
    channel = channel_for(router, fake.base_url, global_rate=30.0, global_burst=30, chat_rate=1.0, chat_burst=4)
    await channel.start()
    try:
        chats = [f"crowd-{i}" for i in range(50)]
        started = time.monotonic()
        for chat_id in chats:
            fake.push_text(chat_id, "lam cccd mat bao nhieu tien")
        for chat_id in chats:
            [answer] = await fake.wait_messages(chat_id, 1, timeout=60)
            assert answer.startswith("📋")
        # 30 at once, then 30 a second: the last ones wait for the bot-wide bucket.
        assert time.monotonic() - started >= (50 - 30) / 30 * 0.9
    finally:
        await channel.stop()


async def test_the_limiter_paces_one_chat_without_slowing_another(monkeypatch):
    limiter = RateLimiter(global_rate=None, global_burst=0, chat_rate=10.0, chat_burst=2)
    started = time.monotonic()
    for _ in range(5):
        await limiter.wait("busy")
    assert time.monotonic() - started >= 0.25
    # A fresh chat within the global budget does not wait at all (no sleep), however busy the machine is.
    slept: list[float] = []
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda delay, *a, **k: (slept.append(delay), real_sleep(delay, *a, **k))[1])
    await limiter.wait("quiet")
    assert slept == []
    monkeypatch.setattr(asyncio, "sleep", real_sleep)
    limiter.pause(0.2)
    paused = time.monotonic()
    await limiter.wait("quiet")
    assert time.monotonic() - paused >= 0.18


# --------------------------------------------------------------------------- webhook

@pytest.fixture
async def webhook(router, fake):
    channel = channel_for(router, fake.base_url)
    runner = web.AppRunner(channel.webhook_app(SECRET))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/zalo"
    async with httpx.AsyncClient() as http:
        yield http, url
    await runner.cleanup()
    await channel.stop()


async def test_the_webhook_refuses_a_missing_or_wrong_secret(webhook, fake):
    http, url = webhook
    update = {"ok": True, "result": fake.update("message.text.received", "chat-intruder", text="/start")}
    assert (await http.post(url, json=update)).status_code == 403
    assert (await http.post(url, json=update, headers={SECRET_HEADER: "wrong-secret-123"})).status_code == 403
    assert (await http.post(url, json=update, headers={SECRET_HEADER: ""})).status_code == 403
    # An update with the secret, sent after them, is answered: had the refused ones been queued, they would be too.
    allowed = {"ok": True, "result": fake.update("message.text.received", "chat-owner", text="/start")}
    assert (await http.post(url, json=allowed, headers={SECRET_HEADER: SECRET})).status_code == 200
    await fake.wait_messages("chat-owner", 1)
    assert not fake.sent["chat-intruder"]


async def test_the_webhook_rejects_malformed_bodies(webhook, fake):
    http, url = webhook
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    assert (await http.post(url, content=b"{not json", headers=headers)).status_code == 400
    assert (await http.post(url, content=b"\xff\xfe", headers=headers)).status_code == 400
    assert (await http.post(url, content=b"[1, 2]", headers=headers)).status_code == 400
    ignored = await http.post(url, json={"ok": True, "result": {"event_name": "message.unsupported.received"}}, headers=headers)
    assert ignored.status_code == 200


@pytest.mark.parametrize("wrapped", [True, False], ids=["ok-result-wrapper", "bare-update"])
async def test_the_webhook_answers_with_the_right_secret(webhook, fake, wrapped):
    http, url = webhook
    update = fake.update("message.text.received", "chat-hook", text="dang ky khai sinh can giay to gi")
    response = await http.post(url, json={"ok": True, "result": update} if wrapped else update, headers={SECRET_HEADER: SECRET})
    assert response.status_code == 200
    [answer] = await fake.wait_messages("chat-hook", 1)
    assert answer.startswith(KHAI_SINH)


async def test_webhook_mode_registers_the_url_and_secret(router, fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = channel_for(router, fake.base_url)
    await channel.start_webhook("https://motcua.example.vn/zalo", SECRET, listen="127.0.0.1", port=port)
    try:
        assert (fake.webhook_url, fake.webhook_secret) == ("https://motcua.example.vn/zalo", SECRET)
        async with httpx.AsyncClient() as http:
            update = {"ok": True, "result": fake.update("message.text.received", "chat-registered", text="/start")}
            response = await http.post(f"http://127.0.0.1:{port}/zalo", json=update, headers={SECRET_HEADER: SECRET})
        assert response.status_code == 200
        [welcome] = await fake.wait_messages("chat-registered", 1)
        assert welcome.startswith("Xin chào!")
    finally:
        await channel.stop()


def test_a_short_webhook_secret_is_refused(router):
    channel = ZaloChannel(router, make_settings(zalo_bot_token=TOKEN))
    with pytest.raises(ValueError):
        channel.webhook_app("short")


async def test_a_rejected_token_stops_the_start(router, fake):
    channel = ZaloChannel(router, make_settings(zalo_bot_token="999:wrong"), base_url=fake.base_url)
    try:
        with pytest.raises(ZaloApiError) as raised:
            await channel.start()
        assert raised.value.code == 401
        assert "999:wrong" not in str(raised.value)
    finally:
        await channel.stop()


async def test_messages_of_one_chat_are_answered_in_order(zalo, fake, router):
    probe = Chat(router, "probe-order", channel="probe")
    question = next((q for q in AMBIGUOUS if (r := probe.ask(q)).numbered and r.entry_id is None), None)
    fake.push_text("chat-order", question)
    fake.push_text("chat-order", "1")  # typed before the list arrived: still answers the list
    clarify, answer = await fake.wait_messages("chat-order", 2)
    first = re.search(r"^1\. (.+)$", clarify, re.MULTILINE).group(1)
    assert answer.startswith(f"📋 {first}")


async def test_serve_forever_polls_until_cancelled(router, fake):
    channel = channel_for(router, fake.base_url)
    task = asyncio.create_task(channel.serve_forever())
    try:
        [welcome] = await say(fake, "chat-forever", "/start")
        assert welcome.startswith("Xin chào!")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert channel._poll_task is None


async def test_a_slow_answer_shows_typing(router, fake, monkeypatch):
    channel = channel_for(router, fake.base_url, typing_after=0.05)
    handle = router.handle
    # The answer takes as long as it takes the channel to show "typing" (bounded, so a bug fails the test).
    slow = lambda incoming: (wait_until(lambda: fake.calls("sendChatAction", "chat-slow"), what="typing"), handle(incoming))[1]
    monkeypatch.setattr(router, "handle", slow)
    await channel.start()
    try:
        [welcome] = await say(fake, "chat-slow", "/start")
        assert welcome.startswith("Xin chào!")
        [typing] = fake.calls("sendChatAction", "chat-slow")
        assert typing.params["action"] == "typing"
    finally:
        await channel.stop()


async def test_logs_name_a_chat_by_its_tag_and_never_quote_its_words(zalo, fake, caplog):
    """Above DEBUG a chat is a short one-way tag: neither its id nor what the citizen wrote is logged."""
    caplog.set_level(logging.INFO)
    fake.block("zalo-user-5150")
    fake.push_text("zalo-user-5150", "tôi tên Lê Thị Hoa, sđt 0912345678, hỏi khai sinh")
    await eventually(lambda: "cannot be reached" in caplog.text, what="the blocked chat logged")
    above_debug = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    tag = redaction.chat_tag("zalo", "zalo-user-5150")
    assert tag in above_debug
    # The tag is random hex: one run in ten thousand it holds "5150" itself, which is no leak of the id.
    above_debug = above_debug.replace(tag, "chat#")
    assert "5150" not in above_debug and "0912345678" not in above_debug and "Lê Thị Hoa" not in above_debug
