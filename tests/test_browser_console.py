"""The web console end to end in a real browser (Chromium driven by Playwright) against the running bot: Telegram on
the fake Bot API server, the console served by the same process (WEB_IN_RUN), on SQLite and PostgreSQL.

Run with MOTCUA_SCREENSHOTS=docs/screenshots to refresh the README's screenshots.
"""
# ruff: noqa: F811 - the fixtures come from tests.browser_support, and tests name them as arguments

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser_support import (  # noqa: F401 - fixtures
    STAFF_CHAT,
    chromium,
    page,
    requires_chromium,
    running,
    screenshot,
    sign_in,
    sign_in_link,
)

pytestmark = requires_chromium

NEW_MEMBER = 9100  # a colleague the admin adds in the console


def test_browser_sign_in_with_the_one_time_link_sent_in_chat(running, page) -> None:
    link = sign_in_link(running)
    page.goto(link)
    expect(page.get_by_role("heading", name="Đăng nhập bảng điều khiển")).to_be_visible()
    page.locator("#sign-in-link").click()
    expect(page).to_have_url(f"{running.url}/tongquan")
    expect(page.get_by_role("heading", name="Tổng quan", level=1)).to_be_visible()
    expect(page.locator("header .me")).to_contain_text(f"telegram:{STAFF_CHAT}")

    # Once only: the same link opened again (another browser, no session) no longer signs in.
    other = page.context.browser.new_context()
    try:
        again = other.new_page()
        again.goto(link)
        expect(again.locator("main")).to_contain_text("không còn dùng được")
        expect(again.locator("#sign-in-link")).to_have_count(0)
    finally:
        other.close()

    # Signing out ends the session: the console sends the browser back to the sign-in page.
    page.locator("#sign-out").click()
    page.goto(f"{running.url}/canbo")
    expect(page).to_have_url(re.compile(r"/dangnhap\?tiep=/canbo$"))


def test_browser_an_admin_adds_a_colleague_who_then_signs_in_and_removes_him(running, page, screenshot) -> None:
    colleague = f"telegram:{NEW_MEMBER}"
    refused = running.say(NEW_MEMBER, "/dangnhap")
    assert "/dangnhap/" not in refused.text, "a citizen got a sign-in link"

    sign_in(page, running)
    page.get_by_role("link", name="Cán bộ").click()
    expect(page.get_by_role("heading", name="Cán bộ", level=1)).to_be_visible()
    form = page.locator("#add-staff")
    form.get_by_label("Tài khoản").fill(colleague)
    form.get_by_label("Vai trò").select_option(label="Biên tập")
    form.get_by_role("button", name="Thêm").click()
    expect(page.get_by_role("status")).to_have_text(f"Đã thêm {colleague} với vai trò Biên tập.")
    row = page.locator("#staff-table tr", has_text=colleague)
    expect(row.get_by_label(f"Vai trò của {colleague}")).to_have_value("editor")
    screenshot(page, "canbo")

    # The colleague can now ask for a link in chat, and signs in as an editor.
    link = sign_in_link(running, NEW_MEMBER)
    colleague_browser = page.context.browser.new_context()
    try:
        theirs = colleague_browser.new_page()
        theirs.goto(link)
        theirs.locator("#sign-in-link").click()
        expect(theirs.locator("header .me")).to_contain_text(f"{colleague} · Biên tập")
        expect(theirs.get_by_role("link", name="Cán bộ")).to_have_count(0)  # not an admin's page
    finally:
        colleague_browser.close()

    # Removed (after confirming), the colleague gets no link any more.
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Xóa").click()
    expect(page.get_by_role("status")).to_have_text(f"Đã xóa {colleague} khỏi danh sách cán bộ.")
    expect(page.locator("#staff-table")).not_to_contain_text(colleague)
    assert "/dangnhap/" not in running.say(NEW_MEMBER, "/dangnhap").text


# --------------------------------------------------------------------------- questions to teach (/cauhoi)

OUT_OF_SCOPE = "xin giay phep ban hang rong"  # nothing in the starter data answers it
HAWKER_ENTRY = "1.001612"  # đăng ký thành lập hộ kinh doanh: where staff send street vendors
CITIZEN = 1001


def test_browser_a_question_attached_to_an_entry_is_answered_in_chat(running, page, screenshot) -> None:
    before = running.say(CITIZEN, OUT_OF_SCOPE)
    assert before.text.startswith("Xin lỗi, tôi chưa tìm thấy thủ tục"), before.text

    sign_in(page, running)
    page.get_by_role("link", name="Câu hỏi cần dạy").click()
    row = page.locator("#cauhoi-table tbody tr", has_text=OUT_OF_SCOPE)
    expect(row).to_have_count(1)
    expect(page.locator("#cauhoi-waiting")).to_have_text("1")
    screenshot(page, "cauhoi")

    row.get_by_role("searchbox", name="Tìm mục (mã hoặc tên)").fill("hộ kinh doanh")
    picker = row.get_by_role("combobox", name="Gắn vào mục")
    expect(picker.locator(f'option[value="{HAWKER_ENTRY}"]')).to_have_count(1)  # the search's results, live
    picker.select_option(HAWKER_ENTRY)
    row.get_by_role("button", name="Gắn vào mục").click()
    expect(row.get_by_role("status")).to_contain_text(f"Đã gắn vào {HAWKER_ENTRY}")
    expect(page.locator("#cauhoi-waiting")).to_have_text("0")  # the counts follow, without reloading

    # The bot answers it from now on: the same question in chat gets the entry.
    running.wait_knowledge_reloaded()
    after = running.say(CITIZEN, OUT_OF_SCOPE)
    assert after.text.startswith("📋 Đăng ký hộ kinh doanh") and f"fb:{HAWKER_ENTRY}:up" in after.buttons, after.text
    page.reload()
    expect(page.locator("#cauhoi-table tbody tr", has_text=OUT_OF_SCOPE)).to_have_count(0)


# --------------------------------------------------------------------------- knowledge (/kienthuc)

REISSUE_ENTRY = "1.014064"  # cấp lại thẻ căn cước
FEE_QUESTION = "cấp lại căn cước mất bao nhiêu tiền"
NEW_FEE = "any | 40000 | không | Mức thu 40.000 đồng/thẻ. |  | Thông tư 73/2024/TT-BTC"


def test_browser_an_edited_fee_changes_the_bots_answer(running, page, screenshot) -> None:
    before = running.say(CITIZEN, FEE_QUESTION)
    assert "35.000 đồng/thẻ" in before.text, before.text

    sign_in(page, running)
    page.get_by_role("link", name="Kiến thức").click()
    page.get_by_label("Tìm mục").fill("cấp lại căn cước")
    page.get_by_role("button", name="Tìm").click()
    page.locator(f'#kt-entries tr[data-entry-id="{REISSUE_ENTRY}"] a').first.click()
    expect(page.locator("#fact-fees")).to_contain_text("35.000 đồng/thẻ")
    page.get_by_role("link", name="Sửa mục này").click()
    fees = page.get_by_label("Lệ phí", exact=True)
    expect(fees).to_have_value(re.compile(r"^any \| 35000 \|"))

    # A fee the import would refuse is refused here too, in place, and nothing changes for citizens.
    fees.fill("any | bốn mươi nghìn | không | Mức thu 40.000 đồng/thẻ. |  |")
    page.get_by_role("button", name="Lưu thay đổi").click()
    expect(page.locator("#kt-form-errors")).to_contain_text("Chưa lưu")
    expect(page.locator("#err-fees")).to_contain_text("\"bốn mươi nghìn\" không phải là số")
    expect(fees).to_have_value(re.compile("bốn mươi nghìn"))  # what was typed is kept, to be corrected
    page.locator("#field-fees").evaluate("field => field.scrollIntoView({block: 'center'})")
    screenshot(page, "kienthuc-sua", full_page=False)

    fees.fill(NEW_FEE)
    page.get_by_role("button", name="Lưu thay đổi").click()
    expect(page.locator("#kt-saved")).to_contain_text("Đã lưu")
    expect(page.locator("#fact-fees")).to_contain_text("40.000 đồng/thẻ")
    expect(page.locator("#kt-recent")).to_contain_text(f"telegram:{STAFF_CHAT}")

    running.wait_knowledge_reloaded()
    after = running.say(CITIZEN, FEE_QUESTION)
    assert "Mức thu 40.000 đồng/thẻ." in after.text and "35.000" not in after.text, after.text


# --------------------------------------------------------------------------- dossiers (/hoso)

DOSSIER_HEADER = "Mã hồ sơ,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ghi chú,Số điện thoại"


def dossier_rows() -> list[str]:
    """An export of four dossiers around today: one late, one due tomorrow, one waiting for documents, one done."""
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).strftime("%d/%m/%Y")

    def code(offset: int, number: int) -> str:  # the national format: office, date received, number
        return f"000.00.12.H12-{(today + timedelta(days=offset)).strftime('%y%m%d')}-{number:04d}"

    return [
        f"{code(-9, 1)},Đăng ký khai sinh,{day(-9)},{day(-2)},Đang xử lý,,0901 234 567",
        f"{code(-3, 2)},Cấp bản sao trích lục hộ tịch,{day(-3)},{day(1)},Đã tiếp nhận,,",
        f"{code(-6, 3)},Đăng ký thường trú,{day(-6)},{day(5)},Yêu cầu bổ sung,Thiếu giấy tờ chứng minh chỗ ở,",
        f"{code(-1, 4)},Chứng thực bản sao từ bản chính,{day(-1)},{day(0)},Đã có kết quả,,",
    ]


def upload(page, name: str, lines: list[str]) -> None:
    page.get_by_label("Tệp .csv hoặc .xlsx").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": ("\n".join(lines) + "\n").encode("utf-8-sig")})
    page.get_by_role("button", name="Kiểm tra tệp").click()


def test_browser_a_dossier_file_with_an_error_names_the_row_then_the_fixed_file_is_imported(running, page, screenshot) -> None:
    good = dossier_rows()
    bad = [good[0], good[1].replace(good[1].split(",")[2], "31/02/2026"), *good[2:]]
    sign_in(page, running)
    page.get_by_role("link", name="Hồ sơ").click()
    page.get_by_role("link", name="Nhập tệp xuất từ phần mềm một cửa").click()

    upload(page, "ho-so.csv", [DOSSIER_HEADER, *bad])
    errors = page.locator("#dossier-import-errors")
    expect(errors).to_contain_text("chưa ghi gì vào cơ sở dữ liệu")
    expect(errors.locator("li")).to_have_text(['hàng 3, cột Ngày tiếp nhận: ngày "31/02/2026" không có thật.'])
    screenshot(page, "hoso-loi")
    page.get_by_role("link", name="« Danh sách hồ sơ").click()
    expect(page.locator("#dossier-total")).to_have_text("0 hồ sơ.")  # nothing of the file was stored

    page.get_by_role("link", name="Nhập tệp xuất từ phần mềm một cửa").click()
    upload(page, "ho-so.csv", [DOSSIER_HEADER, *good])
    expect(page.locator("#dossier-preview-summary")).to_contain_text("Nếu nhập: 4 hồ sơ mới")
    expect(page.locator("#dossier-import-preview tbody tr")).to_have_count(4)
    page.get_by_role("button", name="Xác nhận nhập").click()
    expect(page.locator("#dossier-import-result")).to_contain_text("4 hồ sơ hợp lệ")
    page.get_by_role("link", name="Xem danh sách hồ sơ").click()
    expect(page.locator("#dossier-table tbody tr")).to_have_count(4)
    late = good[0].split(",")[0]
    expect(page.locator(f'#dossier-table tr[data-code="{late}"]')).to_contain_text("trễ hẹn")
    screenshot(page, "hoso")


# --------------------------------------------------------------------------- announcements (/thongbao)

ANNOUNCEMENT = "Từ thứ Bảy 05/12, Bộ phận Một cửa tiếp nhận hồ sơ cả buổi sáng thứ Bảy (7:30–11:30)."
SUBSCRIBERS = (1001, 1002)


def test_browser_an_announcement_sent_from_the_console_reaches_the_subscribers_chats(running, page, screenshot) -> None:
    for chat_id in SUBSCRIBERS:
        assert running.say(chat_id, "/dangky").text.startswith("Đã đăng ký!")
    sign_in(page, running)
    page.get_by_role("link", name="Thông báo").click()
    page.get_by_role("link", name="Soạn thông báo mới").click()
    page.get_by_label("Nội dung").fill(ANNOUNCEMENT)
    # The recipients and the message as citizens will see it, while composing.
    expect(page.locator("#songuoinhan")).to_have_attribute("data-count", "2")
    expect(page.locator("#xemtruoc .tb-bubble").first).to_have_text(ANNOUNCEMENT)
    screenshot(page, "thongbao-soan")

    page.get_by_role("button", name="Gửi thông báo").click()
    expect(page.get_by_role("status")).to_contain_text("Đã tạo thông báo #1 cho 2 người")
    # The progress follows the sending without reloading, to the report.
    progress = page.locator("#tiendo-1")
    expect(progress).to_have_attribute("data-state", "done")
    expect(progress.locator(".tb-sent")).to_have_text("2")
    for chat_id in SUBSCRIBERS:
        running.wait_message(chat_id, matching=lambda m: m.text == ANNOUNCEMENT, what="the announcement")
    assert not any(ANNOUNCEMENT in text for text in running.texts(STAFF_CHAT)), "the staff member is no subscriber"
    page.get_by_role("link", name="← Danh sách thông báo").click()
    expect(page.locator("#thongbao-1")).to_contain_text("telegram:9000")
    screenshot(page, "thongbao")


# --------------------------------------------------------------------------- overview (/tongquan)

def test_browser_the_overview_counts_what_citizens_asked_in_chat(running, page, screenshot) -> None:
    answered = running.say(2001, FEE_QUESTION)
    assert f"fb:{REISSUE_ENTRY}:up" in answered.buttons
    assert running.press(2001, f"fb:{REISSUE_ENTRY}:up").text  # 👍, thanked
    assert running.say(2002, "lam cccd lan dau mat bao nhieu tien").text.startswith("📋")
    assert running.say(2003, OUT_OF_SCOPE).text.startswith("Xin lỗi")
    assert running.say(2001, "/dangky").text.startswith("Đã đăng ký!")

    sign_in(page, running)
    expect(page.locator("#figure-questions .figure")).to_have_text("3")
    expect(page.locator("#figure-citizens .figure")).to_have_text("3")
    expect(page.locator("#figure-answered .figure")).to_have_text("66,7%")
    expect(page.locator("#figure-satisfaction .figure")).to_have_text("100,0%")
    expect(page.locator("#figure-subscribers .figure")).to_have_text("1")
    expect(page.locator("#table-thu-tuc-hoi-nhieu")).to_contain_text("căn cước")
    screenshot(page, "tongquan")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "tongquan-dien-thoai", full_page=False)
