"""Citizens following their dossiers in chat: /theodoi, /hoso, /huytheodoi, /tatnhac, asking in words,
/xoadulieu; and end to end over the fake Telegram server, a reminder arriving in the citizen's chat.

The dossiers carry the last 4 digits of the filer's phone (CODE) and ID number (OTHER): a chat gives them
before it sees or follows anything (tests/test_dossier_privacy.py tests what a stranger sees)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Chat, make_settings
from fake_telegram import FakeTelegram
from sqlalchemy import select

from channels import telegram as tg
from channels.outbound import TelegramSender
from handlers import build_router
from handlers.ask import STATUS
from reminders.dispatch import dispatch
from reminders.models import FollowRow, ReminderRow, VerificationRow
from reminders.scan import scan
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates

CODE = "000.00.12.H12-240506-0001"
OTHER = "000.00.12.H12-240506-0002"
PHONE = "4567"  # the last 4 digits of the phone number given when filing CODE
ID = "8901"  # ... of the ID number given when filing OTHER


@pytest.fixture
def db(db):
    """The test database with two dossiers the one-stop software reported."""
    in_days = datetime.now(UTC) + timedelta(days=5)
    with db() as session:
        apply_updates(session, [
            DossierUpdate(code=CODE, status=Status.PROCESSING, procedure="Đăng ký khai sinh", due_at=in_days, phone_last4=PHONE,
                          received_at=datetime.now(UTC) - timedelta(days=2),
                          given=frozenset({"procedure", "due_at", "received_at", "phone_last4"})),
            DossierUpdate(code=OTHER, status=Status.NEEDS_DOCUMENTS, procedure="Đăng ký thường trú", note="Giấy tờ chứng minh chỗ ở",
                          due_at=in_days, id_last4=ID, given=frozenset({"procedure", "due_at", "note", "id_last4"})),
        ], "test")
        session.commit()
    return db


@pytest.fixture
def track_router(catalog, db, database_url):
    return build_router(catalog, make_settings(database_url), db)


@pytest.fixture
def citizen(track_router) -> Chat:
    return Chat(track_router, chat_id="c-1", channel="console")


def follows(db) -> list[FollowRow]:
    with db() as session:
        return list(session.scalars(select(FollowRow)))


def test_follow_a_dossier_with_its_status_and_a_consent_line(citizen, db):
    reply = citizen.ask(f"/theodoi {CODE.lower()} {PHONE}")
    assert reply.text.startswith(f"Cảm ơn bạn đã xác nhận.\n\nĐã theo dõi hồ sơ {CODE}")
    assert "Đăng ký khai sinh" in reply.text and "đang được xử lý" in reply.text and "Ngày hẹn trả kết quả" in reply.text
    assert "Tôi lưu mã hồ sơ" in reply.text and "/huytheodoi" in reply.text and "/xoadulieu" in reply.text
    assert [f.dossier_code for f in follows(db)] == [CODE]
    assert citizen.ask(f"/theodoi {CODE}").text.startswith("Bạn đã theo dõi hồ sơ này rồi"), "verified once is enough"
    assert len(follows(db)) == 1


def test_the_digits_may_come_as_the_next_message_or_as_the_whole_number(citizen, db):
    asked = citizen.ask(f"/theodoi {CODE}")
    assert "gửi 4 số cuối" in asked.text and f"/theodoi {CODE} 1234" in asked.text
    assert follows(db) == []
    assert citizen.ask("0912 33 4567").text.startswith(f"Cảm ơn bạn đã xác nhận.\n\nĐã theo dõi hồ sơ {CODE}")
    citizen.ask(f"hồ sơ {OTHER} tới đâu rồi")
    reply = citizen.ask(f"số cuối CCCD là {' '.join(ID)}")
    assert "Giấy tờ chứng minh chỗ ở" in reply.text and f"Gõ /theodoi {OTHER}" in reply.text
    assert [f.dossier_code for f in follows(db)] == [CODE], "asking is not following"


@pytest.mark.parametrize("typed", ["12345", "000.00.12.H12-241306-0001", "000.00.12.H12-240506", "hồ sơ của tôi"])
def test_a_malformed_code_is_explained_and_nothing_stored(citizen, db, typed):
    reply = citizen.ask(f"/theodoi {typed}")
    assert "không đúng dạng" in reply.text and "000.00.12.H12-240506-0001" in reply.text
    assert follows(db) == []


def test_an_unknown_code_is_explained_and_nothing_stored(citizen, db):
    reply = citizen.ask("/theodoi 000.00.12.H12-240506-0999")
    assert "Chưa tìm thấy hồ sơ 000.00.12.H12-240506-0999" in reply.text and "kiểm tra lại mã" in reply.text
    assert follows(db) == []
    assert citizen.ask("/theodoi").text.startswith("Cách dùng: /theodoi")


def test_list_unfollow_mute(citizen, db):
    assert "chưa theo dõi hồ sơ nào" in citizen.ask("/hoso").text
    citizen.send(f"/theodoi {CODE} {PHONE}")
    citizen.send(f"/theodoi {OTHER} {ID}")
    listing = citizen.ask("/hoso").text
    assert f"1. {CODE} – Đăng ký khai sinh" in listing and "Đang xử lý" in listing
    assert f"2. {OTHER} – Đăng ký thường trú" in listing and "Yêu cầu bổ sung" in listing

    assert citizen.ask(f"/tatnhac {OTHER}").text.startswith(f"Đã tắt nhắc hồ sơ {OTHER}")
    assert "🔕 đã tắt nhắc" in citizen.ask("/hoso").text
    assert [f.muted for f in follows(db) if f.dossier_code == OTHER] == [True]
    assert citizen.ask(f"/batnhac {OTHER}").text.startswith("Đã bật lại nhắc")

    assert citizen.ask(f"/huytheodoi {CODE}").text.startswith(f"Đã ngừng theo dõi hồ sơ {CODE}")
    assert [f.dossier_code for f in follows(db)] == [OTHER]
    assert "không theo dõi hồ sơ" in citizen.ask(f"/huytheodoi {CODE}").text
    assert "chưa theo dõi hồ sơ" in citizen.ask(f"/tatnhac {CODE}").text


def test_asking_in_words_about_a_dossier(citizen):
    reply = citizen.ask(f"hồ sơ {CODE} của tôi tới đâu rồi, số điện thoại đuôi {PHONE}")
    assert "Đăng ký khai sinh" in reply.text and "đang được xử lý" in reply.text
    assert f"/theodoi {CODE}" in reply.text, "someone not following is told how to"
    assert "Giấy tờ chứng minh chỗ ở" in citizen.ask(f"ho so {OTHER.lower()} {ID} sao roi").text
    assert "không đúng dạng" in citizen.ask("hồ sơ 000.00.12.H12-2405-0001 của tôi đâu").text
    assert "Chưa tìm thấy" in citizen.ask("hồ sơ 000.00.12.H12-240506-0777 tới đâu rồi").text
    assert "gửi giúp tôi mã hồ sơ" in citizen.ask("hồ sơ của tôi tới đâu rồi").text
    citizen.send(f"/theodoi {CODE}")
    assert "Đăng ký khai sinh" in citizen.ask("hồ sơ của tôi tới đâu rồi").text, "verified by the code asked before"


def test_ordinary_questions_still_reach_the_knowledge_base(citizen):
    reply = citizen.ask("đăng ký khai sinh cần giấy tờ gì")
    assert reply.entry_id == "1.001193"
    assert "mã hồ sơ" not in citizen.ask("hồ sơ đăng ký khai sinh nộp thế nào").text, "a procedure question is not a dossier lookup"
    # A question about one's own dossier without its code is told how to follow it, not asked for the code.
    reply = citizen.ask("nộp hồ sơ xong chưa có kết quả thì làm sao")
    assert reply.entry_id == "tra-cuu-ho-so" or reply.text == STATUS, reply.text[:300]


def test_forget_me_deletes_the_chats_follows_and_verifications(citizen, db):
    citizen.send(f"/theodoi {CODE} {PHONE}")
    citizen.send(f"hồ sơ {OTHER} {ID} tới đâu rồi")  # verified without following
    reply = citizen.ask("/xoadulieu")
    assert "các hồ sơ bạn theo dõi" in reply.text
    assert follows(db) == []
    with db() as session:
        assert session.scalars(select(VerificationRow)).all() == []
    assert "Giấy tờ chứng minh chỗ ở" not in citizen.ask(f"hồ sơ {OTHER} tới đâu rồi").text, "the digits are asked again"


def test_help_lists_the_tracking_commands(citizen):
    text = citizen.ask("/help").text
    assert "/theodoi" in text and "/hoso" in text and "/huytheodoi" in text and "/tatnhac" in text


def test_without_a_database_the_commands_apologise(router):
    chat = Chat(router)
    assert "chưa được bật" in chat.ask(f"/theodoi {CODE}").text
    assert chat.ask("đăng ký khai sinh cần giấy tờ gì").entry_id == "1.001193"


# --------------------------------------------------------------------------- end to end over Telegram

@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


async def test_a_citizen_follows_on_telegram_and_the_reminder_arrives_in_their_chat(fake, track_router, db, database_url):
    # No quiet hours, so the message goes out whenever the test runs.
    settings = make_settings(database_url, telegram_bot_token=fake.token, quiet_hours_start="00:00", quiet_hours_end="00:00")
    app = tg.build_application(track_router, settings, base_url=fake.base_url)
    await tg.start(app)
    sender = TelegramSender(fake.token, fake.base_url)
    try:
        fake.push_text(4242, f"/theodoi {CODE}")
        [asked] = await fake.wait_messages(4242, 1)
        assert "4 số cuối" in asked.text and "Đăng ký khai sinh" not in asked.text
        fake.push_text(4242, PHONE)
        [reply] = (await fake.wait_messages(4242, 2))[1:]
        assert f"Đã theo dõi hồ sơ {CODE}" in reply.text
        fake.push_text(5151, f"/theodoi {CODE} {PHONE}")
        await fake.wait_messages(5151, 1)
        fake.block(5151)  # this citizen blocks the bot afterwards

        now = datetime.now(UTC) + timedelta(seconds=1)
        with db() as session:
            apply_updates(session, [DossierUpdate(code=CODE, status=Status.RESULT_READY)], "import:test.csv", now)
            session.commit()
        moment = now + timedelta(seconds=1)
        await asyncio.to_thread(scan, db, settings, moment)
        result = await dispatch(db, {"telegram": sender}, settings, moment)
        assert result.sent == 1 and result.undeliverable == 1
        [reminder] = (await fake.wait_messages(4242, 3))[2:]
        assert f"Hồ sơ {CODE} (Đăng ký khai sinh) đã có kết quả" in reminder.text
        assert "/tatnhac" in reminder.text
        with db() as session:
            rows = {r.chat_id: r for r in session.scalars(select(ReminderRow).where(ReminderRow.kind == "result_ready"))}
        assert rows["4242"].state == "sent"
        assert rows["5151"].state == "undeliverable" and "chặn bot" in rows["5151"].reason
    finally:
        await sender.aclose()
        await tg.stop(app)


# --------------------------------------------------------------------------- Zalo: what could not be sent, and why

async def test_reminders_over_zalo_record_what_the_platform_refused(db, database_url):
    from fake_zalo import FakeZalo

    from channels.outbound import ZaloSender
    from reminders.store import follow, verify

    fake = await FakeZalo().start()
    sender = ZaloSender(fake.token, fake.base_url)
    settings = make_settings(database_url, quiet_hours_start="00:00", quiet_hours_end="00:00")
    try:
        with db() as session:
            for chat in ("z-ok", "z-blocked", "z-refused"):
                verify(session, "zalo", chat, CODE)
                follow(session, "zalo", chat, CODE)
            session.commit()
        fake.block("z-blocked")
        fake.fail("sendMessage", 400, chat_id="z-refused", times=5)
        now = datetime.now(UTC) + timedelta(seconds=1)
        with db() as session:
            apply_updates(session, [DossierUpdate(code=CODE, status=Status.RESULT_READY)], "push", now)
            session.commit()
        moment = now + timedelta(seconds=1)
        await asyncio.to_thread(scan, db, settings, moment)
        result = await dispatch(db, {"zalo": sender}, settings, moment)
        assert result.sent == 1 and result.undeliverable == 2
        [text] = await fake.wait_messages("z-ok", 1)
        assert f"Hồ sơ {CODE} (Đăng ký khai sinh) đã có kết quả" in text
        with db() as session:
            rows = {r.chat_id: r for r in session.scalars(select(ReminderRow).where(ReminderRow.kind == "result_ready"))}
        assert rows["z-ok"].state == "sent"
        assert rows["z-blocked"].state == "undeliverable" and "chặn bot" in rows["z-blocked"].reason
        assert rows["z-refused"].state == "undeliverable" and "Zalo" in rows["z-refused"].reason
    finally:
        await sender.aclose()
        await fake.stop()
