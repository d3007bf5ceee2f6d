"""The Telegram channel end to end: the real python-telegram-bot client, polling (or its webhook server),
talking over HTTP to the fake Bot API server of tests/fake_telegram.py. Assertions are on what the
user would see: the messages the fake received for their chat."""

from __future__ import annotations

import logging
import socket

import aiohttp
import pytest
from conftest import make_settings
from fake_telegram import FakeTelegram

import redaction
from channels import telegram as tg
from handlers import privacy
from handlers.answers import ASPECT_LABELS
from handlers.ask import AskState
from handlers.core import ONLY_TEXT
from handlers.messages import Button, Reply
from knowledge import staff
from knowledge.db import make_engine, migrate, session_factory
from knowledge.staff import Role
from nlp.aspects import Aspect


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


def _prepare(router):
    if "xoadulieu" not in router.commands:  # until handlers/__init__.py registers it
        privacy.register(router)
    return router


@pytest.fixture
async def bot(fake, router):
    """The real Telegram application, polling the fake."""
    app = tg.build_application(_prepare(router), make_settings(telegram_bot_token=fake.token), base_url=fake.base_url)
    await tg.start(app)
    yield app
    await tg.stop(app)


async def ask(fake, chat_id: int, text: str, count: int = 1):
    """Send a text and return the bot's new messages (at least `count`)."""
    before = len(fake.messages(chat_id))
    fake.push_text(chat_id, text)
    return (await fake.wait_messages(chat_id, before + count))[before:]


async def press(fake, chat_id: int, data: str, count: int = 1):
    before = len(fake.messages(chat_id))
    update = fake.push_callback(chat_id, data)
    new = (await fake.wait_messages(chat_id, before + count))[before:]
    answered = [c.params.get("callback_query_id") for c in fake.calls_to("answerCallbackQuery")]
    assert update["callback_query"]["id"] in answered, "every button press is answered (the spinner stops)"
    return new


def title(message) -> str:
    return message.text.split("\n", 1)[0]


# --------------------------------------------------------------------------- conversations

async def test_start_greets_and_sets_the_citizens_command_menu(fake, bot):
    [welcome] = await ask(fake, 1, "/start")
    assert welcome.text.startswith("Xin chào!") and "/thutuc" in welcome.text
    assert [c["command"] for c in fake.commands] == ["start", "help", "thutuc", "lienhe", "theodoi", "hoso", "dangky",
                                                     "huydangky", "canbo", "ketthuc", "xoadulieu"]
    assert all(c["description"] for c in fake.commands)
    assert fake.calls_to("deleteWebhook"), "polling starts by removing any webhook"
    assert all("parse_mode" not in c.params for c in fake.calls_to("sendMessage")), "plain text, nothing to escape"


async def test_a_question_with_and_without_diacritics_gets_the_same_answer(fake, bot):
    [with_marks] = await ask(fake, 2, "đăng ký khai sinh cần giấy tờ gì")
    [without] = await ask(fake, 3, "dang ky khai sinh can giay to gi")
    assert title(with_marks) == title(without) and title(with_marks).startswith("📋")
    assert "Giấy chứng sinh" in with_marks.text and with_marks.text == without.text
    assert "a:1.001193:fee" in with_marks.buttons
    assert with_marks.buttons[-2:] == ["fb:1.001193:up", "fb:1.001193:down"]
    assert with_marks.labels[-2:] == ["👍 Hữu ích", "👎 Chưa đúng"]


async def test_clarify_then_tap_a_choice_then_an_aspect_then_feedback(fake, bot, router):
    [question] = await ask(fake, 4, "khai sinh")
    choices = [d for d in question.buttons if d.startswith("a:")]
    assert len(choices) >= 2 and not any(d.startswith("fb:") for d in question.buttons), question.text
    assert "1. " in question.text and "2. " in question.text

    entry_id = choices[1].split(":")[1]
    [answer] = await press(fake, 4, choices[1])
    assert f"fb:{entry_id}:up" in answer.buttons
    name = router.context.catalog.get(entry_id)
    assert title(answer).startswith("📋") and name is not None

    fee_button = f"a:{entry_id}:fee"
    assert fee_button in answer.buttons
    [fee] = await press(fake, 4, fee_button)
    assert fee.text.split("\n\n", 1)[1].startswith(ASPECT_LABELS[Aspect.FEE]), fee.text[:300]

    [thanks] = await press(fake, 4, f"fb:{entry_id}:up")
    assert thanks.text.startswith("Cảm ơn bạn!")
    [noted] = await press(fake, 4, f"fb:{entry_id}:down")
    assert "góp ý" in noted.text


async def test_a_typed_number_right_after_the_question_is_taken_in_order(fake, bot):
    """Both updates arrive in one getUpdates: the chat's updates are handled one after the other."""
    fake.push_text(5, "khai sinh")
    fake.push_text(5, "2")
    question, answer = await fake.wait_messages(5, 2)
    assert answer.buttons and answer.buttons[-1].startswith("fb:"), answer.text[:200]
    second = [d for d in question.buttons if d.startswith("a:")][1].split(":")[1]
    assert answer.buttons[-1] == f"fb:{second}:down"


@pytest.mark.parametrize("payload", ["1_001193", "1.001193"])
async def test_a_deep_link_opens_its_entry(fake, bot, payload):
    """t.me/<bot>?start=1_001193 (a dot is not allowed in a start parameter) or the code typed by hand."""
    [answer] = await ask(fake, 6, f"/start {payload}")
    assert title(answer).startswith("📋") and "khai sinh" in title(answer).lower()
    assert "fb:1.001193:up" in answer.buttons


async def test_browse_and_contact_commands(fake, bot):
    [groups] = await ask(fake, 7, "/thutuc")
    assert groups.buttons and all(d.startswith("g:") for d in groups.buttons)
    [procedures] = await press(fake, 7, groups.buttons[0])
    entries = [d for d in procedures.buttons if d.startswith("a:")]
    assert entries and set(procedures.buttons) - set(entries) == {"gl"}, "the group's entries, and back to the groups"
    [contact] = await ask(fake, 7, "/lienhe")
    assert "Bộ phận Một cửa" in contact.text
    [unknown] = await ask(fake, 7, "/chuatraloi")  # a staff command: to a citizen just an unknown one
    assert unknown.text.startswith("Tôi chưa hiểu lệnh này")


async def test_xoadulieu_forgets_the_chat(fake, bot, router):
    await ask(fake, 8, "khai sinh")
    assert router.context.memory.get("telegram:8", AskState).choices
    [done] = await ask(fake, 8, "/xoadulieu")
    assert done.text.startswith("Đã xóa") and "câu hỏi gần nhất" in done.text
    state = router.context.memory.get("telegram:8", AskState)
    assert not (state.choices or state.last_question or state.last_entry_id)


# --------------------------------------------------------------------------- Telegram's limits

async def test_an_over_long_answer_is_split_with_the_buttons_under_the_last_part(fake, router):
    paragraph = "Bạn cần mang theo giấy tờ tùy thân bản chính và bản sao có chứng thực. " * 15
    long_text = "\n\n".join(f"{i}. {paragraph}" for i in range(10))[:9_999] + "."
    assert len(long_text) == 10_000
    oversized = "x" * 80  # beyond Telegram's 64 bytes of callback data
    buttons = [[Button("Lệ phí", "a:1.001193:fee"), Button("Quá dài", oversized)], [Button("👍", "fb:1.001193:up")]]
    router.command("dai", lambda incoming, context: [Reply(long_text, buttons)])
    app = tg.build_application(_prepare(router), make_settings(telegram_bot_token=fake.token), base_url=fake.base_url)
    await tg.start(app)
    try:
        fake.push_text(9, "/dai")
        await fake.wait_messages(9, 3)
        await fake.wait_for(lambda: fake.pending_updates == 0 and len(fake.calls_to("sendMessage", 9)) >= 3)
    finally:
        await tg.stop(app)
    parts = fake.messages(9)
    assert len(parts) == 3 and all(len(p.text) <= 4096 for p in parts)
    assert "".join(p.text for p in parts).replace("\n", "").replace(" ", "") == long_text.replace("\n", "").replace(" ", "")
    assert [p.reply_markup for p in parts[:-1]] == [None, None]
    assert parts[-1].buttons == ["a:1.001193:fee", "fb:1.001193:up"], "the over-long button is dropped, the rest kept"


async def test_a_429_is_waited_out_and_the_answer_delivered(fake, bot):
    fake.fail_next(10, "429")
    [answer] = await ask(fake, 10, "làm hộ chiếu mất bao lâu")
    attempts = fake.calls_to("sendMessage", 10)
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0, "retry_after is honoured"
    assert title(answer).startswith("📋")


async def test_a_5xx_is_retried(fake, bot):
    fake.fail_next(11, "502")
    [answer] = await ask(fake, 11, "/lienhe")
    assert [c.status for c in fake.calls_to("sendMessage", 11)] == [502, 200]
    assert "Bộ phận Một cửa" in answer.text


async def test_a_user_who_blocked_the_bot_is_logged_and_others_still_answered(fake, bot, caplog):
    caplog.set_level(logging.INFO, logger="channels.telegram")
    fake.block(12)
    fake.push_text(12, "khai sinh")
    fake.push_text(14, "/start 1_001193")
    [other] = await ask(fake, 13, "đăng ký kết hôn ở đâu")
    await fake.wait_messages(14, 1)
    await fake.wait_for(lambda: fake.calls_to("sendMessage", 12))
    assert title(other).startswith("📋")
    assert fake.messages(12) == [] and [c.status for c in fake.calls_to("sendMessage", 12)] == [403]
    blocked = redaction.chat_tag("telegram", 12)  # the chat is named by its tag above DEBUG, never by its id
    assert any("blocked" in r.getMessage() and blocked in r.getMessage() for r in caplog.records)
    fake.fail_next(15, "chat_not_found")
    fake.push_text(15, "/help")
    await fake.wait_for(lambda: fake.calls_to("sendMessage", 15))
    fake.clear_failures(12)  # unblocked: the conversation goes on
    [back] = await ask(fake, 12, "/help")
    assert back.text.startswith("Bạn có thể đặt câu hỏi")
    assert any("chat not found" in r.getMessage() for r in caplog.records)


async def test_a_photo_gets_the_text_only_reply(fake, bot):
    fake.push(fake.message_update(16, photo=[{"file_id": "p1", "file_unique_id": "up1", "width": 90, "height": 90}]))
    [reply] = await fake.wait_messages(16, 1)
    assert reply.text == ONLY_TEXT


# --------------------------------------------------------------------------- files

@pytest.fixture
def staff_router(catalog, tmp_path):
    """A router with a database (staff registry, imports) on the shared catalog; user 777 is an editor."""
    from handlers import build_router

    engine = make_engine(f"sqlite:///{tmp_path / 'staff.db'}")
    migrate(engine)
    db = session_factory(engine)
    with db.begin() as session:
        staff.add(session, "telegram", "777", Role.EDITOR)
    yield build_router(catalog, make_settings(), db)
    engine.dispose()


async def test_files_are_fetched_only_for_staff(fake, staff_router):
    app = tg.build_application(_prepare(staff_router), make_settings(telegram_bot_token=fake.token), base_url=fake.base_url)
    await tg.start(app)
    try:
        fake.push_document(17, "danh-sach.csv", b"id,kind\n", user_id=17)
        [citizen] = await fake.wait_messages(17, 1)
        assert citizen.text == ONLY_TEXT
        assert not fake.calls_to("getFile"), "nothing is downloaded for a citizen"

        fake.push_document(777, "bang-gia.csv", b"id,kind,name\nabc,procedure,\n", user_id=777)
        [checked] = await fake.wait_messages(777, 1)
        assert "bang-gia.csv" in checked.text
        assert fake.calls_to("getFile") and fake.calls_to("download"), "a staff file is fetched through getFile"

        fake.push_document(777, "lon.csv", b"x", user_id=777, file_size=21 * 1024 * 1024)
        [big] = (await fake.wait_messages(777, 2))[1:]
        assert "20 MB" in big.text and len(fake.calls_to("getFile")) == 1
    finally:
        await tg.stop(app)


# --------------------------------------------------------------------------- webhook

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_rejects_a_missing_or_wrong_secret_and_accepts_the_right_one(fake, router):
    port, secret = _free_port(), "s3cret_Token-42"
    hook = tg.Webhook("127.0.0.1", port, "/telegram", "https://bot.example.gov.vn/telegram", secret)
    app = tg.build_application(_prepare(router), make_settings(telegram_bot_token=fake.token), base_url=fake.base_url,
                               webhook=True)
    await tg.start(app, hook)
    url = f"http://127.0.0.1:{port}/telegram"
    try:
        assert fake.webhook == {"url": "https://bot.example.gov.vn/telegram", "secret_token": secret}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=fake.text_update(20, "/lienhe"), headers=headers) as response:
                    assert response.status == 403
            good = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(url, json=fake.text_update(21, "/lienhe"), headers=good) as response:
                assert response.status == 200
        [contact] = await fake.wait_messages(21, 1)
        assert "Bộ phận Một cửa" in contact.text
        assert fake.messages(20) == [] and not fake.calls_to("getUpdates")
    finally:
        await tg.stop(app)


def test_a_webhook_needs_a_valid_secret():
    for secret in ("", "có dấu", "x" * 257):
        with pytest.raises(ValueError):
            tg.Webhook("127.0.0.1", 8443, "telegram", "https://bot.example.gov.vn/telegram", secret)


def test_file_url_follows_the_base_url():
    assert tg.file_url_for("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"
    assert tg.file_url_for("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
