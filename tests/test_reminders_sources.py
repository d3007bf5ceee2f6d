"""Statuses arriving over HTTP: the office's system pushing to the bot (API key checked), and the bot
polling a JSON status URL (field names configurable). Bad input stores nothing broken."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import pytest
from aiohttp import web
from conftest import eventually, make_settings
from sqlalchemy import func, select

from reminders.models import DossierRow, DossierStatusRow
from reminders.sources import API_KEY_HEADER, PUSH_PATH, PushServer, poll_once

CODE = "000.00.12.H12-261120-0001"
KEY = "k3y-of-the-one-stop-software-0123456789"


def stored(db) -> dict[str, str]:
    with db() as session:
        return {d.code: d.status for d in session.scalars(select(DossierRow))}


def changes(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(DossierStatusRow))


@pytest.fixture
async def push(db, database_url):
    changed = []
    server = PushServer(make_settings(database_url, dossier_push_api_key=KEY), db, on_change=lambda: changed.append(1))
    await server.start("127.0.0.1", 0)
    server.changed = changed
    yield server
    await server.stop()


async def post(server, body, key: str | None = KEY, raw: bytes | None = None):
    headers = {API_KEY_HEADER: key} if key is not None else {}
    url = f"http://127.0.0.1:{server.port}{PUSH_PATH}"
    async with aiohttp.ClientSession() as client, client.post(url, json=None if raw else body, data=raw, headers=headers) as response:
        return response.status, await response.json()


RECORD = {"code": CODE, "status": "Đã tiếp nhận", "procedure": "Đăng ký khai sinh", "received_at": "20/11/2026",
          "due_at": "2026-12-02T00:00:00+07:00"}


async def test_push_without_or_with_a_wrong_key_is_refused(push, db):
    for key in (None, "", "wrong", KEY[:-1]):
        status, body = await post(push, RECORD, key)
        assert status == 401 and "khóa API" in body["error"]
    assert stored(db) == {}


async def test_push_with_the_right_key_is_stored_and_a_change_noticed_once(push, db):
    status, body = await post(push, RECORD)
    assert status == 200 and body == {"ok": True, "created": 1, "changed": 1, "updated": 0}
    status, body = await post(push, {"dossiers": [RECORD | {"status": "da co ket qua"}]})
    assert status == 200 and body["changed"] == 1
    status, body = await post(push, [RECORD | {"status": "Đã có kết quả"}])
    assert status == 200 and body["changed"] == 0, "the same status again is no change"
    assert stored(db) == {CODE: "result_ready"} and changes(db) == 2 and len(push.changed) == 2
    status, body = await post(push, RECORD | {"status": "Đang xử lý", "changed_at": "2026-11-21T09:00:00+07:00"})
    assert status == 200 and body["changed"] == 0, "an older update does not turn the dossier back"
    assert stored(db) == {CODE: "result_ready"}


async def test_a_push_with_one_bad_record_stores_nothing_and_says_why(push, db):
    records = [RECORD, {"code": "000.00.12.H12-261120-0002", "status": "Đang chờ", "procedure": "Kết hôn"},
               {"code": "12345", "status": "Đã tiếp nhận"}, RECORD | {"due_at": "31/02/2026"},
               {"code": "000.00.12.H12-261120-0009", "status": "Đã tiếp nhận"}]
    status, body = await post(push, records)
    assert status == 400 and "không ghi gì" in body["error"]
    reasons = {p["index"]: p["reason"] for p in body["problems"]}
    assert "không rõ nghĩa" in reasons[1] and "không đúng dạng" in reasons[2]
    assert "không có thật" in reasons[3] or "trùng" in reasons[3]
    assert "cần tên thủ tục" in reasons[4]
    assert stored(db) == {}
    status, body = await post(push, None, raw=b"{not json")
    assert status == 400 and "JSON" in body["error"]
    status, body = await post(push, [])
    assert status == 400
    assert stored(db) == {}


@pytest.fixture
async def feed():
    """A local status URL whose answer each test sets: JSON, junk, or a delay longer than the poller waits."""
    state = {"body": b"[]", "delay": 0.0, "status": 200}

    async def handle(request):
        await asyncio.sleep(state["delay"])
        return web.Response(body=state["body"], status=state["status"], content_type="application/json")

    app = web.Application()
    app.router.add_get("/trang-thai", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/trang-thai"
    yield state
    await runner.cleanup()


FIELDS = {"code": "MaHoSo", "status": "TrangThai", "procedure": "TenThuTuc", "due_at": "NgayHenTra", "note": "GhiChu"}


async def test_poll_with_the_feeds_own_field_names_keeps_good_records_and_skips_bad(feed, db, database_url):
    import json

    feed["body"] = json.dumps({"data": [
        {"MaHoSo": CODE, "TrangThai": "Yêu cầu bổ sung", "TenThuTuc": "Đăng ký khai sinh", "NgayHenTra": "02/12/2026",
         "GhiChu": "Tờ khai có chữ ký"},
        {"MaHoSo": "000.00.12.H12-261120-0002", "TrangThai": "???", "TenThuTuc": "Kết hôn"},
    ]}, ensure_ascii=False).encode()
    settings = make_settings(database_url, dossier_status_url=feed["url"], dossier_status_fields=FIELDS)
    result = await poll_once(settings, db)
    assert result.ok and result.records == 2 and len(result.skipped) == 1 and result.applied.changed == 1
    assert stored(db) == {CODE: "needs_documents"}
    again = await poll_once(settings, db)
    assert again.applied.changed == 0 and changes(db) == 1


async def test_poll_of_junk_or_an_error_or_a_timeout_stores_nothing(feed, db, database_url):
    settings = make_settings(database_url, dossier_status_url=feed["url"], dossier_status_fields=FIELDS)
    feed["body"] = b"<html>Bao tri he thong</html>"
    result = await poll_once(settings, db)
    assert not result.ok and "không phải JSON" in str(result)
    feed["body"], feed["status"] = b"[]", 503
    assert (await poll_once(settings, db)).error == "HTTP 503"
    feed["status"], feed["delay"] = 200, 2.0
    async with httpx.AsyncClient(timeout=0.3) as client:
        result = await poll_once(settings, db, client=client)
    assert not result.ok and result.error == "hết thời gian chờ"
    assert stored(db) == {}


async def test_the_running_service_sends_a_pushed_change_within_seconds(db, database_url):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from channels.outbound import ConsoleSender
    from reminders.service import ReminderService
    from reminders.store import follow, verify

    settings = make_settings(database_url, dossier_push_api_key=KEY, dossier_push_port=0, reminder_scan_seconds=3600,
                             quiet_hours_start="00:00", quiet_hours_end="00:00")
    service = ReminderService(settings, db)
    sender = ConsoleSender(echo=False)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    await service.start(scheduler, {"console": sender})
    scheduler.start()
    # An appointment still ahead: past it, a scan between the follow and the change would rightly apologise first.
    record = RECORD | {"due_at": (datetime.now(UTC) + timedelta(days=10)).isoformat()}
    try:
        status, _ = await post(service.push, record)
        assert status == 200
        with db() as session:
            verify(session, "console", "me", CODE)
            follow(session, "console", "me", CODE)
            session.commit()
        status, _ = await post(service.push, record | {"status": "Đã có kết quả"})
        assert status == 200
        # The push wakes the job: with an hour between scans, only the wake-up can send it.
        await eventually(lambda: sender.sent, what="the reminder of the pushed change")
        assert [chat for chat, _ in sender.sent] == ["me"] and "đã có kết quả" in sender.sent[0][1]
    finally:
        scheduler.shutdown(wait=False)
        await service.stop()


# --------------------------------------------------------------------------- implausible dates, the filer's digits

async def test_a_far_future_date_is_refused_at_push_with_the_reason_per_record(push, db):
    records = [RECORD, {"code": "000.00.12.H12-261120-0002", "status": "Đang xử lý", "procedure": "Kết hôn",
                        "due_at": "9999-12-31T23:59:59Z"},
               RECORD | {"code": "000.00.12.H12-261120-0003", "received_at": "01/01/1900"}]
    status, body = await post(push, records)
    assert status == 400 and "không ghi gì" in body["error"]
    reasons = {p["index"]: p["reason"] for p in body["problems"]}
    assert set(reasons) == {1, 2}
    assert "due_at: ngày 31/12/9999 nằm ngoài khoảng hợp lý" in reasons[1] and "để trống" in reasons[1]
    assert "received_at: ngày 01/01/1900 nằm ngoài khoảng hợp lý" in reasons[2]
    assert stored(db) == {}


async def test_a_far_future_date_in_the_feed_skips_that_record_only(feed, db, database_url, caplog):
    import json

    feed["body"] = json.dumps([
        {"MaHoSo": CODE, "TrangThai": "Đang xử lý", "TenThuTuc": "Đăng ký khai sinh", "NgayHenTra": "31/12/9999"},
        {"MaHoSo": "000.00.12.H12-261120-0002", "TrangThai": "Đang xử lý", "TenThuTuc": "Kết hôn", "NgayHenTra": "10/12/2026"},
    ]).encode()
    settings = make_settings(database_url, dossier_status_url=feed["url"], dossier_status_fields=FIELDS)
    result = await poll_once(settings, db)
    assert result.ok and len(result.skipped) == 1 and result.applied.created == 1
    assert stored(db) == {"000.00.12.H12-261120-0002": "processing"}
    assert any("record 0 skipped" in r.getMessage() and "31/12/9999" in r.getMessage() for r in caplog.records)


async def test_the_filers_digits_arrive_by_push_and_only_the_last_four_are_kept(push, db):
    status, _ = await post(push, RECORD | {"phone": "0901 234 567", "id_number": 1234567890123 // 10})
    assert status == 200
    status, _ = await post(push, RECORD | {"status": "Đang xử lý"})  # a record without them keeps them
    assert status == 200
    with db() as session:
        row = session.get(DossierRow, CODE)
        assert (row.phone_last4, row.id_last4) == ("4567", "9012")
    status, body = await post(push, RECORD | {"phone": "09"})
    assert status == 400 and "phone: cần ít nhất 4 chữ số" in body["problems"][0]["reason"]
