"""A dossier code is printed on a receipt and easy to guess (issue 10): a chat sees a dossier's details, and
follows it, only after giving the last 4 digits of the phone or ID number the filer gave. Lookups are limited
per chat and overall across processes, wrong digits lock the chat out for a while, group chats are refused,
and follows from before verification existed hear nothing about the dossier until verified.

Time moves by replacing the handler's clock (`handlers.track._now`): lockouts last minutes, tests never sleep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Chat, make_settings
from sqlalchemy import select

from channels.outbound import ConsoleSender
from handlers import build_router, track
from handlers.messages import Incoming
from knowledge.db import make_engine, session_factory
from reminders.dispatch import dispatch
from reminders.models import FollowRow, VerificationRow
from reminders.scan import scan
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates, follow

CODE = "000.00.12.H12-261120-0001"  # needs documents, with the office's note naming a third person
REFUSED = "000.00.12.H12-261120-0002"  # refused, with the reason
BARE = "000.00.12.H12-261120-0003"  # its source gave no phone or ID number
NOTE = "thiếu giấy báo tử của ông Nguyễn Văn A (SĐT 0901234567)"
REASON = "Một bên chưa đủ tuổi kết hôn"
PHONE = "4567"
ID = "8901"
T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 09:00 office time


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(track, "_now", clock)
    return clock


@pytest.fixture
def db(db):
    due = T0 + timedelta(days=6)
    with db() as session:
        apply_updates(session, [
            DossierUpdate(code=CODE, status=Status.NEEDS_DOCUMENTS, procedure="Đăng ký khai tử", note=NOTE, due_at=due,
                          phone_last4=PHONE, given=frozenset({"procedure", "note", "due_at", "phone_last4"})),
            DossierUpdate(code=REFUSED, status=Status.REJECTED, procedure="Đăng ký kết hôn", note=REASON, due_at=due,
                          id_last4=ID, given=frozenset({"procedure", "note", "due_at", "id_last4"})),
            DossierUpdate(code=BARE, status=Status.PROCESSING, procedure="Đăng ký thường trú", note="Ghi chú nội bộ",
                          due_at=due, given=frozenset({"procedure", "note", "due_at"})),
        ], "test", T0 - timedelta(days=1))
        session.commit()
    return db


def router_for(catalog, db, database_url, **settings):
    return build_router(catalog, make_settings(database_url, **settings), db)


@pytest.fixture
def router(catalog, db, database_url, clock):
    return router_for(catalog, db, database_url)


def follows(db) -> list[tuple[str, str]]:
    with db() as session:
        return [(f.chat_id, f.dossier_code) for f in session.scalars(select(FollowRow).order_by(FollowRow.id))]


def shows_nothing_of(text: str, procedure: str = "Đăng ký khai tử", secret: str = NOTE) -> bool:
    """No procedure, status, note, reason or appointment in a reply."""
    return all(part not in text for part in (procedure, secret, "Yêu cầu bổ sung", "bổ sung giấy tờ", "không được giải quyết",
                                             "Trạng thái", "hẹn trả", "13/12/2026", "Lý do"))


# --------------------------------------------------------------------------- the second factor

def test_a_chat_that_filed_nothing_sees_only_that_the_dossier_exists(router, db):
    stranger = Chat(router, "stranger", "telegram")
    reply = stranger.ask(f"hồ sơ {CODE} tới đâu rồi")
    assert f"Hồ sơ {CODE} có trong dữ liệu" in reply.text and "4 số cuối" in reply.text
    assert shows_nothing_of(reply.text)
    refused = stranger.ask(f"ho so {REFUSED.lower()} sao roi")
    assert shows_nothing_of(refused.text, "Đăng ký kết hôn", REASON)
    assert "Giấy tờ" not in stranger.ask("/hoso").text and follows(db) == []


def test_the_right_digits_show_the_details_and_a_wrong_guess_does_not(router):
    citizen = Chat(router, "filer", "telegram")
    assert shows_nothing_of(citizen.ask(f"hồ sơ {CODE} 1234 tới đâu rồi").text)
    reply = citizen.ask(f"hồ sơ {CODE} {PHONE} tới đâu rồi")
    assert NOTE in reply.text and "Đăng ký khai tử" in reply.text and "13/12/2026" in reply.text
    assert REASON in citizen.ask(f"/theodoi {REFUSED} {ID}").text, "the ID number's digits work too"


def test_theodoi_without_the_digits_starts_no_follow(router, db):
    citizen = Chat(router, "filer", "telegram")
    reply = citizen.ask(f"/theodoi {CODE}")
    assert "4 số cuối" in reply.text and shows_nothing_of(reply.text)
    assert follows(db) == []
    assert shows_nothing_of(citizen.ask("1111").text), "wrong digits as the next message"
    assert follows(db) == []
    assert "Đã theo dõi hồ sơ" in citizen.ask(f"số cuối {PHONE}").text
    assert follows(db) == [("filer", CODE)]


def test_a_follow_and_the_verification_are_per_chat(router, db):
    Chat(router, "filer", "telegram").ask(f"/theodoi {CODE} {PHONE}")
    other = Chat(router, "filer", "zalo")  # the same id on another platform is another chat
    assert shows_nothing_of(other.ask(f"hồ sơ {CODE} tới đâu rồi").text)
    assert "chưa theo dõi" in other.ask("/hoso").text


# --------------------------------------------------------------------------- lockout and limits

def test_wrong_digits_lock_the_chat_out_and_the_right_ones_wait_until_it_ends(router, db, clock, caplog):
    guesser = Chat(router, "5550001", "telegram")
    for left in (4, 3, 2, 1):
        reply = guesser.ask(f"/theodoi {CODE} {1000 + left}")
        assert f"còn {left} lần thử" in reply.text and shows_nothing_of(reply.text)
        clock.advance(seconds=30)
    with caplog.at_level(logging.WARNING, logger="reminders.access"):
        locked = guesser.ask(f"/theodoi {CODE} 9999")
    assert "sai 4 số xác nhận nhiều lần" in locked.text and "đến 09:32" in locked.text and "/lienhe" in locked.text
    [warning] = [r for r in caplog.records if r.name == "reminders.access"]
    assert warning.levelno == logging.WARNING and "5 wrong digits" in warning.getMessage()
    assert "5550001" not in warning.getMessage() and CODE not in warning.getMessage(), "no chat id, the code masked"
    assert "000.00.12.H12-******-**01" in warning.getMessage()

    right = guesser.ask(f"/theodoi {CODE} {PHONE}")
    assert "sai 4 số xác nhận nhiều lần" in right.text and shows_nothing_of(right.text)
    assert "sai 4 số" in guesser.ask(f"hồ sơ {REFUSED} {ID} tới đâu rồi").text, "locked for every dossier"
    guesser.ask("/xoadulieu")
    assert "sai 4 số" in guesser.ask(f"/theodoi {CODE} {PHONE}").text, "/xoadulieu does not lift the lockout"
    assert follows(db) == []
    assert NOTE in Chat(router, "someone-else", "telegram").ask(f"/theodoi {CODE} {PHONE}").text, "others are not locked"

    clock.advance(minutes=29)
    assert "sai 4 số" in guesser.ask(f"/theodoi {CODE} {PHONE}").text
    clock.advance(minutes=1)
    assert "Đã theo dõi hồ sơ" in guesser.ask(f"/theodoi {CODE} {PHONE}").text


def test_wrong_digits_spread_over_time_do_not_lock(router, clock):
    citizen = Chat(router, "slow", "telegram")
    for _ in range(6):
        assert "lần thử" in citizen.ask(f"/theodoi {CODE} 0000").text
        clock.advance(minutes=8)  # five within any 30 minutes never happen


def test_lookups_are_limited_per_chat_and_overall_in_the_database(catalog, db, database_url, clock):
    limits = {"dossier_lookups_per_chat": 3, "dossier_lookups_overall": 5, "dossier_lookup_window_seconds": 600}
    first = router_for(catalog, db, database_url, **limits)
    curious = Chat(first, "curious", "telegram")
    for code in (CODE, REFUSED, BARE):
        assert "có trong dữ liệu" in curious.ask(f"hồ sơ {code} tới đâu rồi").text
        clock.advance(seconds=1)
    busy = curious.ask("hồ sơ 000.00.12.H12-261120-0004 tới đâu rồi")
    assert "tra cứu hồ sơ nhiều lần" in busy.text and "Chưa tìm thấy" not in busy.text

    # Another bot process (its own engine and chat memory) counts the same lookups.
    engine = make_engine(database_url)
    try:
        second = router_for(catalog, session_factory(engine), database_url, **limits)
        assert "tra cứu hồ sơ nhiều lần" in Chat(second, "curious", "telegram").ask(f"/theodoi {CODE}").text
        others = [Chat(second, f"other-{n}", "telegram") for n in range(3)]
        assert "4 số cuối" in others[0].ask(f"/theodoi {CODE}").text
        assert NOTE in others[0].ask(PHONE).text
        assert "đang có nhiều người dùng" in others[1].ask(f"/theodoi {CODE}").text, "5 lookups in 10 minutes for everyone"
        clock.advance(seconds=601)
        assert "4 số cuối" in others[2].ask(f"/theodoi {CODE}").text
        assert "có trong dữ liệu" in curious.ask(f"hồ sơ {CODE} tới đâu rồi").text, "the window slid on"
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- group chats

@pytest.mark.parametrize("text", [f"/theodoi {CODE} {PHONE}", "/hoso", f"/huytheodoi {CODE}", f"/tatnhac {CODE}",
                                  f"/batnhac {CODE}", f"hồ sơ {CODE} tới đâu rồi", f"{CODE} {PHONE}",
                                  "hồ sơ 000.00.12.H12-2611-0001 đâu", "hồ sơ của tôi tới đâu rồi"])
def test_in_a_group_chat_dossiers_are_refused_politely(router, db, text):
    Chat(router, "-100777", "telegram").ask(f"/theodoi {CODE} {PHONE}")  # a private chat with the same id followed it
    [reply] = router.handle(Incoming("telegram", "-100777", "member-2", text, group=True))
    assert "nhắn riêng" in reply.text and shows_nothing_of(reply.text) and CODE not in reply.text
    assert follows(db) == [("-100777", CODE)], "nothing started or stopped from the group"


def test_ordinary_questions_in_a_group_are_still_answered(router):
    [reply] = router.handle(Incoming("telegram", "-100777", "member-2", "đăng ký khai sinh cần giấy tờ gì", group=True))
    assert reply.entry_id == "1.001193"


# --------------------------------------------------------------------------- dossiers without digits

def test_without_digits_stored_the_chat_is_sent_to_the_office(router, db):
    citizen = Chat(router, "bare", "telegram")
    reply = citizen.ask(f"hồ sơ {BARE} tới đâu rồi")
    assert "liên hệ" in reply.text and "/lienhe" in reply.text
    assert shows_nothing_of(reply.text, "Đăng ký thường trú", "Ghi chú nội bộ") and "Đang xử lý" not in reply.text
    assert "/lienhe" in citizen.ask(f"/theodoi {BARE} 1234").text and follows(db) == []


def test_an_office_may_show_the_status_alone_without_verification(catalog, db, database_url, clock):
    router = router_for(catalog, db, database_url, dossier_status_without_verification=True)
    citizen = Chat(router, "bare", "telegram")
    reply = citizen.ask(f"hồ sơ {BARE} tới đâu rồi")
    assert "Đang xử lý" in reply.text
    assert shows_nothing_of(reply.text.replace("Đang xử lý", ""), "Đăng ký thường trú", "Ghi chú nội bộ")
    assert shows_nothing_of(citizen.ask(f"hồ sơ {CODE} tới đâu rồi").text), "a dossier with digits still needs them"
    followed = citizen.ask(f"/theodoi {BARE}")
    assert "Đã theo dõi hồ sơ" in followed.text and "Ghi chú nội bộ" not in followed.text
    assert "Đăng ký thường trú" not in citizen.ask("/hoso").text


# --------------------------------------------------------------------------- follows from before verification

def test_a_follow_from_before_verification_gets_one_message_asking_to_verify_then_details(catalog, db, database_url, clock):
    settings = make_settings(database_url, quiet_hours_start="00:00", quiet_hours_end="00:00")
    with db() as session:  # as the database holds them after the upgrade: followed by code alone
        follow(session, "console", "old", CODE, now=T0 - timedelta(hours=20))
        follow(session, "console", "old", BARE, now=T0 - timedelta(hours=20))
        session.commit()
    sender = ConsoleSender(echo=False)

    def run(now: datetime) -> list[str]:
        before = len(sender.sent)
        scan(db, settings, now)
        asyncio.run(dispatch(db, {"console": sender}, settings, now))
        return [text for _, text in sender.sent[before:]]

    with db() as session:
        apply_updates(session, [DossierUpdate(code=CODE, status=Status.RESULT_READY)], "test", T0)
        session.commit()
    texts = run(T0 + timedelta(minutes=1))
    assert len(texts) == 2 and all("chỉ nhắn chi tiết hồ sơ" in t for t in texts)
    [verify_code] = [t for t in texts if CODE in t]
    assert f"/theodoi {CODE} <4 số" in verify_code and shows_nothing_of(verify_code)
    [verify_bare] = [t for t in texts if BARE in t]
    assert "/lienhe" in verify_bare and "Đăng ký thường trú" not in verify_bare
    assert run(T0 + timedelta(hours=1)) == [], "asked once"

    router = router_for(catalog, db, database_url)
    old = Chat(router, "old", "console")
    assert "chưa xem được chi tiết" in old.ask("/hoso").text and NOTE not in old.ask("/hoso").text
    clock.advance(hours=2)
    assert "đã có kết quả" in old.ask(f"/theodoi {CODE} {PHONE}").text
    assert run(T0 + timedelta(hours=2, minutes=1)) == [], "what the citizen saw when verifying is not sent again"
    with db() as session:
        apply_updates(session, [DossierUpdate(code=CODE, status=Status.RETURNED)], "test", T0 + timedelta(hours=3))
        session.commit()
    [returned] = run(T0 + timedelta(hours=3, minutes=1))
    assert f"Hồ sơ {CODE} (Đăng ký khai tử) đã được trả kết quả" in returned
    with db() as session:
        assert [v.dossier_code for v in session.scalars(select(VerificationRow))] == [CODE]


def test_a_question_with_a_number_while_the_digits_are_awaited_is_not_taken_for_them(router, clock):
    citizen = Chat(router, "filer", "telegram")
    citizen.ask(f"/theodoi {CODE}")
    reply = citizen.ask("cho hỏi mẫu tờ khai 2025 ở đâu")
    assert "lần thử" not in reply.text and "không khớp" not in reply.text
    assert "Đã theo dõi hồ sơ" in citizen.ask(PHONE).text, "the code still waits for its digits"
