"""Staff in chat (issue 3), on the platform-neutral messages every channel uses: an editor sends a
spreadsheet, sees what would change, confirms or cancels; looks an entry up; reviews the questions the
bot could not answer and attaches one to an entry; undoes a change. Citizens never see any of it."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import uuid
from dataclasses import dataclass

import pytest
from conftest import make_settings
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from test_kb_files import (  # noqa: F401 - fixtures
    FEE_ENTRY,
    FEE_QUESTION,
    RECORDS,
    flat,
    kb,
    kb_url,
    money,
    raise_fee,
    snapshot,
    starter_db,
)

from handlers import build_router
from handlers.core import Router
from handlers.messages import Incoming, IncomingFile, Reply
from handlers.staff import UPLOAD_DIR
from knowledge import editing, staff
from knowledge.catalog import LiveCatalog
from knowledge.db import session_factory
from knowledge.loader import open_knowledge_base
from knowledge.models import UnansweredRow
from knowledge.repository import get_entry, load_entries
from knowledge.spreadsheet import export_csv

EDITOR, BROADCASTER = "42", "55"
UNKNOWN_COMMAND = "Tôi chưa hiểu lệnh này. Gõ /help để xem các lệnh, hoặc cứ đặt câu hỏi bằng lời nhé."
ONLY_TEXT = "Xin lỗi, tôi chỉ đọc được câu hỏi bằng chữ. Bạn vui lòng gõ câu hỏi nhé."
STAFF_COMMANDS = ("/muc", "/chuatraloi", "/gan", "/hoantac")
OUT_OF_SCOPE = ("xin giấy phép bán hàng rong", "xin giay phep ban hang rong")  # with and without diacritics
HAWKER_ENTRY = "1.001612"  # đăng ký hộ kinh doanh: where staff would send street vendors


@dataclass
class Office:
    """One bot (router on a live catalogue refreshed by hand) with an editor registered as telegram:42."""

    url: str
    engine: Engine
    db: sessionmaker[Session]
    live: LiveCatalog
    router: Router

    def send(self, user: str, text: str = "", *, button: str | None = None, file: IncomingFile | None = None) -> list[Reply]:
        return self.router.handle(Incoming("telegram", f"chat-{user}", user, text, button=button, file=file))

    def say(self, user: str, text: str) -> Reply:
        replies = self.send(user, text)
        assert len(replies) == 1, replies
        return replies[0]

    def press(self, user: str, data: str) -> Reply:
        (reply,) = self.send(user, button=data)
        return reply

    def upload(self, user: str, name: str, data: bytes) -> Reply:
        (reply,) = self.send(user, file=IncomingFile(name, data))
        return reply

    def kb_csv(self, fee_change: int = 5000) -> tuple[bytes, int, int]:
        """The knowledge base as exported, with the fee of FEE_ENTRY raised, as Excel saves a CSV."""
        with self.db() as session:
            rows = list(csv.DictReader(io.StringIO(export_csv(load_entries(session)))))
        row = next(r for r in rows if r["id"] == FEE_ENTRY)
        row["fees"], old, new = raise_fee(row["fees"], fee_change)
        return _csv_bytes(rows), old, new

    def entry(self, entry_id: str):
        with self.db() as session:
            return get_entry(session, entry_id)

    def unanswered(self) -> list[UnansweredRow]:
        with self.db() as session:
            return list(session.scalars(select(UnansweredRow).order_by(UnansweredRow.id)))


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


@pytest.fixture
def office(kb_url) -> Office:
    engine = open_knowledge_base(kb_url)
    db = session_factory(engine)
    with db.begin() as session:
        staff.add(session, "telegram", EDITOR, staff.Role.EDITOR)
        staff.add(session, "telegram", BROADCASTER, staff.Role.BROADCASTER)
    live = LiveCatalog(engine)  # not started: the tests refresh it when they mean to
    yield Office(kb_url, engine, db, live, build_router(live, make_settings(), db))
    engine.dispose()


def upload_name(prefix: str = "kb", suffix: str = ".csv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}{suffix}"


def left_behind(name: str) -> list:
    """Uploaded copies of `name` still lying in the upload folder."""
    return list(UPLOAD_DIR.glob(f"*{name}")) if UPLOAD_DIR.exists() else []


# --------------------------------------------------------------------------- import from chat


def test_an_editor_file_shows_the_change_and_cancel_writes_nothing(office):
    data, _, _ = office.kb_csv()
    name = upload_name()
    before = snapshot(office.url)
    total = len(before.entries)

    reply = office.upload(EDITOR, name, data)
    assert f"Tệp {name} hợp lệ ({total} mục). Nếu nhập: 0 mục mới, 1 mục sửa, {total - 1} mục không đổi." in reply.text
    assert f"• {FEE_ENTRY}: sửa fees" in reply.text
    assert [[b.label for b in row] for row in reply.buttons] == [["✅ Nhập", "❌ Hủy"]]
    assert snapshot(office.url) == before, "validating writes nothing"

    cancelled = office.say(EDITOR, "2")  # where buttons are not shown, the choice is typed by its number
    assert cancelled.text == f"Đã hủy, không nhập tệp {name}."
    assert snapshot(office.url) == before
    assert not left_behind(name), "the uploaded copy is deleted"
    late = office.press(EDITOR, "imp:yes")
    assert "Không có tệp nào đang chờ nhập" in late.text
    assert snapshot(office.url) == before


def test_confirming_writes_the_change_and_the_answer_changes_after_refresh(office):
    citizen = "1001"
    data, old, new = office.kb_csv()
    assert f"{money(old)} đồng" in office.say(citizen, FEE_QUESTION).text
    name = upload_name()
    before = snapshot(office.url)

    office.upload(EDITOR, name, data)
    done = office.press(EDITOR, "imp:yes")
    assert done.text.startswith(f"Đã nhập {name}: 0 mục mới, 1 mục sửa, {len(before.entries) - 1} mục không đổi.")
    assert "/hoantac" in done.text
    assert not left_behind(name)
    assert office.entry(FEE_ENTRY).fees[0].amount_vnd == new
    assert snapshot(office.url).revisions == before.revisions + 1
    with office.db() as session:
        (revision,) = editing.history(session, FEE_ENTRY)
    assert (revision.actor, revision.source, revision.action) == (f"telegram:{EDITOR}", f"chat:{name}", "update")

    assert office.live.refresh() is True
    answer = office.say(citizen, FEE_QUESTION)
    assert answer.entry_id == FEE_ENTRY and answer.aspects == ("fee",)
    assert f"{money(new)} đồng" in answer.text and f"{money(old)} đồng" not in answer.text

    looked_up = office.say(EDITOR, f"/muc {FEE_ENTRY}")
    assert f"Thay đổi #{revision.id}" in looked_up.text and f"telegram:{EDITOR} (chat:{name})" in looked_up.text

    undone = office.say(EDITOR, f"/hoantac {revision.id}")
    assert undone.text == f"Đã hoàn tác thay đổi #{revision.id} của {FEE_ENTRY}."
    assert snapshot(office.url).entries == before.entries
    assert office.live.refresh() is True
    assert f"{money(old)} đồng" in office.say(citizen, FEE_QUESTION).text
    again = office.say(EDITOR, f"/hoantac {revision.id}")
    assert "đã được hoàn tác" in again.text


def test_confirming_after_someone_else_changed_the_knowledge_base_is_refused(office):
    """Issue 10: the summary an editor confirms was computed on one version; if another change came in
    between (here a /gan by another editor), "Nhập" writes nothing and says why, instead of silently
    overwriting that change with the file's older text."""
    other = "43"
    with office.db.begin() as session:
        staff.add(session, "telegram", other, staff.Role.EDITOR)
    data, old, _ = office.kb_csv()
    name = upload_name()
    preview = office.upload(EDITOR, name, data)
    assert "1 mục sửa" in preview.text

    office.say("2001", OUT_OF_SCOPE[0])
    (question,) = office.unanswered()
    assert office.say(other, f"/gan {question.id} {FEE_ENTRY}").text.startswith(f"Đã gắn câu hỏi #{question.id}")
    moved = snapshot(office.url)

    refused = office.press(EDITOR, "imp:yes")
    assert refused.text.startswith(f"Chưa nhập tệp {name}: Cơ sở kiến thức đã có thay đổi khác (phiên bản "), refused.text
    assert "chưa ghi gì" in refused.text and not refused.buttons
    assert snapshot(office.url) == moved, "the other editor's alias stands, nothing of the file written"
    assert OUT_OF_SCOPE[0] in office.entry(FEE_ENTRY).aliases and office.entry(FEE_ENTRY).fees[0].amount_vnd == old
    assert not left_behind(name)

    fresh, _, new = office.kb_csv()  # exported again: it now holds the alias too
    office.upload(EDITOR, name, fresh)
    assert office.press(EDITOR, "imp:yes").text.startswith(f"Đã nhập {name}: 0 mục mới, 1 mục sửa")
    assert office.entry(FEE_ENTRY).fees[0].amount_vnd == new and OUT_OF_SCOPE[0] in office.entry(FEE_ENTRY).aliases


def test_a_file_with_errors_lists_them_with_their_rows_and_writes_nothing(office):
    with office.db() as session:
        rows = list(csv.DictReader(io.StringIO(export_csv(load_entries(session)))))
    rows[4]["id"] = ""
    fee_row = next(i for i, r in enumerate(rows) if r["id"] == FEE_ENTRY)
    rows[fee_row]["fees"] = "any | ba mươi lăm nghìn | không | Lệ phí"
    name = upload_name("loi")
    before = snapshot(office.url)

    reply = office.upload(EDITOR, name, _csv_bytes(rows))
    assert reply.text.startswith(f"Tệp {name} có lỗi nên chưa nhập gì:")
    assert f"{name}, hàng 6, cột id: thiếu id." in reply.text
    assert f"{name}, hàng {fee_row + 2}, cột fees" in reply.text and "không phải là số" in reply.text
    assert not reply.buttons and str(UPLOAD_DIR) not in reply.text
    assert not left_behind(name)
    assert "Không có tệp nào đang chờ nhập" in office.press(EDITOR, "imp:yes").text
    assert snapshot(office.url) == before


def test_a_national_file_with_a_value_too_long_for_the_database_is_refused_with_its_line(office):
    with gzip.open(RECORDS, "rt", encoding="utf-8") as handle:
        record = json.loads(handle.readline())
    record["linh_vuc"] = "Lĩnh vực " * 40
    name = upload_name("quoc-gia", ".jsonl")
    before = snapshot(office.url)
    reply = office.upload(EDITOR, name, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    assert reply.text.startswith(f"Tệp {name} có lỗi nên chưa nhập gì:\n• {name}, dòng 1, mục {record['ma_thu_tuc']}: "
                                 "group dài 359 ký tự, tối đa 255 ký tự"), reply.text
    assert not reply.buttons and not left_behind(name)
    assert snapshot(office.url) == before


@pytest.mark.parametrize("name, size, says", [
    ("anh.xlsx", 3000, "không đọc được tệp Excel"),
    ("rac.csv", 50 * 1024 * 1024, "quá lớn"),
    ("anh.png", 10, "không phải định dạng nhập được"),
    ("du-lieu.yaml", 0, "YAML sai cú pháp"),
])
def test_a_bad_file_from_an_editor_is_refused_and_nothing_written(office, name, size, says):
    data = b"- id: [\n" if name.endswith(".yaml") else b"\x89PNG\r\n\x1a\n" + random.Random(size).randbytes(size)
    before = snapshot(office.url)
    reply = office.upload(EDITOR, name, data)
    assert name in reply.text and says in reply.text and not reply.buttons
    assert snapshot(office.url) == before


# --------------------------------------------------------------------------- citizens


def test_a_citizen_sending_a_file_gets_the_only_text_reply(office):
    data, _, _ = office.kb_csv()
    before = snapshot(office.url)
    for citizen in ("1001", BROADCASTER):  # a broadcaster may not edit either
        reply = office.upload(citizen, "kb.csv", data)
        assert reply.text == ONLY_TEXT and not reply.buttons
        assert office.press(citizen, "imp:yes").text == "Nút này đã cũ. Bạn vui lòng gõ lại câu hỏi nhé."
    assert snapshot(office.url) == before


def test_staff_commands_are_unknown_commands_to_citizens(office):
    data, _, _ = office.kb_csv()
    office.upload(EDITOR, upload_name(), data)
    office.press(EDITOR, "imp:yes")
    before = snapshot(office.url)
    with office.db() as session:
        (revision,) = editing.history(session, FEE_ENTRY)
    office.say("1002", OUT_OF_SCOPE[0])
    (question,) = office.unanswered()

    assert office.say("1001", "/lenhkhongco").text == UNKNOWN_COMMAND
    for text in (f"/muc {FEE_ENTRY}", "/chuatraloi", f"/gan {question.id} {HAWKER_ENTRY}", f"/hoantac {revision.id}",
                 f"/MUC {FEE_ENTRY}", f"/hoantac@motcua_bot {revision.id}", "/muc"):
        for user in ("1001", BROADCASTER):
            reply = office.say(user, text)
            assert reply.text == UNKNOWN_COMMAND and not reply.buttons, (user, text, reply.text)
    assert snapshot(office.url) == before, "nothing undone, nothing attached"
    assert office.unanswered()[0].resolved_entry_id is None

    citizen_help = office.say("1001", "/help").text
    assert "/thutuc" in citizen_help
    assert not any(command in citizen_help for command in STAFF_COMMANDS) and "Lệnh dành cho cán bộ" not in citizen_help
    assert "/dangnhap" not in citizen_help
    editor_help = office.say(EDITOR, "/help").text
    assert all(command in editor_help for command in STAFF_COMMANDS) and "Gửi tệp" in editor_help

    with office.db.begin() as session:
        staff.remove(session, "telegram", EDITOR)
    assert office.say(EDITOR, f"/muc {FEE_ENTRY}").text == UNKNOWN_COMMAND, "removed staff lose access at once"


def test_help_for_a_broadcaster_offers_nothing_it_cannot_do(office):
    text = office.say(BROADCASTER, "/help").text
    assert not any(command in text for command in STAFF_COMMANDS)
    assert "Gửi tệp" not in text and "/thongbao" in text  # announcements yes, knowledge-base editing no


# --------------------------------------------------------------------------- unanswered questions


def test_an_unanswered_question_is_counted_once_and_attached_as_an_alias(office):
    for citizen, question in zip(("2001", "2002"), OUT_OF_SCOPE):
        reply = office.say(citizen, question)
        assert reply.entry_id is None and "chưa tìm thấy thủ tục phù hợp" in reply.text

    listing = office.say(EDITOR, "/chuatraloi")
    shown = re.findall(r"^#(\d+) \((\d+) lần\): (.+)$", listing.text, re.M)
    assert len(shown) == 1, listing.text
    question_id, count, text = shown[0]
    assert count == "2" and text == OUT_OF_SCOPE[0], "the first wording is kept"
    assert [b.data for row in listing.buttons for b in row] == [f"ua:{question_id}:{HAWKER_ENTRY}"], "the best guess offered"

    cli = kb(office.url, "kb", "unanswered")
    assert cli.exit_code == 0 and re.search(rf"│ {question_id}\s*│ 2\s*│ unknown\s*│ {OUT_OF_SCOPE[0]}", cli.output), cli.output

    attached = office.say(EDITOR, f"/gan {question_id} {HAWKER_ENTRY}")
    assert attached.text.startswith(f"Đã gắn câu hỏi #{question_id} vào {HAWKER_ENTRY}")
    revision_id = re.search(r"/hoantac (\d+)", attached.text).group(1)
    assert OUT_OF_SCOPE[0] in office.entry(HAWKER_ENTRY).aliases
    assert office.say(EDITOR, "/chuatraloi").text == "Chưa có câu hỏi nào chưa trả lời được."
    with office.db() as session:
        (revision,) = editing.history(session, HAWKER_ENTRY)
    assert (str(revision.id), revision.actor, revision.source) == (revision_id, f"telegram:{EDITOR}", "chat")

    assert office.live.refresh() is True
    for citizen, question in zip(("2003", "2004"), OUT_OF_SCOPE):
        assert office.say(citizen, question).entry_id == HAWKER_ENTRY, question
    assert "đã có cụm từ này" in office.say(EDITOR, f"/gan {question_id} {HAWKER_ENTRY}").text


def test_gan_explains_itself_on_bad_arguments(office):
    assert office.say(EDITOR, "/gan").text.startswith("Cách dùng: /gan <số câu hỏi> <mã mục>")
    assert office.say(EDITOR, f"/gan 999 {HAWKER_ENTRY}").text == "Không có câu hỏi số 999."
    office.say("2001", OUT_OF_SCOPE[0])
    (question,) = office.unanswered()
    assert office.say(EDITOR, f"/gan {question.id} 9.999999").text == "Không có mục 9.999999."
    assert office.unanswered()[0].resolved_entry_id is None


def test_a_thumbs_down_records_the_question(office):
    question = "làm giấy khai sinh cho con cần giấy tờ gì"
    answer = office.say("3001", question)
    assert answer.entry_id == "1.001193"
    assert "fb:1.001193:down" in [b.data for row in answer.buttons for b in row]
    assert office.unanswered() == [], "a confident answer is not recorded"

    thanks = office.press("3001", "fb:1.001193:down")
    assert thanks.text.startswith("Cảm ơn bạn đã góp ý")
    (row,) = office.unanswered()
    assert (row.text, row.reason, row.best_guess, row.count) == (question, "thumbs_down", "1.001193", 1)
    listing = office.say(EDITOR, "/chuatraloi")
    assert f"#{row.id} (1 lần): {question}" in listing.text
    assert f"ua:{row.id}:1.001193" in [b.data for r in listing.buttons for b in r]
    assert office.press("3001", "fb:1.001193:up").text.startswith("Cảm ơn bạn!")
    assert office.unanswered()[0].count == 1, "a thumbs-up records nothing"
