"""`bot.py kb history|revert|validate|import` and `bot.py staff add|list|remove` as staff use them
(issue 3): revisions say who, when, from where and what; a revert restores the fee and is recorded,
and refuses what would lose work; staff are registered with a role; the national catalogue imports
beside the curated starter entries, twice without change, on SQLite and PostgreSQL (issue 10: group
slugs longer than 64 characters), and questions get the office-level variant. The national tests use
the project's sample (tests/data/national_sample.jsonl.gz); the one named `..._full_catalogue_from_shared`
reads the whole catalogue in ../shared and is skipped where it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import NATIONAL_RECORDS, PROJECT_DIR, TEST_DATABASE_URL, Chat, empty_database, make_settings, requires_shared
from sqlalchemy import func, select
from test_kb_files import (  # noqa: F401 - fixtures
    FEE_ENTRY,
    RECORDS,
    edit_csv_fee,
    export,
    flat,
    history_rows,
    kb,
    kb_url,
    read_csv,
    snapshot,
    starter_db,
    write_csv,
)

from handlers import build_router
from knowledge.catalog import Catalog
from knowledge.db import session_factory
from knowledge.dvcqg import load_catalogue
from knowledge.editing import current_version, entry_dict
from knowledge.loader import open_knowledge_base
from knowledge.models import EntryRow, RevisionRow, StaffRow
from knowledge.repository import get_entry


def run_bot(*args: object, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python bot.py ...` as its own process, as staff run it."""
    clean = {k: v for k, v in os.environ.items() if k.upper() not in {"DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"}}
    clean.update(PYTHONIOENCODING="utf-8", COLUMNS="250", NO_COLOR="1", **(env or {}))
    return subprocess.run([sys.executable, str(PROJECT_DIR / "bot.py"), *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", cwd=PROJECT_DIR, env=clean, timeout=timeout)


# --------------------------------------------------------------------------- revisions


def test_history_shows_the_change_and_revert_restores_the_fee_once(kb_url, tmp_path):
    path = export(kb_url, tmp_path, "csv")
    original = snapshot(kb_url)
    old, new = edit_csv_fee(path)
    assert kb(kb_url, "kb", "import", path).exit_code == 0
    changed = snapshot(kb_url)
    assert changed.entries[FEE_ENTRY]["fees"][0]["amount_vnd"] == new

    rows = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    assert len(rows) == 1
    change_id, when, who, where, action, fields, undone = rows[0]
    assert who.startswith("cli") and where == "file:kb.csv" and action == "update" and fields == "fees" and not undone
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", when)

    done = kb(kb_url, "kb", "revert", change_id)
    assert done.exit_code == 0, done.output
    match = re.search(rf"Đã hoàn tác thay đổi #{change_id} của {FEE_ENTRY} \(ghi nhận là thay đổi #(\d+)\)", flat(done.output))
    assert match, done.output
    undo_id = match.group(1)
    reverted = snapshot(kb_url)
    assert reverted.entries == original.entries, "the fee (amount and text) is back, nothing else touched"
    assert reverted.entries[FEE_ENTRY]["fees"][0]["amount_vnd"] == old
    assert reverted.revisions == changed.revisions + 1 and reverted.version == changed.version + 1, "the revert is recorded"

    rows = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    assert [r[0] for r in rows] == [change_id, undo_id]
    assert rows[0][6] == undo_id, "the change says what undid it"
    assert rows[1][2].startswith("cli") and rows[1][3] == f"cli (hoàn tác #{change_id})" and rows[1][5] == "fees"

    twice = kb(kb_url, "kb", "revert", change_id)
    assert twice.exit_code == 1
    assert f"Thay đổi số {change_id} đã được hoàn tác (bởi thay đổi số {undo_id})" in flat(twice.output)
    assert snapshot(kb_url) == reverted

    unknown = kb(kb_url, "kb", "revert", "99999")
    assert unknown.exit_code == 1 and "Không có thay đổi số 99999" in flat(unknown.output)
    assert snapshot(kb_url) == reverted


def test_a_revert_after_a_later_change_needs_force(kb_url, tmp_path):
    path = export(kb_url, tmp_path, "csv")
    original = snapshot(kb_url)
    old, first = edit_csv_fee(path)
    assert kb(kb_url, "kb", "import", path).exit_code == 0
    _, second = edit_csv_fee(path)
    assert kb(kb_url, "kb", "import", path).exit_code == 0
    rows = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    assert len(rows) == 2
    first_id = rows[0][0]
    latest = snapshot(kb_url)
    assert latest.entries[FEE_ENTRY]["fees"][0]["amount_vnd"] == second

    refused = kb(kb_url, "kb", "revert", first_id)
    assert refused.exit_code == 1
    said = flat(refused.output)
    assert f"Mục {FEE_ENTRY} đã được sửa tiếp sau thay đổi số {first_id}" in said and "--force" in said
    assert snapshot(kb_url) == latest, "nothing written"

    forced = kb(kb_url, "kb", "revert", first_id, "--force")
    assert forced.exit_code == 0, forced.output
    after = snapshot(kb_url)
    assert after.entries == original.entries, "back to the fee before the first change"
    assert after.entries[FEE_ENTRY]["fees"][0]["amount_vnd"] == old
    assert after.revisions == latest.revisions + 1
    rows = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    assert len(rows) == 3 and rows[2][3] == f"cli (hoàn tác #{first_id})"


def test_reverting_a_new_entry_removes_it(kb_url, tmp_path):
    rows = read_csv(export(kb_url, tmp_path, "csv"))
    rows[0].update(id="9.999999", name="Thủ tục thử nghiệm", short_name="thủ tục thử")
    path = write_csv(tmp_path / "moi.csv", rows[:1])
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "import", path)
    assert done.exit_code == 0 and "1 mục mới, 0 mục sửa, 0 mục không đổi" in flat(done.output)
    assert "9.999999" in snapshot(kb_url).entries
    (change_id, *_, action, _, _), = history_rows(kb(kb_url, "kb", "history", "9.999999").output)
    assert action == "create"
    assert kb(kb_url, "kb", "revert", change_id).exit_code == 0
    after = snapshot(kb_url)
    assert after.entries == before.entries
    assert [r[4] for r in history_rows(kb(kb_url, "kb", "history", "9.999999").output)] == ["create", "delete"]


def test_history_of_an_untouched_entry(kb_url):
    done = kb(kb_url, "kb", "history", "1.001193")
    assert done.exit_code == 0 and "Chưa có thay đổi nào ghi nhận cho 1.001193" in flat(done.output)


def test_a_bad_file_in_a_real_process_exits_non_zero_with_the_place_on_stderr(kb_url, tmp_path):
    rows = read_csv(export(kb_url, tmp_path, "csv"))
    rows[4]["id"] = ""
    path = write_csv(tmp_path / "thieu-id.csv", rows)
    before = snapshot(kb_url)
    done = run_bot("--db", kb_url, "kb", "import", path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "thieu-id.csv, hàng 6, cột id: thiếu id." in flat(done.stderr)
    assert "không ghi gì" in flat(done.stderr) and "Traceback" not in done.stderr
    assert done.stdout.strip() == ""
    assert snapshot(kb_url) == before


def test_history_shows_the_time_of_the_change_in_local_time(tmp_path, starter_db):
    url = f"sqlite:///{tmp_path / 'tz.db'}"
    shutil.copyfile(starter_db, tmp_path / "tz.db")
    path = export(url, tmp_path, "csv")
    edit_csv_fee(path)
    assert kb(url, "kb", "import", path).exit_code == 0
    done = run_bot("--db", url, "kb", "history", FEE_ENTRY, env={"TZ": "Asia/Ho_Chi_Minh"})
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
    (_, when, *_), = history_rows(done.stdout)
    shown = datetime.strptime(when, "%d/%m/%Y %H:%M")
    assert abs(shown - now) < timedelta(minutes=3), f"shown {shown:%H:%M}, local time {now:%H:%M}"


# --------------------------------------------------------------------------- staff


def _staff(url: str) -> dict[str, str]:
    engine = open_knowledge_base(url)
    try:
        with session_factory(engine)() as session:
            return {f"{r.platform}:{r.user_id}": r.role for r in session.scalars(select(StaffRow))}
    finally:
        engine.dispose()


def test_staff_add_list_remove(kb_url):
    done = kb(kb_url, "staff", "add", "telegram:42", "--role", "editor")
    assert done.exit_code == 0 and "Đã đăng ký telegram:42 với vai trò editor" in flat(done.output)
    assert _staff(kb_url) == {"telegram:42": "editor"}
    listed = kb(kb_url, "staff", "list")
    assert listed.exit_code == 0 and re.search(r"telegram:42\s*│\s*editor", listed.output), listed.output

    assert kb(kb_url, "staff", "add", "Zalo:777", "--role", "broadcaster").exit_code == 0
    assert kb(kb_url, "staff", "add", "telegram:42", "--role", "admin").exit_code == 0
    assert _staff(kb_url) == {"telegram:42": "admin", "zalo:777": "broadcaster"}, "a second add changes the role"
    listed = flat(kb(kb_url, "staff", "list").output)
    assert listed.count("telegram:42") == 1 and "admin" in listed and "zalo:777" in listed

    removed = kb(kb_url, "staff", "remove", "telegram:42")
    assert removed.exit_code == 0 and "Đã xóa telegram:42" in flat(removed.output)
    again = kb(kb_url, "staff", "remove", "telegram:42")
    assert again.exit_code == 1 and "không có trong danh sách cán bộ" in flat(again.output)
    assert kb(kb_url, "staff", "remove", "zalo:777").exit_code == 0
    assert "Chưa có cán bộ nào được đăng ký" in flat(kb(kb_url, "staff", "list").output)


@pytest.mark.parametrize("args, message", [
    (["add", "telegram42"], "\"telegram42\" không đúng dạng <nền tảng>:<mã người dùng>"),
    (["add", "telegram:"], "không đúng dạng"),
    (["add", ":42"], "không đúng dạng"),
    (["add", "telegram:4 2"], "không đúng dạng"),
    (["add", "telegram:42", "--role", "boss"], "Vai trò không hợp lệ: boss (admin, editor, broadcaster)"),
    (["add", "telegram:42", "--role", ""], "Vai trò không hợp lệ"),
    (["remove", "telegram42"], "không đúng dạng"),
])
def test_staff_bad_member_or_role_exits_2_with_a_message(kb_url, args, message):
    done = kb(kb_url, "staff", *args)
    assert done.exit_code == 2, done.output
    assert message in flat(done.output)
    assert _staff(kb_url) == {}


# --------------------------------------------------------------------------- the national catalogue


def _state(url: str, ids: list[str]) -> dict:
    """What an import can change, cheaply: version, revisions, entries by origin, and the given entries."""
    engine = open_knowledge_base(url)
    try:
        with session_factory(engine)() as session:
            return {
                "version": current_version(session),
                "revisions": session.scalar(select(func.count(RevisionRow.id))),
                "sources": dict(session.execute(select(EntryRow.source, func.count()).group_by(EntryRow.source)).all()),
                "entries": {i: entry_dict(get_entry(session, i)) for i in ids},
            }
    finally:
        engine.dispose()


def _starter_database(kind: str, folder: Path, starter_db: Path) -> str:
    """A database holding the starter entries: a copy of the SQLite template, or the emptied PostgreSQL one."""
    if kind == "sqlite":
        shutil.copyfile(starter_db, folder / "kb.db")
        return f"sqlite:///{folder / 'kb.db'}"
    empty_database(TEST_DATABASE_URL)
    open_knowledge_base(TEST_DATABASE_URL).dispose()
    return TEST_DATABASE_URL


@pytest.fixture(scope="module", params=["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else []))
def national(request, tmp_path_factory, starter_db) -> dict:
    """`kb validate`, then `kb import` twice, of the national sample (tests/data: the starter procedures'
    records, every record whose field name makes a slug longer than 64 characters, and some 170 others)
    on SQLite and PostgreSQL. Everything is read here, so the PostgreSQL database is free afterwards
    for the other tests that empty it."""
    url = _starter_database(request.param, tmp_path_factory.mktemp("national"), starter_db)
    starter = snapshot(url)
    validate = kb(url, "kb", "validate", RECORDS)
    after_validate = snapshot(url)
    first = kb(url, "kb", "import", RECORDS)
    after_first = _state(url, list(starter.entries))
    second = kb(url, "kb", "import", RECORDS)
    after_second = _state(url, list(starter.entries))
    engine = open_knowledge_base(url)
    try:
        catalog = Catalog.load(engine)
        with session_factory(engine)() as session:
            groups = {row.id: row.group for row in session.scalars(select(EntryRow))}
    finally:
        engine.dispose()
    records = load_catalogue(RECORDS)
    kept = sum(entry.id in starter.entries for entry in records)
    return dict(url=url, starter=starter, records=records, kept=kept, validate=validate, after_validate=after_validate,
                first=first, after_first=after_first, second=second, after_second=after_second, catalog=catalog, groups=groups)


def test_national_import_adds_the_catalogue_and_keeps_curated_entries(national):
    first = national["first"]
    assert first.exit_code == 0, first.output
    said = flat(first.output)
    assert national["kept"] == 47, "the sample holds the records of the 47 starter procedures"
    created = len(national["records"]) - national["kept"]
    assert f"Đã nhập {RECORDS.name}: {created} mục mới, 0 mục sửa, 0 mục không đổi, 47 mục giữ bản do cán bộ biên soạn" in said
    starter = national["starter"]
    state = national["after_first"]
    assert state["sources"] == {"starter": len(starter.entries), "dvcqg": created}
    assert state["entries"] == starter.entries, "the curated starter entries are kept as they were"
    assert state["revisions"] == starter.revisions + created, "one revision per new entry"


def test_national_group_slugs_longer_than_64_characters_are_stored_whole(national):
    """Issue 10: 45 records have a field whose slug is longer than the old 64-character column, and
    PostgreSQL refused the whole import."""
    long = {entry.id: entry.group for entry in national["records"] if len(entry.group) > 64}
    assert len(long) == 45 and max(map(len, long.values())) == 193
    imported = {entry_id: group for entry_id, group in long.items() if entry_id not in national["starter"].entries}
    assert len(imported) == 44, "one of them (1.013076) is a starter entry, kept with its curated group"
    assert {entry_id: national["groups"][entry_id] for entry_id in imported} == imported


def test_importing_the_national_catalogue_twice_changes_nothing(national):
    second = national["second"]
    assert second.exit_code == 0, second.output
    created = national["after_first"]["sources"]["dvcqg"]
    assert f"0 mục mới, 0 mục sửa, {created} mục không đổi, {national['kept']} mục giữ bản do cán bộ biên soạn" in flat(second.output)
    assert national["after_second"] == national["after_first"]


def test_validate_of_the_national_records_reports_the_count_without_writing(national):
    done = national["validate"]
    assert done.exit_code == 0, done.output
    said = flat(done.output)
    assert f"{RECORDS.name}: {len(national['records'])} mục hợp lệ" in said
    created = national["after_first"]["sources"]["dvcqg"]
    assert f"Nếu nhập: {created} mục mới, 0 mục sửa, 0 mục không đổi, {national['kept']} mục giữ bản do cán bộ biên soạn" in said
    assert national["after_validate"] == national["starter"], "validate wrote nothing"


@pytest.fixture(scope="module")
def national_catalog(national) -> Catalog:
    return national["catalog"]


@requires_shared(NATIONAL_RECORDS)
def test_validate_and_import_of_the_full_catalogue_from_shared(database_url, starter_db, tmp_path):
    """The whole national file (../shared, 2,642 records): every record fits the database, on SQLite
    and PostgreSQL; the curated starter entries are kept."""
    url = database_url
    if url.startswith("sqlite:///"):
        shutil.copyfile(starter_db, url.removeprefix("sqlite:///"))
    starter = snapshot(url)
    validate = kb(url, "kb", "validate", NATIONAL_RECORDS)
    assert validate.exit_code == 0, validate.output
    assert f"{NATIONAL_RECORDS.name}: 2642 mục hợp lệ" in flat(validate.output)
    done = kb(url, "kb", "import", NATIONAL_RECORDS)
    assert done.exit_code == 0, done.output
    assert f"{2642 - 47} mục mới, 0 mục sửa, 0 mục không đổi, 47 mục giữ bản do cán bộ biên soạn" in flat(done.output)
    state = _state(url, list(starter.entries))
    assert state["sources"] == {"starter": len(starter.entries), "dvcqg": 2642 - 47}
    assert state["entries"] == starter.entries


def test_a_can_cuoc_question_gets_the_commune_level_starter_entry(national_catalog):
    catalog = national_catalog
    assert {"1.001247", "2.000200"} <= set(catalog.entries), "the provincial and central variants were imported"
    assert catalog.get("2.000200").id == catalog.get("1.001247").id == "1.014061"
    chat = Chat(build_router(catalog, make_settings(record_questions=False)))
    for question in ("làm thẻ căn cước lần đầu hết bao nhiêu tiền", "lam the can cuoc lan dau can giay to gi",
                     "Cấp thẻ căn cước cho người từ đủ 14 tuổi trở lên (thực hiện tại cấp tỉnh)"):
        reply = chat.ask(question)
        assert reply.entry_id == "1.014061", (question, reply.entry_id, reply.candidates)
        assert not {"2.000200", "1.001247"} & set(reply.candidates), "equivalents are one candidate, not rivals"
        assert "Làm thẻ căn cước lần đầu" in reply.text


def test_a_provincial_office_answers_with_its_own_level(national_catalog):
    provincial = Catalog.from_entries(list(national_catalog.entries.values()), "Cấp tỉnh")
    assert provincial.get("1.014061").id == "2.000200"
    reply = Chat(build_router(provincial, make_settings(record_questions=False))).ask("làm thẻ căn cước lần đầu")
    assert reply.entry_id == "2.000200"
