"""/tongquan: every staff role sees how the bot served citizens over a range of days, with charts and tables
that download as CSV (Excel-ready Vietnamese) or XLSX; without a session nothing is shown."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from web_support import anonymous, signed_in, web_app

from handlers.buttons import FeedbackButton
from handlers.messages import Incoming
from knowledge.staff import Role

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CHAT_A, CHAT_B = "98765432101", "98765432102"


def ask(bot, chat_id: str, text: str):
    [reply, *_] = bot.router.handle(Incoming("telegram", chat_id, chat_id, text))
    return reply


@pytest.fixture
def bot(database_url):
    with web_app(database_url) as bot:
        answer = ask(bot, CHAT_A, "lệ phí làm căn cước bao nhiêu")
        assert answer.outcome == "answered"
        bot.router.handle(Incoming("telegram", CHAT_A, CHAT_A, button=FeedbackButton(answer.entry_id, "up").pack()))
        ask(bot, CHAT_B, "lệ phí làm căn cước bao nhiêu")
        ask(bot, CHAT_B, "thủ tục đăng ký nuôi khủng long cảnh")
        yield bot


def figure(page: str, name: str) -> str:
    start = page.index(f'id="figure-{name}"')
    return page[start:page.index("</div>", page.index('class="figure"', start))].rsplit(">", 1)[1]


@pytest.mark.parametrize("role", list(Role))
def test_every_staff_role_sees_the_overview_of_the_last_30_days(bot, role):
    client = signed_in(bot, role)
    page = client.get("/tongquan")
    assert page.status_code == 200
    html = page.text
    assert figure(html, "questions") == "3" and figure(html, "citizens") == "2"
    assert figure(html, "satisfaction") == "100,0%"
    today = datetime.now(ZONE).date()
    assert f'value="{(today - timedelta(days=29)).isoformat()}"' in html and f'value="{today.isoformat()}"' in html
    assert "<svg" in html and "<title" in html and "Câu hỏi theo ngày" in html
    assert "Cấp thẻ căn cước" in html or "căn cước" in html  # the most asked procedure, by name
    assert CHAT_A not in html and CHAT_B not in html  # no chat id on the page


def test_without_a_session_nothing_is_shown(bot):
    client = anonymous(bot)
    page = client.get("/tongquan")
    assert page.status_code == 303 and page.headers["location"].startswith("/dangnhap")
    download = client.get("/tongquan/bang/tong-hop.csv", headers={"accept": "text/csv"})
    assert download.status_code in (303, 401) and "Câu hỏi" not in download.text


def test_a_table_downloads_as_csv_that_excel_reads_in_vietnamese(bot):
    client = signed_in(bot)
    today = datetime.now(ZONE).date().isoformat()
    response = client.get(f"/tongquan/bang/cau-hoi-theo-kenh.csv?from={today}&to={today}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Kênh", "Đã trả lời", "Hỏi lại cho rõ", "Chưa hiểu", "Hỏi về pháp luật", "Tổng"]
    assert rows[1] == ["Telegram", "2", "0", "1", "0", "3"]


def test_a_table_downloads_as_xlsx(bot):
    client = signed_in(bot, Role.BROADCASTER)
    response = client.get("/tongquan/bang/tong-hop.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["Câu hỏi"] == 3 and values["Người hỏi (khác nhau)"] == 2 and values["Tỉ lệ hài lòng (%)"] == 100


def test_a_range_before_the_questions_shows_none_and_bad_dates_are_explained(bot):
    client = signed_in(bot, Role.EDITOR)
    page = client.get("/tongquan?from=2020-01-01&to=2020-01-31").text
    assert figure(page, "questions") == "0" and 'value="2020-01-01"' in page
    assert "Chưa có số liệu trong kỳ này." in page
    bad = client.get("/tongquan?from=31-02-2026&to=2026-01-01")
    assert bad.status_code == 200 and "Ngày không hợp lệ" in bad.text and figure(bad.text, "questions") == "3"
    backwards = client.get("/tongquan?from=2026-03-10&to=2026-03-01").text
    assert "Ngày bắt đầu sau ngày kết thúc" in backwards
    assert client.get("/tongquan/bang/khong-co.csv").status_code == 404
    assert client.get("/tongquan/bang/tong-hop.pdf").status_code == 404


def test_exported_text_never_runs_as_a_spreadsheet_formula_and_numbers_stay_numbers():
    from web.export import to_csv, to_xlsx

    rows = [["=HYPERLINK(\"http://x\")", 12, 3.5, None], ["Bình thường", 0, None, "-1"]]
    text = to_csv(["Nội dung", "Số", "Tỉ lệ", "Ghi chú"], rows).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1:] == [["'=HYPERLINK(\"http://x\")", "12", "3.5", ""], ["Bình thường", "0", "", "'-1"]]
    sheet = load_workbook(io.BytesIO(to_xlsx(["Nội dung", "Số", "Tỉ lệ", "Ghi chú"], rows))).active
    assert [c.value for c in sheet[2]] == ["'=HYPERLINK(\"http://x\")", 12, 3.5, None]
