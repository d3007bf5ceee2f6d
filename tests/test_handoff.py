"""Handing a chat to an officer, the chat side and the store: asking, the bot silent meanwhile, the officer's
reply delivered by the service, ending, rating, /xoadulieu; office hours; two officers never claim one chat."""

from __future__ import annotations

import re

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_settings

from app import build_app
from channels.outbound import ConsoleSender, Delivery, Outcome
from handlers import handoff as chat_side
from handlers.messages import Incoming
from handoff.actions import HandoffButton, RatingButton
from handoff.hours import HoursError, OfficeHours
from handoff.service import HandoffService
from knowledge import handoff_store as store

ALWAYS = "T2-CN 00:00-24:00"


@pytest.fixture
def bot(database_url):
    app = build_app(make_settings(database_url, handoff_hours=ALWAYS, office_name="Bộ phận Một cửa xã A"))
    yield app
    app.close()


def say(bot, text: str, chat: str = "c1", channel: str = "console", **kwargs):
    return bot.router.handle(Incoming(channel, chat, chat, text, **kwargs))


def press(bot, data: str, chat: str = "c1", channel: str = "console"):
    return bot.router.handle(Incoming(channel, chat, chat, "", button=data))


class Recorder(ConsoleSender):
    def __init__(self, channel: str = "console") -> None:
        super().__init__(echo=False)
        self.channel = channel
        self.buttons: list = []

    async def send(self, chat_id, text, buttons=None):
        self.buttons.append(buttons)
        return await super().send(chat_id, text, buttons)


async def delivered(bot, sender: Recorder) -> list[tuple[str, str]]:
    service = HandoffService(bot.settings, bot.db)
    service.senders = {sender.channel: sender}
    await service.deliver()
    return sender.sent


# --------------------------------------------------------------------------- office hours

def test_office_hours_say_when_an_officer_answers_skipping_weekends_and_holidays():
    hours = OfficeHours.parse("T2-T6 07:30-11:30,13:30-17:00; T7 07:30-11:30", "14/12/2026, 2026-12-15")
    zone = hours.zone
    saturday_noon = datetime(2026, 12, 12, 12, 0, tzinfo=zone)  # a Saturday, after its morning hours
    assert not hours.is_open(saturday_noon)
    assert hours.next_opening(saturday_noon) == datetime(2026, 12, 16, 7, 30, tzinfo=zone)  # Mon, Tue are holidays
    lunch = datetime(2026, 12, 11, 12, 0, tzinfo=zone)  # Friday lunch break
    assert not hours.is_open(lunch) and hours.next_opening(lunch) == datetime(2026, 12, 11, 13, 30, tzinfo=zone)
    assert hours.is_open(datetime(2026, 12, 11, 9, 0, tzinfo=zone))
    assert OfficeHours.parse(ALWAYS).is_open(datetime(2026, 12, 13, 23, 59, 59, tzinfo=zone))


@pytest.mark.parametrize("hours, holidays, said", [
    ("T2-T6", "", "thiếu giờ"), ("T2-T9 07:00-11:00", "", "không phải ngày"), ("T2 11:00-07:00", "", "phải sau"),
    ("T2 7h-11h", "", "HH:MM"), ("T2 07:00-11:00", "31/02/2026", "HANDOFF_HOLIDAYS"), ("", "", "trống"),
])
def test_office_hours_that_do_not_read_are_refused_with_the_reason(hours, holidays, said):
    with pytest.raises(HoursError, match=said):
        OfficeHours.parse(hours, holidays)


# --------------------------------------------------------------------------- the conversation

def test_asking_for_an_officer_queues_the_chat_with_the_recent_exchange_and_silences_the_bot(bot):
    [unknown] = say(bot, "thủ tục nuôi khủng long cảnh")
    assert unknown.outcome == "not_understood"
    assert unknown.buttons[-1][0].data == HandoffButton().pack(), "'Hỏi cán bộ' under an 'I don't know'"
    [told] = say(bot, "cho tôi nói chuyện với người thật")
    assert "vị trí số 1" in told.text and "ít phút" in told.text
    [second] = press(bot, HandoffButton().pack(), chat="c2")
    assert "vị trí số 2" in second.text
    assert say(bot, "Tôi cần hỏi về hồ sơ đất đai") == [], "the bot is silent while waiting for an officer"
    assert say(bot, "lệ phí làm căn cước bao nhiêu") == []
    [again] = say(bot, "/canbo")
    assert "hàng chờ" in again.text and "vị trí số 1" in again.text
    with bot.db() as session:
        handoff = store.open_handoff(session, "console", "c1")
        said = [(m.kind, m.text) for m in store.messages_of(session, handoff.id)]
    assert said[0] == (store.HISTORY_CITIZEN, "thủ tục nuôi khủng long cảnh")
    assert said[1][0] == store.HISTORY_BOT and said[1][1].startswith("Xin lỗi, tôi chưa tìm thấy")
    assert (store.CITIZEN, "Tôi cần hỏi về hồ sơ đất đai") in said and (store.CITIZEN, "lệ phí làm căn cước bao nhiêu") in said


def test_only_short_requests_for_a_person_open_a_hand_off():
    assert chat_side.is_request("gặp cán bộ") and chat_side.is_request("gap can bo")
    assert chat_side.is_request("cho tôi nói chuyện với người thật") and chat_side.is_request("Hỏi cán bộ")
    assert not chat_side.is_request("làm thẻ căn cước")
    assert not chat_side.is_request("thủ tục đăng ký kết hôn cần những giấy tờ gì và phải gặp cán bộ tư pháp ở đâu vậy ạ")


async def test_the_officers_reply_reaches_the_citizen_who_ends_and_rates(bot):
    say(bot, "gặp cán bộ")
    with bot.db() as session:
        handoff = store.open_handoff(session, "console", "c1")
        store.officer_reply(session, handoff.id, "telegram:777", "Chào anh, hồ sơ của anh cần thêm bản sao CCCD.")
    sender = Recorder()
    assert await delivered(bot, sender) == [("c1", "👤 Cán bộ trả lời:\nChào anh, hồ sơ của anh cần thêm bản sao CCCD.")]
    assert say(bot, "Cảm ơn cán bộ") == [], "still silent while the officer handles the chat"
    ended, prompt = say(bot, "/ketthuc")
    assert "Đã kết thúc" in ended.text and "1 (rất không hài lòng) đến 5" in prompt.text
    assert prompt.buttons[0][0].data.startswith(RatingButton.prefix + ":")
    [thanks] = say(bot, "4")
    assert "4/5" in thanks.text
    [answer] = say(bot, "lệ phí làm căn cước bao nhiêu")
    assert answer.outcome == "answered", "after rating, a question is a question, not a comment"
    [noted] = say(bot, "Góp ý: Cán bộ trả lời nhanh, rất tận tình")
    assert "Cảm ơn góp ý" in noted.text
    with bot.db() as session:
        [rating] = session.query(store.RatingRow).all()
        assert (rating.score, rating.source, rating.comment) == (4, "handoff", "Cán bộ trả lời nhanh, rất tận tình")
        assert rating.month == datetime.now(UTC).astimezone(OfficeHours.parse(ALWAYS).zone).strftime("%Y-%m")
        # A keyed hash, not the chat: (a bare "c1" could be two hex digits of any hash)
        assert "console:c1" not in rating.chat_hash and re.fullmatch(r"[0-9a-f]{16,}", rating.chat_hash)
    [gone] = say(bot, "/xoadulieu")
    assert "cán bộ và đánh giá" in gone.text
    with bot.db() as session:
        assert session.query(store.RatingRow).count() == 0 and session.query(store.HandoffRow).count() == 0


async def test_an_officer_closing_tells_the_citizen_and_an_unanswered_close_asks_no_rating(bot):
    from handoff import actions

    say(bot, "gặp cán bộ")
    with bot.db() as session:
        handoff = store.open_handoff(session, "console", "c1")
        assert actions.end(session, handoff.id, "web:1", bot.settings, datetime.now(UTC), notify=actions.CLOSED_BY_OFFICER)
        assert actions.end(session, handoff.id, "web:2", bot.settings, datetime.now(UTC)) is None, "closed once"
    sender = Recorder()
    assert [text for _, text in await delivered(bot, sender)] == [actions.CLOSED_BY_OFFICER]
    assert say(bot, "lệ phí làm căn cước bao nhiêu")[0].outcome == "answered"


async def test_an_idle_answered_hand_off_ends_and_the_citizen_is_told_and_asked_to_rate(bot):
    say(bot, "gặp cán bộ")
    with bot.db() as session:
        handoff = store.open_handoff(session, "console", "c1")
        store.officer_reply(session, handoff.id, "web:1", "Anh cần gì thêm không ạ?")
    service = HandoffService(bot.settings, bot.db)
    assert service.close_idle(datetime.now(UTC)) == 0, "not idle yet"
    later = datetime.now(UTC) + timedelta(minutes=bot.settings.handoff_idle_minutes + 1)
    assert service.close_idle(later) == 1
    sender = Recorder()
    service.senders = {"console": sender}
    await service.deliver(later)
    texts = [text for _, text in sender.sent]
    assert "không có tin nhắn mới trong 30 phút" in texts[1] and "1 (rất không hài lòng)" in texts[2]
    request = RatingButton.unpack(sender.buttons[2][0][4].data)
    assert request.score == 5
    [thanks] = press(bot, sender.buttons[2][0][4].data)
    assert "5/5" in thanks.text
    [again] = press(bot, sender.buttons[2][0][1].data)
    assert "đã đánh giá" in again.text, "a second tap changes nothing"
    [write] = press(bot, thanks.buttons[0][0].data)  # "✍️ Góp ý"
    assert "gõ góp ý" in write.text
    [noted] = say(bot, "Nên trả lời sớm hơn")
    assert "Cảm ơn góp ý" in noted.text
    with bot.db() as session:
        assert [(r.score, r.comment) for r in session.query(store.RatingRow)] == [(5, "Nên trả lời sớm hơn")]


def test_outside_office_hours_the_citizen_is_told_when(database_url, monkeypatch):
    app = build_app(make_settings(database_url, handoff_hours="T2-T6 07:30-11:30,13:30-17:00", handoff_holidays="14/12/2026"))
    try:
        saturday_evening = datetime(2026, 12, 12, 20, 0, tzinfo=UTC) - timedelta(hours=7)  # 20:00 in Hanoi
        monkeypatch.setattr(chat_side, "utc_now", lambda: saturday_evening)
        [told] = say(app, "gặp cán bộ")
        assert "ngoài giờ làm việc" in told.text and "07:30 thứ Ba, 15/12/2026" in told.text, told.text
    finally:
        app.close()


async def test_a_message_the_platform_refuses_is_marked_not_delivered(bot):
    class Refusing(Recorder):
        async def send(self, chat_id, text, buttons=None):
            return Delivery(Outcome.REJECTED, "ngoài khung trả lời của Zalo OA")

    say(bot, "gặp cán bộ")
    with bot.db() as session:
        handoff = store.open_handoff(session, "console", "c1")
        message = store.officer_reply(session, handoff.id, "web:1", "Chào chị")
    await delivered(bot, Refusing())
    with bot.db() as session:
        row = store.delivery_of(session, [message.id])[message.id]
        assert row.state == store.FAILED and "khung trả lời" in row.error


def test_the_hand_off_button_comes_after_a_thumbs_down_and_as_words_where_there_are_no_buttons(bot):
    [answer] = say(bot, "lệ phí làm căn cước bao nhiêu")
    assert all(b.data != HandoffButton().pack() for row in answer.buttons for b in row), "not under a good answer"
    down = next(b.data for row in answer.buttons for b in row if b.data.endswith(":down"))
    [noted] = press(bot, down)
    assert noted.buttons[-1][0].label == "🙋 Hỏi cán bộ"
    [zalo] = say(bot, "thủ tục nuôi khủng long cảnh", chat="z1", channel="zalo", buttonless=True)
    assert zalo.text.endswith("Muốn hỏi trực tiếp cán bộ, bạn gõ: gặp cán bộ")


# --------------------------------------------------------------------------- claims

def _race(db, handoff_id: int, officers: int = 2) -> list[bool]:
    barrier = threading.Barrier(officers)
    won: list[bool] = [False] * officers

    def officer(number: int) -> None:
        with db() as session:
            barrier.wait()
            won[number] = store.claim(session, handoff_id, f"web:{number}")

    threads = [threading.Thread(target=officer, args=(n,)) for n in range(officers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_two_officers_never_claim_one_conversation(bot):
    for number in range(8):
        with bot.db() as session:
            handoff = store.create(session, "console", f"race-{number}", [], True).handoff
        won = _race(bot.db, handoff.id)
        assert sorted(won) == [False, True], won
        with bot.db() as session:
            row = session.get(store.HandoffRow, handoff.id)
            assert row.claimed_by == f"web:{won.index(True)}" and row.status == store.ACTIVE
    with bot.db() as session, pytest.raises(store.NotYours):
        store.officer_reply(session, handoff.id, f"web:{won.index(False)}", "Tôi trả lời luôn")
