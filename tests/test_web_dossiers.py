"""The console's dossier pages (/hoso): importing the one-stop export with its checks, preview and confirm,
the filtered lists, one dossier's history and reminders, and who may do what."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from starlette.testclient import TestClient
from web_support import add_staff, signed_in, web_app, without_tokens

from knowledge import web_access
from knowledge.models import StaffActionRow
from knowledge.staff import Role
from reminders.models import DossierRow, DossierStatusRow, FollowRow, ReminderRow
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
HEADER = "Mã hồ sơ,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ghi chú,Số điện thoại"
GOOD = [
    "000.00.12.H12-261120-0001,Đăng ký khai sinh,20/11/2026,02/12/2026,Đã tiếp nhận,,0901 234 567",
    "000.00.12.H12-261120-0002,Cấp bản sao trích lục hộ tịch,20/11/2026 08:30,25/11/2026 16:00,ĐANG XỬ LÝ,,",
    "000.00.12.H12-261121-0003,Đăng ký thường trú,21/11/2026,05/12/2026,yeu cau bo sung,Thiếu giấy tờ chứng minh chỗ ở,",
]


def beside(client: TestClient, bot, role: Role | None, user_id: str = "3003") -> TestClient:
    """Another browser on the same console (uploads waiting for their confirm live in the console's process),
    signed in as `role` through a one-time link, or with no session when `role` is None."""
    other = TestClient(client.app, follow_redirects=False)
    if role is None:
        return other
    add_staff(bot, role, user_id)
    with bot.db.begin() as session:
        token = web_access.issue_link(session, "telegram", user_id)
    assert other.post(f"/dangnhap/{token}").status_code == 303
    other.headers["X-CSRF-Token"] = re.search(r'name="csrf_token" value="([0-9a-f]+)"', other.get("/matkhau").text).group(1)
    return other


def csv_file(lines: list[str], name: str = "ho-so.csv") -> dict:
    return {"file": (name, ("\n".join(lines) + "\n").encode("utf-8-sig"), "text/csv")}


def count(bot, model=DossierRow) -> int:
    with bot.db() as session:
        return session.scalar(select(func.count()).select_from(model))


def actions(bot) -> list[StaffActionRow]:
    with bot.db() as session:
        return list(session.scalars(select(StaffActionRow).where(StaffActionRow.action == "dossiers.import")))


def token_of(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "the preview offers a confirm"
    return match.group(1)


def codes_on(page: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-code="([^"]+)"', page)


def text_of(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


# --------------------------------------------------------------------------- import

def test_an_upload_with_an_error_names_the_row_and_column_and_stores_nothing(database_url):
    with web_app(database_url) as bot:
        client = signed_in(bot, Role.EDITOR)
        bad = GOOD[1].replace("20/11/2026 08:30", "31/02/2026")
        response = client.post("/hoso/nhap", files=csv_file([HEADER, GOOD[0], bad, "12345,Đăng ký khai tử,20/11/2026,22/11/2026,Đã tiếp nhận,,"]))
        assert response.status_code == 400
        page = text_of(response.text)
        assert "chưa ghi gì" in page and "ho-so.csv" in page
        assert 'hàng 3, cột Ngày tiếp nhận: ngày "31/02/2026" không có thật' in page.replace("&#34;", '"')
        assert "hàng 4, cột Mã hồ sơ" in page
        assert count(bot) == 0 and count(bot, DossierStatusRow) == 0, "the good row was not written either"
        assert actions(bot) == []
        assert 'id="dossier-file"' in response.text, "the form is there to try again"


def test_a_good_upload_is_previewed_then_stored_as_the_cli_does_on_confirm(database_url):
    with web_app(database_url) as bot:
        client = signed_in(bot, Role.EDITOR, user_id="2002")
        assert client.get("/hoso/nhap").status_code == 200
        preview = client.post("/hoso/nhap", files=csv_file([HEADER, *GOOD]))
        assert preview.status_code == 200
        page = text_of(preview.text)
        assert "3 hồ sơ" in page and "Nếu nhập: 3 hồ sơ mới" in page
        assert all(code in preview.text for code in ("000.00.12.H12-261120-0001", "000.00.12.H12-261121-0003"))
        assert "0901" not in without_tokens(preview.text) and "4567" not in without_tokens(preview.text), "the filer's numbers are not shown"
        assert count(bot) == 0, "a preview writes nothing"

        done = client.post("/hoso/nhap/xacnhan", data={"token": token_of(preview.text)})
        assert done.status_code == 200
        assert "3 hồ sơ mới, 3 thay đổi trạng thái" in text_of(done.text)
        with bot.db() as session:
            first = session.get(DossierRow, "000.00.12.H12-261120-0001")
            assert first.status == "received" and first.phone_last4 == "4567" and first.source == "import:ho-so.csv"
            second = session.get(DossierRow, "000.00.12.H12-261120-0002")
            assert second.due_at.replace(tzinfo=None) == datetime(2026, 11, 25, 9, 0), "16:00 office time is 09:00 UTC"
        assert count(bot, DossierStatusRow) == 3
        [action] = actions(bot)
        assert action.actor == "telegram:2002" and "ho-so.csv" in action.detail and "3 hồ sơ mới" in action.detail

        again = client.post("/hoso/nhap/xacnhan", data={"token": token_of(preview.text)})
        assert again.status_code == 400 and "tải tệp lên lại" in again.text
        assert len(actions(bot)) == 1 and count(bot, DossierStatusRow) == 3, "a preview is applied once"

        # A later export: one status changed, one note changed, one the same.
        later = [GOOD[0].replace("Đã tiếp nhận", "Đã có kết quả"), GOOD[1], GOOD[2].replace("chỗ ở", "chỗ ở hợp pháp")]
        preview = client.post("/hoso/nhap", files=csv_file([HEADER, *later], "ho-so-2.csv"))
        page = text_of(preview.text)
        assert "0 hồ sơ mới, 1 đổi trạng thái, 1 cập nhật thông tin khác, 1 không đổi" in page
        assert "Đã tiếp nhận → Đã có kết quả" in page and "Ghi chú" in page
        client.post("/hoso/nhap/xacnhan", data={"token": token_of(preview.text)})
        with bot.db() as session:
            assert session.get(DossierRow, "000.00.12.H12-261120-0001").status == "result_ready"
        assert count(bot, DossierStatusRow) == 4


def test_an_xlsx_upload_and_a_cancelled_preview(database_url):
    book = Workbook()
    sheet = book.active
    sheet.append(["DANH SÁCH HỒ SƠ"])
    sheet.append(["MÃ HỒ SƠ", "Thủ tục", "Ngày tiếp nhận", "Ngày hẹn trả", "Tình trạng"])
    sheet.append(["000.00.12.H12-261120-0001", "Đăng ký khai sinh", datetime(2026, 11, 20, 8), datetime(2026, 12, 2), "Đã có kết quả"])
    data = io.BytesIO()
    book.save(data)
    with web_app(database_url) as bot:
        client = signed_in(bot, Role.ADMIN)
        preview = client.post("/hoso/nhap", files={"file": ("xuat.xlsx", data.getvalue(), "application/octet-stream")})
        assert preview.status_code == 200 and "1 hồ sơ mới" in text_of(preview.text)
        token = token_of(preview.text)
        cancelled = client.post("/hoso/nhap/huy", data={"token": token})
        assert cancelled.status_code == 200 and "Đã hủy" in cancelled.text
        assert client.post("/hoso/nhap/xacnhan", data={"token": token}).status_code == 400
        assert count(bot) == 0 and actions(bot) == []


def test_files_that_are_not_exports_are_refused_politely(database_url):
    with web_app(database_url) as bot:
        client = signed_in(bot, Role.EDITOR)
        for files, expected in [
            ({"file": ("ho-so.txt", b"x", "text/plain")}, "định dạng không hỗ trợ"),
            ({"file": ("ho-so.xlsx", b"PK\x03\x04 junk", "application/octet-stream")}, "không phải tệp Excel"),
            ({"file": ("ho-so.csv", b"", "text/csv")}, "tệp rỗng"),
            ({"file": ("", b"", "application/octet-stream")}, "Vui lòng chọn tệp"),
        ]:
            response = client.post("/hoso/nhap", files=files)
            assert response.status_code == 400 and expected in response.text, expected
        assert count(bot) == 0


def test_a_preview_belongs_to_who_uploaded_it_and_expires(database_url):
    with web_app(database_url) as bot:
        admin = signed_in(bot, Role.ADMIN, user_id="1001")
        editor = beside(admin, bot, Role.EDITOR, user_id="2002")
        token = token_of(admin.post("/hoso/nhap", files=csv_file([HEADER, *GOOD])).text)
        assert editor.post("/hoso/nhap/xacnhan", data={"token": token}).status_code == 400
        assert count(bot) == 0
        # The upload's owner can still confirm it (a stranger's attempt does not use it up)...
        store = admin.app.state.dossier_imports
        clock = [store.clock()]
        store.clock = lambda: clock[0]
        token = token_of(admin.post("/hoso/nhap", files=csv_file([HEADER, *GOOD])).text)
        clock[0] += store.ttl + 1  # ... but not once it expired
        assert admin.post("/hoso/nhap/xacnhan", data={"token": token}).status_code == 400
        assert count(bot) == 0


# --------------------------------------------------------------------------- lists

def put(bot, code: str, status: Status, due: datetime | None, new_due: datetime | None = None, phone: str | None = None,
        received: datetime | None = None) -> None:
    given = {"procedure", "received_at", "due_at"} | ({"new_due_at"} if new_due else set()) | ({"phone_last4"} if phone else set())
    update = DossierUpdate(code=code, status=status, procedure="Đăng ký khai sinh", received_at=received, due_at=due,
                           new_due_at=new_due, phone_last4=phone, given=frozenset(given))
    with bot.db() as session:
        apply_updates(session, [update], "test")
        session.commit()


def office_day(days: int, hour: int = 10) -> datetime:
    today = datetime.now(UTC).astimezone(ZONE).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, tzinfo=ZONE)


def test_the_filters_list_the_right_dossiers(database_url):
    late, late_new_date_passed, new_date_ahead = "000.00.12.H12-240101-0001", "000.00.12.H12-240101-0002", "000.00.12.H12-240101-0003"
    soon_today, soon, later, documents = "000.00.12.H12-240101-0004", "000.00.12.H12-240101-0005", "000.00.12.H12-240101-0006", "000.00.12.H12-240101-0007"
    ready_past, returned_past = "000.00.12.H12-240101-0008", "000.00.12.H12-240101-0009"
    with web_app(database_url) as bot:
        put(bot, late, Status.PROCESSING, office_day(-3))
        put(bot, late_new_date_passed, Status.RECEIVED, office_day(-10), new_due=office_day(-1))
        put(bot, new_date_ahead, Status.PROCESSING, office_day(-5), new_due=office_day(1))
        put(bot, soon_today, Status.PROCESSING, office_day(0, hour=16))
        put(bot, soon, Status.RECEIVED, office_day(2))
        put(bot, later, Status.PROCESSING, office_day(5))
        put(bot, documents, Status.NEEDS_DOCUMENTS, office_day(-2))
        put(bot, ready_past, Status.RESULT_READY, office_day(-4))
        put(bot, returned_past, Status.RETURNED, office_day(-4))
        client = signed_in(bot, Role.EDITOR)

        def listed(query: str) -> set[str]:
            response = client.get("/hoso" + query)
            assert response.status_code == 200
            return set(codes_on(response.text))

        assert listed("") == listed("?loc=tat-ca") == {late, late_new_date_passed, new_date_ahead, soon_today, soon, later,
                                                        documents, ready_past, returned_past}
        assert listed("?loc=tre-han") == {late, late_new_date_passed}, "past the (new) date and the office still on it"
        assert listed("?loc=sap-den-han") == {new_date_ahead, soon_today, soon}
        assert listed("?loc=bo-sung") == {documents}
        assert listed("?loc=tat-ca&ma=240101-0005") == {soon}
        assert listed("?loc=tre-han&ma=" + soon.lower()) == set(), "search within the filter"
        assert listed("?loc=khong-co") == listed(""), "an unknown filter shows all"
        page = client.get("/hoso?loc=tre-han").text
        assert "Trễ hẹn (2)" in text_of(page) and "trễ hẹn" in page


def test_lists_are_paged_and_never_show_the_filers_digits(database_url):
    with web_app(database_url) as bot:
        updates = [DossierUpdate(code=f"000.00.12.H12-240102-{n:04d}", status=Status.RECEIVED, procedure="Đăng ký kết hôn",
                                 due_at=office_day(20), phone_last4="9876", given=frozenset({"procedure", "due_at", "phone_last4"}))
                   for n in range(1, 56)]
        with bot.db() as session:
            apply_updates(session, updates, "test")
            session.commit()
        client = signed_in(bot, Role.ADMIN)
        first = client.get("/hoso")
        second = client.get("/hoso?trang=2")
        assert len(codes_on(first.text)) == 50 and len(codes_on(second.text)) == 5
        assert set(codes_on(first.text)) | set(codes_on(second.text)) == {u.code for u in updates}
        assert 'href="/hoso?loc=tat-ca&amp;trang=2"' in first.text and "Trang 1/2" in first.text
        assert codes_on(client.get("/hoso?trang=99").text) == codes_on(second.text), "past the end: the last page"
        assert "9876" not in without_tokens(first.text) and "có 4 số cuối" in first.text


# --------------------------------------------------------------------------- one dossier

def test_a_dossiers_page_shows_its_history_and_reminders_with_states_and_reasons(database_url):
    code = "000.00.12.H12-240103-0001"
    with web_app(database_url) as bot:
        put(bot, code, Status.RECEIVED, office_day(-2), phone="4321", received=office_day(-9))
        put(bot, code, Status.PROCESSING, office_day(-2))
        with bot.db() as session:
            follow = FollowRow(channel="telegram", chat_id="987654321", dossier_code=code, muted=False)
            session.add(follow)
            session.flush()
            now = datetime.now(UTC)
            session.add_all([
                ReminderRow(follow_id=follow.id, channel="telegram", chat_id="987654321", dossier_code=code, kind="processing",
                            key="status:2", text="Hồ sơ đang xử lý", due_at=now - timedelta(days=1), state="sent", sent_at=now),
                ReminderRow(follow_id=follow.id, channel="telegram", chat_id="987654321", dossier_code=code, kind="late",
                            key="late:x", text="Xin lỗi", due_at=now, state="undeliverable",
                            reason="telegram: người dùng đã chặn bot hoặc cuộc trò chuyện không còn (Forbidden)"),
                ReminderRow(follow_id=None, channel="zalo", chat_id="555", dossier_code=code, kind="appointment",
                            key="appointment:x", text="Nhắc lịch", due_at=now, state="cancelled",
                            reason="người dân ngừng theo dõi hồ sơ"),
            ])
            session.commit()
        client = signed_in(bot, Role.EDITOR)
        response = client.get(f"/hoso/{code.lower()}")
        assert response.status_code == 200
        page = text_of(response.text)
        assert "Đang xử lý" in page and "Đã tiếp nhận" in page and "trễ hẹn" in page
        history = text_of(response.text.split('id="dossier-history"')[1].split("</table>")[0])
        assert history.index("Đang xử lý") < history.index("Đã tiếp nhận"), "newest first"
        reminders = text_of(response.text.split('id="dossier-reminders"')[1].split("</table>")[0])
        assert "Đã gửi" in reminders and "Không gửi được" in reminders and "Đã hủy" in reminders
        assert "người dùng đã chặn bot" in reminders and "người dân ngừng theo dõi hồ sơ" in reminders
        assert "Đã qua ngày hẹn trả mà hồ sơ vẫn đang tiếp nhận/xử lý" in reminders, "why the late reminder is planned"
        assert "Người theo dõi #1" in reminders and "(đã ngừng theo dõi)" in reminders
        assert "1 người theo dõi" in page
        for secret in ("987654321", "4321"):
            assert secret not in without_tokens(response.text), "no chat id, no filer's digits"
        assert "có 4 số cuối SĐT/CCCD" in page

        listed = client.get("/hoso")
        assert "987654321" not in without_tokens(listed.text) and "4321" not in without_tokens(listed.text)
        missing = client.get("/hoso/000.00.12.H12-240103-0999")
        assert missing.status_code == 404 and "Không tìm thấy hồ sơ" in missing.text
        assert client.get("/hoso/khong-phai-ma").status_code == 404


# --------------------------------------------------------------------------- roles

@pytest.mark.parametrize("who", ["broadcaster", "anonymous"])
def test_broadcasters_and_strangers_get_nothing_and_change_nothing(database_url, who):
    with web_app(database_url) as bot:
        put(bot, "000.00.12.H12-240104-0001", Status.RECEIVED, office_day(3))
        owner = signed_in(bot, Role.ADMIN, user_id="1001")
        token = token_of(owner.post("/hoso/nhap", files=csv_file([HEADER, *GOOD])).text)
        client = beside(owner, bot, Role.BROADCASTER if who == "broadcaster" else None)
        refused = {403} if who == "broadcaster" else {303, 401}
        for url in ("/hoso", "/hoso?loc=tre-han", "/hoso/nhap", "/hoso/000.00.12.H12-240104-0001"):
            response = client.get(url, follow_redirects=False)
            assert response.status_code in refused, url
            assert "000.00.12.H12-240104-0001" not in response.text
            if response.status_code == 303:
                assert response.headers["location"].startswith("/dangnhap")
        for url, kwargs in [("/hoso/nhap", {"files": csv_file([HEADER, *GOOD])}),
                            ("/hoso/nhap/xacnhan", {"data": {"token": token}}),
                            ("/hoso/nhap/huy", {"data": {"token": token}})]:
            response = client.post(url, follow_redirects=False, **kwargs)
            assert response.status_code in refused | {401, 403}, url
        assert count(bot) == 1 and actions(bot) == []
        # The owner's preview is untouched by the refused attempts.
        assert owner.post("/hoso/nhap/xacnhan", data={"token": token}).status_code == 200
        assert count(bot) == 4
