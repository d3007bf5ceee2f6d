"""Citizens subscribe to announcements (/dangky), narrow them to their area and topics, and stop (/huydangky)."""

from __future__ import annotations

import pytest
from conftest import Chat, make_settings

from broadcasts.audience import Audience, parse_audience, recipients, subscription
from handlers import build_router
from knowledge.db import session_factory

AREAS = "Phường Bến Nghé, Phường Đa Kao, Xã An Bình"


@pytest.fixture
def db(open_kb):
    return session_factory(open_kb())


@pytest.fixture
def wired(catalog, db, database_url):
    return build_router(catalog, make_settings(database_url, office_areas=AREAS), db)


def row(db, chat: Chat):
    with db() as session:
        return subscription(session, chat.channel, chat.chat_id)


def test_dangky_subscribes_to_everything_then_offers_to_narrow(wired, db):
    chat = Chat(wired, "501", "telegram")
    [reply] = chat.send("/dangky")
    assert reply.text.startswith("Đã đăng ký!") and "/huydangky" in reply.text
    assert [b.data for r in reply.buttons for b in r] == ["sub:areas", "sub:topics"]
    subscribed = row(db, chat)
    assert subscribed.active and subscribed.areas == [] and subscribed.topics == []

    [again] = chat.send("/dangky")
    assert again.text.startswith("Bạn đang nhận thông báo") and "mọi chủ đề" in again.text


def test_narrow_to_my_ward_and_two_topics(wired, db):
    chat = Chat(wired, "502", "telegram")
    chat.send("/dangky")
    [areas] = chat.press("sub:areas")
    assert [b.label for r in areas.buttons for b in r] == ["Phường Bến Nghé", "Phường Đa Kao", "Xã An Bình", "Tất cả xã/phường"]
    [saved] = chat.press("sub:a:phuong-da-kao")
    assert "Phường Đa Kao" in saved.text
    assert row(db, chat).areas == ["phuong-da-kao"]

    [topics] = chat.press("sub:topics")
    assert "sub:t:ho-tich" in [b.data for r in topics.buttons for b in r]
    chat.press("sub:t:ho-tich")
    [marked] = chat.press("sub:t:cu-tru")
    labels = [b.label for r in marked.buttons for b in r]
    assert any(label.startswith("✓ Hộ tịch") for label in labels) and any(label.startswith("✓ Cư trú") for label in labels)
    chat.press("sub:t:ho-tich")  # pressed again: no longer chosen
    assert row(db, chat).topics == ["cu-tru"]
    [done] = chat.press("sub:done")
    assert "Phường Đa Kao" in done.text and "Cư trú" in done.text


def test_who_gets_what(wired, db, database_url):
    """A ward's announcement reaches its subscribers and those who did not narrow, not another ward's."""
    settings = make_settings(database_url, office_areas=AREAS)
    ben_nghe, da_kao, anywhere = Chat(wired, "601", "telegram"), Chat(wired, "602", "telegram"), Chat(wired, "603", "zalo")
    for chat in (ben_nghe, da_kao, anywhere):
        chat.send("/dangky")
    ben_nghe.press("sub:areas")
    ben_nghe.press("sub:a:phuong-ben-nghe")
    da_kao.press("sub:a:phuong-da-kao")
    with db() as session:
        to_ben_nghe = {r.chat_id for r in recipients(session, parse_audience("area:Phường Bến Nghé", settings, session))}
        to_da_kao = {r.chat_id for r in recipients(session, parse_audience("area:phuong da kao", settings, session))}
        everyone = {r.chat_id for r in recipients(session, Audience("all"))}
    assert to_ben_nghe == {"601", "603"} and to_da_kao == {"602", "603"} and everyone == {"601", "602", "603"}


def test_huydangky_stops_everything(wired, db):
    chat = Chat(wired, "503", "telegram")
    [never] = chat.send("/huydangky")
    assert "chưa đăng ký" in never.text
    chat.send("/dangky")
    chat.press("sub:a:xa-an-binh")
    [stopped] = chat.send("/huydangky")
    assert stopped.text.startswith("Đã ngừng gửi thông báo")
    left = row(db, chat)
    assert not left.active and left.unsubscribe_reason == "user"
    [stale] = chat.press("sub:topics")
    assert "/dangky" in stale.text
    [back] = chat.send("/dangky")
    assert back.text.startswith("Đã đăng ký!") and row(db, chat).active and row(db, chat).areas == []


def test_zalo_chooses_by_typing_the_number(wired, db):
    chat = Chat(wired, "504", "zalo", buttonless=True)
    chat.send("/dangky")
    [areas] = chat.send("1")  # 1. Chọn xã/phường của tôi
    assert "xã/phường nào" in areas.text
    chat.send("3")  # Xã An Bình
    assert row(db, chat).areas == ["xa-an-binh"]


def test_without_areas_in_the_settings_only_topics_are_offered(catalog, db, database_url):
    chat = Chat(build_router(catalog, make_settings(database_url), db), "505", "telegram")
    [reply] = chat.send("/dangky")
    assert [b.data for r in reply.buttons for b in r] == ["sub:topics"]


def test_xoadulieu_deletes_the_subscription(wired, db):
    chat = Chat(wired, "506", "telegram")
    chat.send("/dangky")
    [done] = chat.send("/xoadulieu")
    assert "đăng ký nhận thông báo" in done.text
    assert row(db, chat) is None


def test_help_lists_the_subscription_commands_but_not_the_staff_ones(wired):
    [help_text] = Chat(wired, "507", "telegram").send("/help")
    assert "/dangky" in help_text.text and "/huydangky" in help_text.text
    assert "/thongbao" not in help_text.text
