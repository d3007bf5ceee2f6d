"""The console's announcements (/thongbao): compose with the recipient count and a preview as citizens see it,
send now or at a time, refusals that store nothing, live progress, report, cancel, and roles."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from web_support import anonymous, signed_in, web_app

from broadcasts import audience
from broadcasts.dispatcher import Dispatcher
from broadcasts.models import BroadcastRow, DeliveryRow, aware, utcnow
from channels.outbound import ConsoleSender
from knowledge.staff import Role, StaffActionRow

AREAS = "Phường Bến Nghé, Phường Đa Kao"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def bot(database_url):
    with web_app(database_url, office_areas=AREAS) as app:
        yield app


@pytest.fixture
def broadcaster(bot):
    with signed_in(bot, Role.BROADCASTER, user_id="2002") as client:
        yield client


def subscribe(bot, channel: str, chat_id: str, areas=(), topics=()) -> None:
    with bot.db.begin() as session:
        row, _ = audience.subscribe(session, channel, chat_id)
        row.areas, row.topics = list(areas), list(topics)


def everyone(bot) -> None:
    """Three citizens: two on Telegram (one narrowed to Bến Nghé, one to Đa Kao), one on Zalo (every area)."""
    subscribe(bot, "telegram", "101", areas=["phuong-ben-nghe"])
    subscribe(bot, "telegram", "102", areas=["phuong-da-kao"])
    subscribe(bot, "zalo", "z1")


def broadcasts(bot) -> list[BroadcastRow]:
    with bot.db() as session:
        return list(session.scalars(select(BroadcastRow).order_by(BroadcastRow.id)))


def actions(bot) -> list[StaffActionRow]:
    """What the audit log says about announcements (signing in is recorded too)."""
    with bot.db() as session:
        return list(session.scalars(select(StaffActionRow).where(StaffActionRow.action.startswith("announcement."))
                                    .order_by(StaffActionRow.id)))


def local_input(moment) -> str:
    """A time as a datetime-local input posts it, in the office's zone."""
    return f"{moment.astimezone(ZONE):%Y-%m-%dT%H:%M}"


def count_shown(html: str) -> int:
    found = re.search(r'id="songuoinhan" data-count="(\d+)"', html)
    assert found, html
    return int(found.group(1))


# --------------------------------------------------------------------------- compose: count and preview

def test_compose_shows_the_recipients_and_the_message_as_each_platform_shows_it(bot, broadcaster):
    everyone(bot)
    page = broadcaster.get("/thongbao/moi")
    assert page.status_code == 200
    assert count_shown(page.text) == 3
    assert "Phường Bến Nghé" in page.text and 'name="khuvuc"' in page.text

    # The count follows the audience (htmx posts the form as it changes).
    live = broadcaster.post("/thongbao/xemtruoc", data={"noidung": "", "doituong": "area", "khuvuc": "phuong-ben-nghe"})
    assert live.status_code == 200 and count_shown(live.text) == 2  # 101 and the Zalo chat that narrowed nothing
    assert "Telegram 1" in live.text and "Zalo 1" in live.text
    both = broadcaster.post("/thongbao/xemtruoc", data={"doituong": "area", "khuvuc": ["phuong-ben-nghe", "phuong-da-kao"]})
    assert count_shown(both.text) == 3 and "canhbao-doituong" not in both.text
    # An area ticked while "everyone" is chosen: the count is everyone's, and the page says the tick is not used.
    unused = broadcaster.post("/thongbao/xemtruoc", data={"doituong": "all", "khuvuc": "phuong-ben-nghe"})
    assert count_shown(unused.text) == 3 and "canhbao-doituong" in unused.text

    # The preview: Telegram shows a button under the text; Zalo has none and gets the link in the text.
    live = broadcaster.post("/thongbao/xemtruoc", data={
        "noidung": "Sáng thứ Bảy\r\nbộ phận một cửa làm việc.", "doituong": "all",
        "nhan": "Lịch làm việc", "lienket": "https://ubnd.example.vn/lich"})
    telegram = re.search(r'data-channel="telegram".*?</figure>', live.text, re.DOTALL).group(0)
    zalo = re.search(r'data-channel="zalo".*?</figure>', live.text, re.DOTALL).group(0)
    assert "Sáng thứ Bảy\nbộ phận một cửa làm việc.</div>" in telegram  # CRLF from the browser arrives as one line break
    assert 'class="tb-button" href="https://ubnd.example.vn/lich"' in telegram and "Lịch làm việc" in telegram
    assert "làm việc.\n\nLịch làm việc: https://ubnd.example.vn/lich</div>" in zalo and "tb-button" not in zalo
    assert "38/4.096 ký tự" in telegram
    assert 'id="loi-xemtruoc"' not in live.text


def test_the_preview_says_what_is_wrong_before_sending(bot, broadcaster):
    everyone(bot)
    too_long = broadcaster.post("/thongbao/xemtruoc", data={"noidung": "a" * 2500, "doituong": "all"})
    assert "Zalo" in too_long.text and "2000" in too_long.text.replace(".", "") and "500 ký tự thừa" in too_long.text
    assert "tb-too-long" in too_long.text
    nobody = broadcaster.post("/thongbao/xemtruoc", data={"noidung": "Xin chào", "doituong": "topic", "chude": "chung-thuc"})
    assert count_shown(nobody.text) == 3  # nobody narrowed a topic: everyone gets every topic
    assert broadcasts(bot) == []


# --------------------------------------------------------------------------- create

def test_send_now_creates_the_announcement_for_a_running_bot_and_records_who(bot, broadcaster):
    everyone(bot)
    sent = broadcaster.post("/thongbao/moi", data={"noidung": "Nghỉ lễ ngày 2/9.", "doituong": "area",
                                                   "khuvuc": "phuong-da-kao", "khi": "ngay"}, follow_redirects=False)
    assert sent.status_code == 303
    [row] = broadcasts(bot)
    assert sent.headers["location"] == f"/thongbao/{row.id}?moi=1"
    assert row.state == "sending" and row.recipients == 2 and row.audience == "area:phuong-da-kao"
    assert row.created_by == "telegram:2002" and row.text == "Nghỉ lễ ngày 2/9."
    with bot.db() as session:
        chats = set(session.execute(select(DeliveryRow.channel, DeliveryRow.chat_id).where(DeliveryRow.broadcast_id == row.id)))
    assert chats == {("telegram", "102"), ("zalo", "z1")}
    [action] = actions(bot)
    assert action.actor == "telegram:2002" and f"#{row.id}" in action.detail

    page = broadcaster.get(f"/thongbao/{row.id}?moi=1")
    assert "Đã tạo thông báo" in page.text and "Nghỉ lễ ngày 2/9." in page.text and "đang gửi" in page.text
    listing = broadcaster.get("/thongbao")
    assert f'id="thongbao-{row.id}"' in listing.text and "Nghỉ lễ ngày 2/9." in listing.text


def test_a_scheduled_announcement_waits_for_its_time(bot, broadcaster):
    everyone(bot)
    at = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    sent = broadcaster.post("/thongbao/moi", data={"noidung": "Họp dân tối thứ Sáu.", "doituong": "all",
                                                   "khi": "hengio", "thoidiem": local_input(at)}, follow_redirects=False)
    assert sent.status_code == 303
    [row] = broadcasts(bot)
    assert row.state == "scheduled" and aware(row.scheduled_at) == at and row.recipients == 0
    with bot.db() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 0  # recipients are chosen when it fires
    page = broadcaster.get(sent.headers["location"])
    assert 'hx-trigger="every 30s"' in page.text  # far off: looked at now and then; every 2 s once it is near
    assert "Đã lên lịch" in page.text and f"{at.astimezone(ZONE):%d/%m/%Y %H:%M}" in page.text
    # Times may also be typed as staff type them in the chat.
    typed = broadcaster.post("/thongbao/moi", data={"noidung": "Lần hai", "khi": "hengio",
                                                    "thoidiem": f"{at.astimezone(ZONE):%d/%m/%Y %H:%M}"}, follow_redirects=False)
    assert typed.status_code == 303 and aware(broadcasts(bot)[-1].scheduled_at) == at


@pytest.mark.parametrize("form, message", [
    ({"noidung": "   "}, "Nội dung thông báo đang trống"),
    ({"noidung": "a" * 4097}, "4097 ký tự"),
    ({"noidung": "a" * 2001}, "quá giới hạn 2000 ký tự một tin của Zalo"),
    ({"noidung": "Họp", "khi": "hengio", "thoidiem": "2020-01-01T08:00"}, "đã qua"),
    ({"noidung": "Họp", "khi": "hengio", "thoidiem": ""}, "Vui lòng chọn ngày giờ gửi"),
    ({"noidung": "Họp", "khi": "hengio", "thoidiem": "mai nhé"}, "Không hiểu thời điểm"),
    ({"noidung": "Họp", "doituong": "area"}, "Vui lòng chọn ít nhất một xã/phường"),
    ({"noidung": "Họp", "doituong": "area", "khuvuc": "phuong-khong-co"}, "Không có xã/phường"),
    ({"noidung": "Họp", "lienket": "ftp://x"}, "phải bắt đầu bằng https://"),
])
def test_bad_input_is_refused_in_place_and_nothing_is_stored(bot, broadcaster, form, message):
    everyone(bot)
    refused = broadcaster.post("/thongbao/moi", data={"doituong": "all", "khi": "ngay", **form}, follow_redirects=False)
    assert refused.status_code == 400
    assert 'id="loi"' in refused.text and message in refused.text
    assert 'id="noidung"' in refused.text  # the form again, with what was typed
    if form["noidung"].strip() and len(form["noidung"]) < 100:
        assert form["noidung"] in refused.text
    assert broadcasts(bot) == [] and actions(bot) == []


def test_the_zalo_oa_limit_holds_too(bot, broadcaster):
    """The OA's 2,000 characters hold on the console as in compose (CLI and chat)."""
    subscribe(bot, "zalo_oa", "oa1")
    live = broadcaster.post("/thongbao/xemtruoc", data={"noidung": "Xin chào", "lienket": "https://ubnd.example.vn"})
    oa = re.search(r'data-channel="zalo_oa".*?</figure>', live.text, re.DOTALL).group(0)
    assert "Zalo OA" in oa and "Xin chào</div>" in oa and 'href="https://ubnd.example.vn"' in oa
    refused = broadcaster.post("/thongbao/moi", data={"noidung": "a" * 2001})
    assert refused.status_code == 400 and "quá giới hạn 2000 ký tự một tin của Zalo OA" in refused.text
    assert broadcasts(bot) == []
    assert broadcaster.post("/thongbao/moi", data={"noidung": "a" * 2000}, follow_redirects=False).status_code == 303


def test_nobody_to_send_to_is_refused(bot, broadcaster):
    refused = broadcaster.post("/thongbao/moi", data={"noidung": "Xin chào", "doituong": "all", "khi": "ngay"})
    assert refused.status_code == 400 and "Chưa có ai thuộc đối tượng này" in refused.text
    assert broadcasts(bot) == []


# --------------------------------------------------------------------------- progress, report, cancel

def test_the_progress_fragment_shows_the_counters_and_stops_polling_when_done(bot, broadcaster):
    everyone(bot)
    broadcaster.post("/thongbao/moi", data={"noidung": "Thông báo", "doituong": "all"})
    [row] = broadcasts(bot)
    fragment = broadcaster.get(f"/thongbao/{row.id}/tiendo")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-trigger="every 2s"' in fragment.text and 'data-sent="0"' in fragment.text and 'data-total="3"' in fragment.text
    # What a dispatcher writes while sending is what the next poll shows.
    with bot.db.begin() as session:
        session.execute(update(BroadcastRow).where(BroadcastRow.id == row.id).values(sent=1, failed=1, blocked=0))
    fragment = broadcaster.get(f"/thongbao/{row.id}/tiendo")
    assert 'data-sent="1"' in fragment.text and 'data-failed="1"' in fragment.text and 'data-blocked="0"' in fragment.text
    assert 'value="2"' in fragment.text  # the bar: finished of recipients
    listing = broadcaster.get("/thongbao")
    assert f'hx-get="/thongbao/{row.id}/tiendo"' in listing.text

    with bot.db.begin() as session:
        session.execute(update(BroadcastRow).where(BroadcastRow.id == row.id).values(state="done", sent=2, failed=1))
    fragment = broadcaster.get(f"/thongbao/{row.id}/tiendo")
    assert "đã gửi xong" in fragment.text and "hx-trigger" not in fragment.text and f"huy-{row.id}" not in fragment.text


def test_delivered_by_the_dispatcher_the_report_counts_per_channel(bot, broadcaster):
    """The same dispatcher a running bot uses delivers what the console created; the report is by channel."""
    subscribe(bot, "console", "c1")
    subscribe(bot, "console", "c2")
    subscribe(bot, "telegram", "t1")  # no Telegram sender here: it stays pending
    broadcaster.post("/thongbao/moi", data={"noidung": "Thông báo qua bảng điều khiển", "doituong": "all"})
    [row] = broadcasts(bot)
    console = ConsoleSender(echo=False)
    reports = asyncio.run(Dispatcher(bot.db, {"console": console}, bot.settings).run_pending())
    assert [r.sent for r in reports] == [2]
    assert sorted(console.sent) == [("c1", "Thông báo qua bảng điều khiển"), ("c2", "Thông báo qua bảng điều khiển")]
    page = broadcaster.get(f"/thongbao/{row.id}")
    console_row = re.search(r'<tr data-channel="console">(.*?)</tr>', page.text, re.DOTALL).group(1)
    telegram_row = re.search(r'<tr data-channel="telegram">(.*?)</tr>', page.text, re.DOTALL).group(1)
    assert re.findall(r"<td>([^<]*)</td>", console_row) == ["Console", "2", "2", "0", "0", "0", "0"]
    assert re.findall(r"<td>([^<]*)</td>", telegram_row) == ["Telegram", "1", "0", "0", "0", "1", "0"]
    assert 'data-sent="2"' in page.text


def test_cancel_a_scheduled_announcement_after_confirming(bot, broadcaster):
    everyone(bot)
    at = utcnow() + timedelta(hours=3)
    broadcaster.post("/thongbao/moi", data={"noidung": "Sẽ hủy", "khi": "hengio", "thoidiem": local_input(at)})
    [row] = broadcasts(bot)
    confirm = broadcaster.get(f"/thongbao/{row.id}/huy")
    assert confirm.status_code == 200 and 'id="xacnhan-huy"' in confirm.text and "Sẽ hủy" in confirm.text
    assert broadcasts(bot)[0].state == "scheduled"  # asking is not cancelling

    done = broadcaster.post(f"/thongbao/{row.id}/huy", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/thongbao/{row.id}?dahuy=1"
    [row] = broadcasts(bot)
    assert row.state == "cancelled" and row.cancelled_by == "telegram:2002"
    assert [a.action for a in actions(bot)] == ["announcement.create", "announcement.cancel"]
    assert "Đã hủy thông báo" in broadcaster.get(done.headers["location"]).text

    again = broadcaster.post(f"/thongbao/{row.id}/huy")
    assert again.status_code == 409 and "không hủy được nữa" in again.text
    assert len(actions(bot)) == 2
    assert broadcaster.post("/thongbao/999/huy").status_code == 404


def test_stop_an_announcement_being_sent(bot, broadcaster):
    everyone(bot)
    broadcaster.post("/thongbao/moi", data={"noidung": "Đang gửi thì dừng"})
    [row] = broadcasts(bot)
    assert "Dừng gửi" in broadcaster.get(f"/thongbao/{row.id}/tiendo").text
    broadcaster.post(f"/thongbao/{row.id}/huy")
    with bot.db() as session:
        states = set(session.scalars(select(DeliveryRow.state).where(DeliveryRow.broadcast_id == row.id)))
    assert broadcasts(bot)[0].state == "cancelled" and states == {"cancelled"}


# --------------------------------------------------------------------------- roles

@pytest.mark.parametrize("who", ["editor", "anonymous"])
def test_only_admins_and_broadcasters_may_see_or_change_announcements(bot, who):
    everyone(bot)
    with signed_in(bot, Role.ADMIN, user_id="1001") as admin:
        admin.post("/thongbao/moi", data={"noidung": "Của quản trị", "khi": "hengio",
                                          "thoidiem": local_input(utcnow() + timedelta(days=1))})
    [row] = broadcasts(bot)
    assert row.created_by == "telegram:1001"
    before = actions(bot)
    client_of = (lambda: signed_in(bot, Role.EDITOR, user_id="3003")) if who == "editor" else (lambda: anonymous(bot))
    with client_of() as client:
        pages = [client.get(url, follow_redirects=False) for url in
                 ("/thongbao", "/thongbao/moi", f"/thongbao/{row.id}", f"/thongbao/{row.id}/tiendo", f"/thongbao/{row.id}/huy")]
        changes = [client.post("/thongbao/moi", data={"noidung": "Không được phép"}, follow_redirects=False),
                   client.post("/thongbao/xemtruoc", data={"noidung": "x"}, follow_redirects=False),
                   client.post(f"/thongbao/{row.id}/huy", follow_redirects=False)]
    for response in pages + changes:
        if who == "editor":
            assert response.status_code == 403, response.request.url
        else:
            assert response.status_code in (303, 401), response.request.url
            assert "Của quản trị" not in response.text
    [row] = broadcasts(bot)
    assert row.state == "scheduled" and row.cancelled_by is None
    assert len(actions(bot)) == len(before)
