"""What the bot remembers of a chat survives a restart (kept in the database, per feature, typed, with an
expiry): a clarifying question answered with "2" after a restart, a staff import confirmed after one, an
announcement draft kept; expired memory is ignored and purged; two processes writing one chat's memory at
once never corrupt it; `ask --jsonl` and `eval` runs start fresh and never touch the stored chats."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import timedelta
from typing import ClassVar

import pytest
from conftest import Chat, make_settings
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

import handlers.state as state_module
from app import build_app
from broadcasts import audience
from handlers.ask import AskState
from handlers.messages import Incoming, IncomingFile
from handlers.state import ChatMemory, ChatState, MemoryBackend, NumberedState, now_utc
from knowledge import staff
from knowledge.chat_state import DatabaseBackend
from knowledge.db import make_engine, session_factory
from knowledge.models import ChatStateRow
from knowledge.repository import get_entry, load_entries
from knowledge.spreadsheet import export_csv

EDITOR, BROADCASTER = "401", "402"


@pytest.fixture
def apps(database_url):
    """Opens the bot on the test database as a (re)started process would; every one is closed afterwards."""
    opened = []

    def start():
        app = build_app(make_settings(database_url))
        opened.append(app)
        return app

    yield start
    for app in opened:
        app.close()


def send(app, chat_id: str, text: str = "", button: str | None = None, user: str = "citizen", file=None):
    return app.router.handle(Incoming("telegram", chat_id, user, text, button=button, file=file))


# --------------------------------------------------------------------------- a restart keeps the conversation

def test_a_clarifying_question_is_answered_with_its_number_after_a_restart(apps):
    before = apps()
    [choices] = send(before, "301", "khai sinh")
    assert choices.numbered and len(choices.candidates) >= 2, choices.text
    before.close()

    after = apps()  # a deploy: a new process, nothing in memory
    [picked] = send(after, "301", "2")
    assert picked.entry_id == choices.candidates[1], "the second choice offered before the restart"
    [follow] = send(after, "301", "thế lệ phí bao nhiêu?")
    assert follow.entry_id == picked.entry_id and "fee" in follow.aspects, "the subject is kept too"


def _staff_file(app, marker: str) -> bytes:
    """The knowledge base as staff export it, with one entry's summary changed."""
    with app.db() as session:
        rows = list(csv.DictReader(io.StringIO(export_csv(load_entries(session)))))
    row = next(r for r in rows if r["id"] == "1.001193")
    row["summary"] = f"{row['summary']} {marker}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def test_a_staff_import_awaiting_confirmation_is_imported_after_a_restart(apps):
    before = apps()
    with before.db.begin() as session:
        staff.add(session, "telegram", EDITOR, staff.Role.EDITOR)
    upload = IncomingFile("kb-restart.csv", _staff_file(before, "(sửa sau khởi động lại)"))
    [summary] = send(before, f"chat-{EDITOR}", user=EDITOR, file=upload)
    assert "Bấm Nhập" in summary.text, summary.text
    yes = summary.buttons[0][0].data
    before.close()

    after = apps()
    [done] = send(after, f"chat-{EDITOR}", button=yes, user=EDITOR)
    assert done.text.startswith("Đã nhập kb-restart.csv"), done.text
    with after.db() as session:
        assert "(sửa sau khởi động lại)" in get_entry(session, "1.001193").summary
    [again] = send(after, f"chat-{EDITOR}", button=yes, user=EDITOR)
    assert "Không có tệp nào đang chờ nhập" in again.text, "confirmed once, then gone"


def test_an_announcement_draft_is_kept_after_a_restart(apps):
    before = apps()
    with before.db.begin() as session:
        staff.add(session, "telegram", BROADCASTER, staff.Role.BROADCASTER)
        audience.subscribe(session, "telegram", "11")
    [who] = send(before, f"chat-{BROADCASTER}", "/thongbao Thứ Bảy này Bộ phận Một cửa làm việc buổi sáng.", user=BROADCASTER)
    assert who.text == "Gửi cho ai?"
    before.close()

    after = apps()
    [when] = send(after, f"chat-{BROADCASTER}", button="bc:aud:all", user=BROADCASTER)
    assert "Gửi lúc nào" in when.text, when.text
    [preview] = send(after, f"chat-{BROADCASTER}", button="bc:at:now", user=BROADCASTER)
    assert preview.text.startswith("Xem trước – gửi ngay tới 1 người")
    assert "Thứ Bảy này Bộ phận Một cửa làm việc buổi sáng." in preview.text


# --------------------------------------------------------------------------- expiry

def test_memory_older_than_the_setting_is_ignored_then_purged(apps, monkeypatch):
    app = apps()
    [choices] = send(app, "302", "khai sinh")
    assert choices.numbered
    later = now_utc() + timedelta(hours=25)  # CHAT_STATE_HOURS is 24 by default
    monkeypatch.setattr(state_module, "now_utc", lambda: later)
    [reply] = send(app, "302", "2")
    assert reply.entry_id != choices.candidates[1] and not reply.text.startswith("📋"), "a day later, '2' is no choice"
    app.router.context.memory.purge()
    with app.db() as session:
        kept = session.scalars(select(ChatStateRow).where(ChatStateRow.chat_id == "302")).all()
    assert all(row.expires_at.replace(tzinfo=None) > later.replace(tzinfo=None) for row in kept), "expired rows purged"


# --------------------------------------------------------------------------- typed, declared state

class Note(ChatState):
    feature: ClassVar[str] = "test_note"
    text: str = ""


@pytest.fixture(params=["memory", "database"])
def memory(request, db) -> ChatMemory:
    """The in-memory store and the database store behind the same interface."""
    store = ChatMemory(MemoryBackend() if request.param == "memory" else DatabaseBackend(db))
    store.declare(Note)
    return store


def test_both_stores_keep_forget_and_expire_alike(memory, monkeypatch):
    assert memory.peek("telegram:1", Note) is None and memory.get("telegram:1", Note) == Note()
    memory.save("telegram:1", Note(text="một"))
    memory.save("telegram:2", Note(text="hai"))
    assert memory.get("telegram:1", Note).text == "một"
    assert [s.text for s in memory.forget("telegram:1")] == ["một"]
    assert memory.peek("telegram:1", Note) is None and memory.get("telegram:2", Note).text == "hai"
    memory.clear("telegram:2", Note)
    assert memory.peek("telegram:2", Note) is None
    memory.save("telegram:3", Note(text="ba"))
    later = now_utc() + memory.ttl + timedelta(seconds=1)
    monkeypatch.setattr(state_module, "now_utc", lambda: later)
    assert memory.peek("telegram:3", Note) is None
    assert memory.purge() == 1


def test_a_feature_keeps_only_what_it_declared(memory):
    class Undeclared(ChatState):
        feature: ClassVar[str] = "undeclared"

    with pytest.raises(KeyError, match="not declared"):
        memory.save("telegram:1", Undeclared())
    note = Note()
    with pytest.raises(ValidationError):
        note.subject = "1.001193"  # no attribute beyond the declared fields


def test_a_row_of_an_older_shape_starts_that_feature_afresh(db):
    memory = ChatMemory(DatabaseBackend(db))
    memory.declare(Note)
    memory.backend.write("telegram:5", "test_note", {"text": 5, "gone": True}, now_utc(), now_utc() + memory.ttl)
    assert memory.peek("telegram:5", Note) is None


# --------------------------------------------------------------------------- two processes, one chat

def test_two_processes_writing_one_chats_memory_never_corrupt_it(database_url, db):
    """Two engines stand for two bot processes (or worker processes): each writes its own feature and both
    write the shared one, as fast as they can. No write fails, every row reads back whole, and each
    feature holds one of the values written to it (the last write wins)."""
    engines = [make_engine(database_url) for _ in range(2)]
    memories = [ChatMemory(DatabaseBackend(session_factory(e))) for e in engines]
    for memory in memories:
        memory.declare(Note)
        memory.declare(NumberedState)
    errors: list[BaseException] = []
    rounds = 60

    def writer(number: int) -> None:
        memory = memories[number]
        try:
            for i in range(rounds):
                memory.save("zalo:shared", Note(text=f"p{number}-{i}"))
                memory.save("zalo:shared", NumberedState(data=[f"a:{number}:{i}"] * (number + 1)))
                assert memory.peek("zalo:shared", Note) is not None
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    # The stores swallow and log write errors (a chat goes on being answered): count them through the backend.
    for memory in memories:
        write = memory.backend.write

        def checked(*args, _write=write):
            try:
                return _write(*args)
            except BaseException as error:
                errors.append(error)
                raise

        memory.backend.write = checked
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors[:3]
        note = memories[0].peek("zalo:shared", Note)
        numbered = memories[1].peek("zalo:shared", NumberedState)
        assert note is not None and note.text in {f"p{n}-{rounds - 1}" for n in range(2)}
        assert numbered is not None and numbered.data in ([f"a:0:{rounds - 1}"], [f"a:1:{rounds - 1}"] * 2)
        with db() as session:
            assert session.scalar(select(func.count()).select_from(ChatStateRow)) == 2, "one row per feature"
    finally:
        for engine in engines:
            engine.dispose()


# --------------------------------------------------------------------------- evaluation runs start fresh

def _ask_jsonl(url: str, lines: list[dict]) -> list[dict]:
    from bot import app

    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    result = CliRunner().invoke(app, ["--db", url, "ask", "--jsonl"], input=stdin)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_ask_jsonl_questions_are_not_counted_as_citizens_questions(database_url, apps, monkeypatch):
    # An evaluation run's questions went into the office's overview and its questions to teach.
    from knowledge.models import UnansweredRow
    from knowledge.question_log import QuestionLogRow

    for name in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")
    stored = apps()
    answers = _ask_jsonl(database_url, [{"chat": "1", "q": "làm thẻ căn cước lần đầu"},
                                        {"chat": "2", "q": "thủ tục đăng ký nuôi khủng long cảnh"}])
    assert answers[0]["id"] and answers[1]["id"] is None
    with stored.db() as session:
        assert session.query(QuestionLogRow).count() == 0 and session.query(UnansweredRow).count() == 0


def test_ask_jsonl_runs_start_fresh_and_leave_the_stored_chats_alone(database_url, apps, monkeypatch):
    for name in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no .env of the machine
    stored = apps()
    # A stored chat of the same key as the run's chat "1" ("jsonl:1"), talking about another procedure.
    stored.router.handle(Incoming("jsonl", "1", "1", "đăng ký kết hôn cần giấy tờ gì"))
    stored_state = stored.router.context.memory.get("jsonl:1", AskState)
    assert stored_state.last_entry_id

    first = _ask_jsonl(database_url, [{"chat": "1", "q": "làm thẻ căn cước lần đầu"}])
    follow = [{"chat": "1", "q": "thế lệ phí bao nhiêu?"}]
    second = _ask_jsonl(database_url, follow)
    assert first[0]["id"] and second[0]["id"] != first[0]["id"], "the second run does not remember the first"
    assert second[0]["id"] != stored_state.last_entry_id, "nor the stored chat of the same name"
    assert _ask_jsonl(database_url, follow) == second, "the same run gives the same answers, every time"
    assert stored.router.context.memory.get("jsonl:1", AskState) == stored_state, "the stored chat is untouched"


def test_eval_figures_do_not_depend_on_an_earlier_run(catalog, tmp_path):
    from handlers import build_router
    from quality.evaluate import run_eval

    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"chat": "e1", "q": "làm thẻ căn cước lần đầu", "expect": ["1.001193"]},
        {"chat": "e2", "q": "thế lệ phí bao nhiêu?", "expect": []},
    ]) + "\n", encoding="utf-8")
    router = build_router(catalog, make_settings())
    # A chat of the file's name already talking about a procedure, in the router's own memory.
    Chat(router, "e2", "jsonl").send("làm thẻ căn cước lần đầu")
    figures = [{name: (t.right, t.total) for name, t in run_eval(router, questions).figures.items()} for _ in range(2)]
    assert figures[0] == figures[1]
    assert figures[0]["out_of_scope_rejected"] == (1, 1), "a follow-up with nothing before it in the run has no subject"


def test_a_stored_import_pointing_outside_the_upload_folder_is_never_read_nor_deleted(apps, tmp_path):
    """The memory is read back from the database: a row naming any other file is ignored, not imported or deleted."""
    app = apps()
    with app.db.begin() as session:
        staff.add(session, "telegram", EDITOR, staff.Role.EDITOR)
    outside = tmp_path / "not-an-upload.csv"
    outside.write_text("id\n", encoding="utf-8")
    memory = app.router.context.memory
    memory.backend.write(f"telegram:chat-{EDITOR}", "staff_import", {"path": str(outside), "name": "x.csv", "origin": "csv"},
                         now_utc(), now_utc() + memory.ttl)
    [reply] = send(app, f"chat-{EDITOR}", button="imp:yes", user=EDITOR)
    assert "Không có tệp nào đang chờ nhập" in reply.text
    send(app, f"chat-{EDITOR}", "/xoadulieu", user=EDITOR)
    assert outside.exists()
