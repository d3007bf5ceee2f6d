"""Staff import the one-stop software's export: a right file is imported, a wrong one writes nothing and
says where every problem is (row and column), as the knowledge base import does."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import func, select
from test_cli import run_bot

from knowledge.spreadsheet import FileProblems
from reminders.importer import read_dossiers
from reminders.models import DossierRow, DossierStatusRow
from reminders.statuses import Status, parse_status

HEADER = "Mã hồ sơ,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ghi chú,Hình thức trả kết quả"
GOOD = [
    "000.00.12.H12-261120-0001,Đăng ký khai sinh,20/11/2026,02/12/2026,Đã tiếp nhận,,",
    "000.00.12.H12-261120-0002,Cấp bản sao trích lục hộ tịch,20/11/2026 08:30,25/11/2026 16:00,ĐANG XỬ LÝ,,Qua bưu điện",
    "000.00.12.H12-261121-0003,Đăng ký thường trú,21/11/2026,05/12/2026,yeu cau bo sung,Thiếu giấy tờ chứng minh chỗ ở,",
]


def write(tmp_path, lines: list[str], name: str = "ho-so.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


def count(db, model=DossierRow) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("text,status", [
    ("Đã tiếp nhận", Status.RECEIVED), ("đang xử lý", Status.PROCESSING), ("DANG XU LY", Status.PROCESSING),
    ("Đang giải quyết", Status.PROCESSING), ("Yêu cầu bổ sung hồ sơ", Status.NEEDS_DOCUMENTS),
    ("Chờ bổ sung", Status.NEEDS_DOCUMENTS), ("Đã có kết quả", Status.RESULT_READY), ("chờ trả kết quả", Status.RESULT_READY),
    ("Đã trả kết quả", Status.RETURNED), (" Từ chối ", Status.REJECTED), ("Không giải quyết", Status.REJECTED),
    ("da co ket qua.", Status.RESULT_READY), ("Hoàn tất thanh toán", None), ("", None),
])
def test_statuses_as_offices_write_them(text, status):
    assert parse_status(text) == status


def test_a_right_csv_is_imported_and_importing_it_again_changes_nothing(tmp_path, database_url, db):
    path = write(tmp_path, [HEADER, *GOOD])
    first = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 hồ sơ hợp lệ" in first.stdout and "3 hồ sơ mới" in first.stdout
    with db() as session:
        second = session.get(DossierRow, "000.00.12.H12-261120-0002")
        assert second.status == "processing" and second.delivery == "Qua bưu điện"
        assert second.due_at.replace(tzinfo=None) == datetime(2026, 11, 25, 9, 0), "16:00 office time is 09:00 UTC"
        third = session.get(DossierRow, "000.00.12.H12-261121-0003")
        assert third.status == "needs_documents" and third.note == "Thiếu giấy tờ chứng minh chỗ ở"
    again = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert again.returncode == 0 and "0 hồ sơ mới, 0 thay đổi trạng thái" in again.stdout
    assert count(db, DossierStatusRow) == 3, "a status is noticed once"

    changed = write(tmp_path, [HEADER, GOOD[0].replace("Đã tiếp nhận", "Đã có kết quả")], "ho-so-2.csv")
    result = run_bot(["--db", database_url, "dossiers", "import", str(changed)], tmp_path)
    assert "1 thay đổi trạng thái" in result.stdout
    assert count(db, DossierStatusRow) == 4 and count(db) == 3, "dossiers missing from a partial export stay as they are"
    shown = run_bot(["--db", database_url, "dossiers", "show", "000.00.12.h12-261120-0001"], tmp_path)
    assert shown.returncode == 0 and "Đã có kết quả" in shown.stdout and "Đã tiếp nhận" in shown.stdout
    listed = run_bot(["--db", database_url, "dossiers", "list", "--status", "da co ket qua"], tmp_path)
    assert "000.00.12.H12-261120-0001" in listed.stdout and "000.00.12.H12-261120-0002" not in listed.stdout


def test_every_problem_is_reported_with_row_and_column_and_nothing_is_written(tmp_path, database_url, db):
    path = write(tmp_path, [
        HEADER,
        GOOD[0],
        "000.00.12.H12-261120-0002,Đăng ký kết hôn,31/02/2026,05/03/2026,Đã tiếp nhận,,",
        "000.00.12.H12-261120-0001,Đăng ký khai sinh,20/11/2026,02/12/2026,Đã tiếp nhận,,",
        "12345,Đăng ký khai tử,20/11/2026,22/11/2026,Đang chờ ông ký,,",
        "000.00.12.H12-261120-0005,,20/11/2026,10/11/2026,Đã tiếp nhận,,",
    ])
    result = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert result.returncode == 1
    err = " ".join(result.stderr.split())
    assert "không ghi gì" in err
    assert "hàng 3, cột Ngày tiếp nhận: ngày \"31/02/2026\" không có thật" in err
    assert "hàng 4, cột Mã hồ sơ: mã hồ sơ 000.00.12.H12-261120-0001 trùng với hàng 2" in err
    assert "hàng 5, cột Mã hồ sơ: mã \"12345\" không đúng dạng" in err
    assert "hàng 5, cột Trạng thái: trạng thái \"Đang chờ ông ký\" không rõ nghĩa" in err
    assert "hàng 6, cột Thủ tục: ô bắt buộc đang trống" in err
    assert "hàng 6, cột Ngày hẹn trả: ngày hẹn trả trước ngày tiếp nhận" in err
    assert count(db) == 0, "the good row was not written either"


def test_a_file_with_the_wrong_columns_is_refused(tmp_path):
    path = write(tmp_path, ["Mã hồ sơ,Tên thủ tục,Trạng thái", "000.00.12.H12-261120-0001,Đăng ký khai sinh,Đã tiếp nhận"])
    with pytest.raises(FileProblems) as caught:
        read_dossiers(path)
    [problem] = caught.value.problems
    assert "thiếu cột Ngày tiếp nhận, Ngày hẹn trả" in str(problem) and problem.row == 1
    with pytest.raises(FileProblems) as caught:
        read_dossiers(write(tmp_path, ["STT,Tên,Ngày", "1,a,b"], "khac.csv"))
    assert "không tìm thấy hàng tiêu đề" in str(caught.value)
    with pytest.raises(FileProblems) as caught:
        read_dossiers(write(tmp_path, ["x"], "ho-so.txt"))
    assert "định dạng không hỗ trợ" in str(caught.value)
    junk = tmp_path / "ho-so.xlsx"
    junk.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(FileProblems) as caught:
        read_dossiers(junk)
    assert "không phải tệp Excel" in str(caught.value)


def test_an_xlsx_export_with_a_title_above_the_headings_and_real_dates(tmp_path, database_url, db):
    book = Workbook()
    sheet = book.active
    sheet.title = "Danh sách hồ sơ"
    sheet.append(["DANH SÁCH HỒ SƠ TIẾP NHẬN THÁNG 11/2026"])
    sheet.append([])
    sheet.append(["STT", "MÃ HỒ SƠ", "Thủ tục", "Ngày tiếp nhận", "Ngày hẹn trả", "Tình trạng", "Hình thức trả kết quả", "Người nộp"])
    sheet.append([1, "000.00.12.H12-261120-0001", "Đăng ký khai sinh", datetime(2026, 11, 20, 8, 0), datetime(2026, 12, 2), "Đã có kết quả", "Trực tiếp", "Nguyễn Văn A"])
    sheet.append([2, "000.00.12.H12-261120-0002", "Đăng ký kết hôn", "20/11/2026", "02/12/2026", "Từ chối", "", "Trần Thị B"])
    path = tmp_path / "xuat.xlsx"
    book.save(path)
    result = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    with db() as session:
        first = session.get(DossierRow, "000.00.12.H12-261120-0001")
        assert first.status == "result_ready" and first.received_at.replace(tzinfo=None) == datetime(2026, 11, 20, 1, 0)
        assert session.get(DossierRow, "000.00.12.H12-261120-0002").status == "rejected"

    sheet.append([3, "000.00.12.H12-261120-0003", "Đăng ký khai tử", "20/11/2026", "31/11/2026", "Đã tiếp nhận", "", ""])
    book.save(path)
    with pytest.raises(FileProblems) as caught:
        read_dossiers(path)
    [problem] = caught.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("Danh sách hồ sơ", 6, "Ngày hẹn trả")
    assert "không có thật" in problem.reason


def test_dry_run_writes_nothing(tmp_path, database_url, db):
    path = write(tmp_path, [HEADER, *GOOD])
    result = run_bot(["--db", database_url, "dossiers", "import", str(path), "--dry-run"], tmp_path)
    assert result.returncode == 0 and "Nếu nhập: 3 hồ sơ mới" in result.stdout
    assert count(db) == 0


@given(st.text(max_size=40))
def test_any_typed_code_is_either_refused_or_canonical(typed):
    from reminders.codes import _CODE, find_code, normalize_code

    code = normalize_code(typed)
    assert code is None or _CODE.fullmatch(code)
    found, malformed = find_code(typed)
    assert not (found and malformed)
    assert found is None or _CODE.fullmatch(found)


@given(st.one_of(st.text(max_size=25), st.dates().map(lambda d: d.strftime("%d/%m/%Y"))))
def test_any_date_cell_is_a_real_date_or_a_plain_reason(cell):
    from zoneinfo import ZoneInfo

    from reminders.importer import parse_date

    try:
        moment = parse_date(cell, ZoneInfo("Asia/Ho_Chi_Minh"))
    except ValueError as error:
        assert str(error) and cell.strip() in str(error)
    else:
        assert moment.tzinfo is not None


# --------------------------------------------------------------------------- implausible dates, the filer's digits

def test_a_far_future_date_is_a_problem_with_its_row_and_column_and_nothing_is_written(tmp_path, database_url, db):
    path = write(tmp_path, [HEADER, GOOD[0], "000.00.12.H12-261120-0002,Đăng ký kết hôn,20/11/2026,31/12/9999,Đã tiếp nhận,,"])
    result = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert result.returncode == 1
    err = " ".join(result.stderr.split())
    assert "hàng 3, cột Ngày hẹn trả: ngày 31/12/9999 nằm ngoài khoảng hợp lý" in err and "không ghi gì" in err
    assert count(db) == 0


def test_phone_and_id_columns_keep_only_their_last_four_digits(tmp_path, database_url, db):
    header = HEADER + ",SĐT,Số CMND/CCCD"
    path = write(tmp_path, [header, GOOD[0] + ",0901.234.567,001234567890", GOOD[1] + ",,"])
    result = run_bot(["--db", database_url, "dossiers", "import", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    with db() as session:
        first = session.get(DossierRow, "000.00.12.H12-261120-0001")
        assert (first.phone_last4, first.id_last4) == ("4567", "7890")
        assert session.get(DossierRow, "000.00.12.H12-261120-0002").phone_last4 is None
    without = write(tmp_path, [HEADER, GOOD[0].replace("Đã tiếp nhận", "Đang xử lý")], "khong-sdt.csv")
    assert run_bot(["--db", database_url, "dossiers", "import", str(without)], tmp_path).returncode == 0
    with db() as session:
        assert session.get(DossierRow, "000.00.12.H12-261120-0001").phone_last4 == "4567", "an export without the column keeps them"
    shown = run_bot(["--db", database_url, "dossiers", "show", "000.00.12.H12-261120-0001"], tmp_path)
    assert "Xác nhận người nộp: có 4 số cuối SĐT/CCCD" in shown.stdout and "4567" not in shown.stdout


def test_an_xlsx_column_with_the_four_digits_and_a_number_cell(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Mã hồ sơ", "Thủ tục", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái", "4 số cuối SĐT", "Số giấy tờ tùy thân"])
    sheet.append(["000.00.12.H12-261120-0001", "Đăng ký khai sinh", "20/11/2026", "02/12/2026", "Đã tiếp nhận", "4567", 1234567890.0])
    sheet.append(["000.00.12.H12-261120-0002", "Đăng ký khai sinh", "20/11/2026", "02/12/2026", "Đã tiếp nhận", "45", None])
    path = tmp_path / "ho-so.xlsx"
    book.save(path)
    with pytest.raises(FileProblems) as caught:
        read_dossiers(path)
    [problem] = caught.value.problems
    assert "hàng 3, cột Số điện thoại: cần ít nhất 4 chữ số" in str(problem) and '"45"' not in str(problem)
    sheet.delete_rows(3)
    book.save(path)
    [update] = read_dossiers(path)
    assert (update.phone_last4, update.id_last4) == ("4567", "7890")
