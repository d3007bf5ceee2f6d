"""Unanswered questions are kept "without your name or account": phone and ID numbers, dossier codes,
e-mails, names and addresses are masked before anything is stored, and procedure words are left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import Chat, make_settings
from sqlalchemy import select

from handlers import build_router
from knowledge import unanswered
from knowledge.models import UnansweredRow
from nlp.personal import mask


@pytest.mark.parametrize(("typed", "kept"), [
    ("sdt của tôi là 0901234567, cần làm cccd", "sdt của tôi là [SĐT], cần làm cccd"),
    ("gọi 090 123 4567 hoặc +84 912 345 678 giúp", "gọi [SĐT] hoặc [SĐT] giúp"),
    ("số cccd 001089012345 bị sai", "số cccd [SỐ GIẤY TỜ] bị sai"),
    ("cmnd 123456789 hết hạn", "cmnd [SỐ GIẤY TỜ] hết hạn"),
    ("cccd 079 203 001 234 mất rồi", "cccd [SỐ GIẤY TỜ] mất rồi"),
    ("mã số bhxh 7912345678 tra ở đâu", "mã số bhxh [SỐ GIẤY TỜ] tra ở đâu"),
    ("hồ sơ 000.00.12.H12-261120-0001 tới đâu rồi", "hồ sơ [MÃ HỒ SƠ] tới đâu rồi"),
    ("gửi kết quả qua nguyenvana@gmail.com được không", "gửi kết quả qua [EMAIL] được không"),
    ("ông Nguyễn Văn A mất, cần giấy báo tử", "ông [TÊN] mất, cần giấy báo tử"),
    ("bà nguyễn thị hoa mất năm ngoái", "bà [TÊN] mất năm ngoái"),
    ("ong nguyen van a mat roi", "ong [TÊN] mat roi"),
    ("tôi tên là Trần Thị Bình, muốn đăng ký kết hôn", "tôi tên là [TÊN], muốn đăng ký kết hôn"),
    ("tôi tên là hoa muốn làm khai sinh", "tôi tên là [TÊN] muốn làm khai sinh"),
    ("họ tên: Lê Văn Tám", "họ tên: [TÊN]"),
    ("Tôi là Nguyễn Văn Nam, cần xin giấy xác nhận", "Tôi là [TÊN], cần xin giấy xác nhận"),
    ("khai sinh cho con, bố là anh Hoàng Minh Tuấn", "khai sinh cho con, bố là anh [TÊN]"),
    ("nhà tôi ở số 12 đường Lê Lợi, phường Bến Nghé", "nhà tôi ở [ĐỊA CHỈ], phường Bến Nghé"),
    ("số nhà 45 ngõ 12 phố Hàng Bạc", "[ĐỊA CHỈ]"),
    ("số 7 đường lê văn sỹ quận 3", "[ĐỊA CHỈ] quận 3"),
    ("hẻm 34/5 đường số 7", "[ĐỊA CHỈ]"),
])
def test_personal_data_is_masked(typed, kept):
    assert mask(typed) == kept


@pytest.mark.parametrize("question", [
    "ông bà mất thì thừa kế nhà đất thế nào",
    "anh chị em ruột có được ủy quyền không",
    "chị gái tôi muốn đăng ký tạm trú",
    "Anh Chị cho hỏi làm cccd ở đâu",
    "cháu nội tôi cần làm giấy khai sinh",
    "tôi ở Bà Rịa - Vũng Tàu muốn làm hộ chiếu",
    "ba Ria Vung Tau lam ho chieu o dau",
    "sai họ tên trên giấy khai sinh thì làm sao",
    "thay đổi họ tên là thủ tục gì",
    "đổi tên cho con",
    "đăng ký thường trú ở thành phố Hồ Chí Minh",
    "giấy phép lái xe đường bộ đổi ở đâu",
    "đường dây nóng của phường là gì",
    "lệ phí 1.000.000 đồng theo thông tư 01/2022/TT-BTP, mẫu số 12",
    "thủ tục 1.001193 năm 2024 mất bao lâu",
    "lam cccd mat bn tien",
    "em muốn hỏi về tạm trú",
])
def test_procedure_words_relations_and_places_are_kept(question):
    assert mask(question) == question


@pytest.fixture
def wired(catalog, db, database_url):
    return build_router(catalog, make_settings(database_url), db)


def stored(db) -> list[UnansweredRow]:
    with db() as session:
        return list(session.scalars(select(UnansweredRow).order_by(UnansweredRow.id)))


def test_an_unanswered_question_is_stored_masked_and_counted_by_its_masked_words(wired, db):
    Chat(wired, "801", "telegram").send("tôi tên Nguyễn Văn Bình sđt 0901234567 hỏi giá vé xem bóng đá")
    Chat(wired, "802", "telegram").send("tôi tên Trần Thị Hoa sđt 0987654321 hỏi giá vé xem bóng đá")
    [row] = stored(db)
    assert row.text == "tôi tên [TÊN] sđt [SĐT] hỏi giá vé xem bóng đá" and row.count == 2
    assert "0901234567" not in row.key and "binh" not in row.key


def test_a_thumbs_down_keeps_the_masked_question(wired, db):
    chat = Chat(wired, "803", "telegram")
    chat.send("làm căn cước cho ông Phạm Văn Đồng ở số 5 đường Trần Phú")
    chat.press("fb:1.001193:down")
    texts = [row.text for row in stored(db)]
    assert texts and all("Phạm" not in t and "Trần Phú" not in t for t in texts)
    assert any("ông [TÊN]" in t and "[ĐỊA CHỈ]" in t for t in texts)


def test_questions_kept_before_masking_are_masked_and_merged(db):
    """What the data migration runs on existing databases."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with db.begin() as session:
        for text, count, reason in [("ông Nguyễn Văn A mất, làm giấy báo tử", 2, "unknown"),
                                    ("ông Lê Văn B mất, làm giấy báo tử", 3, "thumbs_down"),
                                    ("lệ phí khai sinh bao nhiêu", 1, "low")]:
            session.add(UnansweredRow(key=unanswered.question_key(text), text=text, reason=reason, count=count,
                                      first_seen=now, last_seen=now))
    with db.kw["bind"].begin() as connection:
        assert unanswered.mask_stored(connection) == 2
    rows = stored(db)
    assert [(r.text, r.count, r.reason) for r in rows] == [
        ("ông [TÊN] mất, làm giấy báo tử", 5, "thumbs_down"), ("lệ phí khai sinh bao nhiêu", 1, "low")]
    assert rows[0].key == unanswered.question_key(rows[0].text)
    with db.kw["bind"].begin() as connection:
        assert unanswered.mask_stored(connection) == 0, "running it again changes nothing"
