"""Composing announcements: bad input refused clearly, staff compose in chat with a preview and a confirm
step, citizens cannot, and the `bot.py broadcast` commands (send, list, status, cancel, run)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from conftest import Chat, make_settings
from sqlalchemy import select
from typer.testing import CliRunner

from broadcasts import audience, compose
from broadcasts.models import BroadcastRow, DeliveryRow, utcnow
from handlers import build_router
from knowledge import staff
from knowledge.db import session_factory
from knowledge.staff import Role
from redaction import chat_tag

AREAS = "Phường Bến Nghé, Phường Đa Kao"


@pytest.fixture
def db(open_kb):
    return session_factory(open_kb())


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, office_areas=AREAS)


def subscribe(db, channel: str, chat_id: str, areas=(), topics=()):
    with db.begin() as session:
        row, _ = audience.subscribe(session, channel, chat_id)
        row.areas, row.topics = list(areas), list(topics)


def problem(db, settings, **draft) -> str:
    with db() as session, pytest.raises(compose.ComposeError) as error:
        compose.check(session, compose.Draft(**draft), settings)
    return str(error.value)


# --------------------------------------------------------------------------- bad input

def test_bad_input_is_refused_with_a_plain_reason(db, settings):
    subscribe(db, "telegram", "1", areas=["phuong-ben-nghe"])
    assert "trống" in problem(db, settings, text="   ")
    too_long = problem(db, settings, text="a" * 4097)
    assert "4097 ký tự" in too_long and "4096" in too_long and "không được chia nhỏ" in too_long
    past = problem(db, settings, text="Thông báo", at=utcnow() - timedelta(hours=1))
    assert "đã qua" in past
    assert "Không có xã/phường \"Phường Không Có\"" in problem(db, settings, text="x", audience="area:Phường Không Có")
    assert "Không hiểu đối tượng" in problem(db, settings, text="x", audience="everyone")
    assert "https://" in problem(db, settings, text="x", link_label="Xem", link_url="ftp://x")


def test_an_audience_that_matches_nobody(db, settings):
    assert "Chưa có ai" in problem(db, settings, text="Thông báo")  # nobody subscribed at all
    subscribe(db, "telegram", "1", topics=["ho-tich"])
    assert "Chưa có ai" in problem(db, settings, text="Thông báo", audience="topic:cu-tru")
    with db.begin() as session:
        audience.unsubscribe(session, "telegram", "1")
    assert "Chưa có ai" in problem(db, settings, text="Thông báo", audience="topic:ho-tich")  # only people who left


def test_the_length_limit_is_the_smallest_of_the_recipients_platforms(db, settings):
    subscribe(db, "telegram", "1")
    with db() as session:
        assert compose.check(session, compose.Draft(text="a" * 2500), settings).count == 1  # Telegram: 4096
    subscribe(db, "zalo", "z1")
    refused = problem(db, settings, text="a" * 2500)
    assert "Zalo" in refused and "2000" in refused and "500 ký tự thừa" in refused
    # Zalo has no buttons: the link is written into the text and counts.
    assert "Zalo" in problem(db, settings, text="a" * 1990, link_label="Xem", link_url="https://dichvucong.gov.vn")


def test_a_zalo_oa_follower_limits_the_length_to_the_oa_message(db, settings):
    # The OA's customer-service messages hold 2,000 characters: a longer announcement was accepted and then
    # refused by the OA for every follower.
    subscribe(db, "zalo_oa", "oa1")
    refused = problem(db, settings, text="a" * 2500)
    assert "2000" in refused and "500 ký tự thừa" in refused


def test_time_is_read_in_the_office_zone(settings):
    now = utcnow()
    at = compose.parse_time("27/11/2030 08:00", settings, now)
    assert (at.hour, at.minute, at.day) == (1, 0, 27)  # 08:00 in Hà Nội is 01:00 UTC
    with pytest.raises(compose.ComposeError):
        compose.parse_time("mai nhé", settings)


# --------------------------------------------------------------------------- in chat

@pytest.fixture
def wired(catalog, db, settings):
    return build_router(catalog, settings, db)


def make_staff(db, user_id: str, role: Role = Role.BROADCASTER, platform: str = "telegram") -> None:
    with db.begin() as session:
        staff.add(session, platform, user_id, role)


class StaffChat(Chat):
    def __init__(self, router, user_id: str) -> None:
        super().__init__(router, f"chat-{user_id}", "telegram")
        self.user_id = user_id

    def send(self, text):
        from handlers.messages import Incoming

        return self.router.handle(Incoming(self.channel, self.chat_id, self.user_id, text))

    def press(self, data):
        from handlers.messages import Incoming

        return self.router.handle(Incoming(self.channel, self.chat_id, self.user_id, "", button=data))


def buttons(reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row]


def test_a_broadcaster_composes_previews_and_confirms_in_chat(wired, db):
    make_staff(db, "900")
    subscribe(db, "telegram", "11", areas=["phuong-ben-nghe"])
    subscribe(db, "telegram", "12", areas=["phuong-da-kao"])
    subscribe(db, "zalo", "13")
    chat = StaffChat(wired, "900")
    [who] = chat.send("/thongbao Thứ Năm này không hẹn trả kết quả.\nXem lịch | https://motcua.example.gov.vn/lich")
    assert who.text == "Gửi cho ai?" and "bc:aud:all" in buttons(who)
    [areas] = chat.press("bc:areas")
    assert buttons(areas) == ["bc:aud:area:phuong-ben-nghe", "bc:aud:area:phuong-da-kao"]
    [when] = chat.press("bc:aud:area:phuong-ben-nghe")
    assert "bc:at:now" in buttons(when)
    [preview] = chat.press("bc:at:now")
    assert "tới 2 người" in preview.text and "Phường Bến Nghé" in preview.text
    assert "Thứ Năm này không hẹn" in preview.text and "https://motcua.example.gov.vn/lich" in preview.text
    assert buttons(preview) == ["bc:ok", "bc:no"]
    [sent] = chat.press("bc:ok")
    assert sent.text.startswith("Đang gửi thông báo #1 tới 2 người")
    with db() as session:
        row = session.get(BroadcastRow, 1)
        chats = set(session.scalars(select(DeliveryRow.chat_id).where(DeliveryRow.broadcast_id == 1)))
    assert chats == {"11", "13"} and row.link_label == "Xem lịch" and row.state == "sending"
    assert row.created_by == "telegram:900"
    [report] = chat.send("/baocao 1")
    assert "Người nhận: 2" in report.text and "đã gửi: 0" in report.text
    [stale] = chat.press("bc:ok")  # the draft is gone once sent
    assert "Không có thông báo nào đang soạn" in stale.text


def test_schedule_in_chat_then_cancel(wired, db):
    make_staff(db, "901", Role.ADMIN)
    subscribe(db, "telegram", "21")
    chat = StaffChat(wired, "901")
    chat.send("/thongbao Từ 1/12 lệ phí chứng thực giảm 50%.")
    chat.press("bc:aud:all")
    [past] = chat.send("/hengio 01/01/2020 08:00")
    assert "đã qua" in past.text
    [preview] = chat.send("/hengio 01/12/2099 07:30")
    assert "lúc 07:30 01/12/2099" in preview.text and "tới 1 người" in preview.text
    [scheduled] = chat.press("bc:ok")
    assert scheduled.text.startswith("Đã lên lịch thông báo #1")
    [cancelled] = chat.send("/huythongbao 1")
    assert cancelled.text == "Đã hủy thông báo #1 (chưa gửi cho ai)."
    [again] = chat.send("/huythongbao 1")
    assert "không hủy được nữa" in again.text


def test_chat_refuses_bad_input_clearly(wired, db):
    make_staff(db, "902")
    chat = StaffChat(wired, "902")
    [usage] = chat.send("/thongbao")
    assert usage.text.startswith("Cách dùng: /thongbao")
    [too_long] = chat.send("/thongbao " + "x" * 4100)
    assert "quá giới hạn" in too_long.text
    chat.send("/thongbao Không ai nhận")
    chat.press("bc:aud:all")
    [nobody] = chat.press("bc:at:now")
    assert "Chưa có ai" in nobody.text
    [cancel] = chat.press("bc:no")
    assert cancel.text.startswith("Đã hủy")


def test_citizens_and_editors_cannot_broadcast_and_are_logged(wired, db, caplog):
    make_staff(db, "903", Role.EDITOR)
    subscribe(db, "telegram", "31")
    caplog.set_level(logging.WARNING, logger="handlers.core")
    for user in ("citizen-1", "903"):
        chat = StaffChat(wired, user)
        [refused] = chat.send("/thongbao Tin giả mạo")
        assert refused.text.startswith("Tôi chưa hiểu lệnh này")
        [old] = chat.press("bc:ok")
        assert "Nút này đã cũ" in old.text
        assert chat.send("/baocao")[0].text.startswith("Tôi chưa hiểu")
    refusals = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "refused" in r.getMessage()]
    for user in ("citizen-1", "903"):
        # Staff can tell the attempts apart by a tag; the account itself is personal data, logged only at DEBUG.
        tags = (chat_tag("telegram", user), chat_tag("telegram", f"chat-{user}"))
        assert any(tag in message for message in refusals for tag in tags), (user, refusals)
        assert not any(re.search(rf"\b{re.escape(user)}\b", message) for message in refusals), (user, refusals)
    with db() as session:
        assert session.scalar(select(BroadcastRow)) is None


# --------------------------------------------------------------------------- the CLI

@pytest.fixture
def cli(database_url, monkeypatch):
    import bot
    from config import get_settings

    for name in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OFFICE_AREAS", AREAS)
    monkeypatch.chdir("/")  # no .env of the machine
    get_settings.cache_clear()
    import broadcasts.cli

    monkeypatch.setattr(broadcasts.cli.out, "width", 200)  # tables unwrapped, as in a wide terminal
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(bot.app, ["--db", database_url, "broadcast", *args], input=input)

    yield invoke
    get_settings.cache_clear()


def test_cli_send_list_status_cancel_run(cli, db):
    subscribe(db, "console", "c1", areas=["phuong-da-kao"])
    subscribe(db, "console", "c2", areas=["phuong-ben-nghe"])

    declined = cli("send", "--text", "Nghỉ lễ", "--audience", "area:Phường Đa Kao", input="n\n")
    assert declined.exit_code == 1 and "tới 1 người" in declined.output and "Đã hủy" in declined.output
    nobody = cli("send", "--text", "Nghỉ lễ", "--audience", "topic:khong-co")
    assert nobody.exit_code == 2 and "Không có chủ đề" in nobody.output
    past = cli("send", "--text", "Nghỉ lễ", "--at", "2020-01-01 08:00", "--yes")
    assert past.exit_code == 2 and "đã qua" in past.output

    now = cli("send", "--text", "Nghỉ lễ chiều nay", "--audience", "area:Phường Đa Kao", "--link-label", "Chi tiết",
              "--link-url", "https://example.gov.vn", "--yes")
    assert now.exit_code == 0, now.output
    assert "#1 cho 1 người" in now.output
    later = cli("send", "--text", "Thông báo hẹn giờ", "--at", "2099-12-01 08:00", "--yes")
    assert later.exit_code == 0 and "Đã lên lịch thông báo #2" in later.output

    listed = cli("list")
    assert "Nghỉ lễ chiều nay" in listed.output and "đã lên lịch" in listed.output

    ran = cli("run")
    assert ran.exit_code == 0, ran.output
    assert "Thông báo #1: đã gửi xong; người nhận 1, đã gửi 1" in ran.output
    assert "[thông báo] Nghỉ lễ chiều nay" in ran.output  # the console sender prints it
    status = cli("status", "1")
    assert "đã gửi xong" in status.output and "Người nhận: 1; đã gửi: 1" in status.output and "Tốc độ:" in status.output

    cancelled = cli("cancel", "2")
    assert cancelled.exit_code == 0 and "Đã hủy thông báo #2" in cancelled.output
    assert cli("cancel", "99").exit_code == 1
    assert "Không có thông báo nào cần gửi" in cli("run").output
