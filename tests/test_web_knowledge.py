"""The console's knowledge pages (/kienthuc): search, an entry's facts, edit in a form validated like an import
(same errors, in place), stale edits refused, history with diffs and revert, upload with preview and confirm,
download as `kb export`; editors and admins only, every change with its actor."""

from __future__ import annotations

import io
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from handlers.messages import Incoming
from knowledge import editing, repository
from knowledge.models import EntryRow, RevisionRow
from knowledge.spreadsheet import COLUMNS, FileProblems, export_csv, read_entries
from knowledge.staff import Role
from tests.conftest import wait_until
from tests.test_kb_files import FEE_ENTRY, FEE_QUESTION, money, raise_fee, read_csv, with_amount, write_csv
from tests.web_support import anonymous, signed_in, web_app

EDITORS = [Role.EDITOR, Role.ADMIN]


@pytest.fixture
def bot(database_url):
    with web_app(database_url, live=True, reload_seconds=0.1) as bot:
        yield bot


class FormReader(HTMLParser):
    """The fields of one form of a page, with the values a browser would post."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.values = form_id, False, {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") != "file":
            self.values[name] = attrs.get("value") or ""
        elif tag == "textarea":
            self._textarea, self.values[name] = name, ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def form_values(html: str, form_id: str = "kt-entry-form") -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(html)
    values = reader.values
    for name, value in values.items():  # the parser drops the newline a textarea starts with, as browsers do
        values[name] = value.removeprefix("\n")
    return values


def ask(bot, text: str, user: str = "77"):
    (reply,) = bot.router.handle(Incoming("telegram", f"chat-{user}", user, text))
    return reply


def fee_of(bot) -> int | None:
    return bot.source.current.entries[FEE_ENTRY].fees[0].amount_vnd


def snapshot(bot) -> tuple:
    with bot.db() as session:
        entries = {e.id: editing.entry_dict(e) for e in repository.load_entries(session)}
        return entries, session.query(RevisionRow).count(), editing.current_version(session)


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{name}"[^>]*>(.*?)</p>', html, re.DOTALL)
    assert found, f"no error shown next to {name}"
    return unescape(found.group(1))


# --------------------------------------------------------------------------- browse and search


def test_search_and_browse_entries(bot) -> None:
    member = signed_in(bot, Role.EDITOR, "601")
    page = member.get("/kienthuc")
    assert page.status_code == 200 and 'id="kt-entries"' in page.text
    with bot.db() as session:
        total = session.query(EntryRow).count()
    assert f"{total} mục" in page.text
    assert page.text.count('<tr data-entry-id=') == min(total, 50)

    by_words = member.get("/kienthuc", params={"q": "làm lại căn cước bị mất"})
    assert f'data-entry-id="{FEE_ENTRY}"' in by_words.text, "the bot's own matcher finds it"
    unaccented = member.get("/kienthuc", params={"q": "can cuoc"})
    assert f'data-entry-id="{FEE_ENTRY}"' in unaccented.text
    by_id = member.get("/kienthuc", params={"q": FEE_ENTRY})
    assert re.search(r'<tr data-entry-id="([^"]+)"', by_id.text).group(1) == FEE_ENTRY
    assert 'id="kt-empty"' in member.get("/kienthuc", params={"q": "zzzqqqxx"}).text

    entry = member.get(f"/kienthuc/muc/{FEE_ENTRY}")
    assert entry.status_code == 200
    fee = bot.source.current.entries[FEE_ENTRY].fees[0]
    assert money(fee.amount_vnd) in entry.text and 'id="kt-edit-link"' in entry.text
    assert member.get("/kienthuc/muc/9.999999").status_code == 404


# --------------------------------------------------------------------------- edit


@pytest.mark.parametrize("role", EDITORS)
def test_editing_a_fee_changes_the_bots_answer(bot, role) -> None:
    member = signed_in(bot, role, "602")
    old = fee_of(bot)
    assert f"{money(old)} đồng" in ask(bot, FEE_QUESTION).text
    values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    assert set(COLUMNS) <= set(values) and values["opened"]
    values["fees"], _, new = raise_fee(values["fees"])

    saved = member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values)
    assert saved.status_code == 303, saved.text
    shown = member.get(saved.headers["location"])
    assert 'id="kt-saved"' in shown.text and money(new) in shown.text
    with bot.db() as session:
        revision = session.query(RevisionRow).one()
        assert (revision.entry_id, revision.actor, revision.source) == (FEE_ENTRY, "telegram:602", "web")
        assert session.get(EntryRow, FEE_ENTRY).source == "staff", "a curated entry: a catalogue import keeps it"
    wait_until(lambda: fee_of(bot) == new, what="the bot to reload")
    answer = ask(bot, FEE_QUESTION, "78")
    assert answer.entry_id == FEE_ENTRY and f"{money(new)} đồng" in answer.text


def test_an_invalid_edit_shows_the_imports_error_next_to_the_field_and_changes_nothing(bot, tmp_path) -> None:
    member = signed_in(bot, Role.EDITOR, "603")
    values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    values["fees"] = with_amount(values["fees"], "ba mươi nghìn")
    values["postal_submit"] = "có"
    values["kind"] = "thu-tuc"
    before = snapshot(bot)

    page = member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values)
    assert page.status_code == 422
    # The same cells in a file `kb import` reads: the very reasons it gives are shown next to the fields.
    columns = list(COLUMNS)
    path = write_csv(tmp_path / "sua.csv", [{c: values[c] for c in columns}], columns)
    with pytest.raises(FileProblems) as problems:
        read_entries(path)
    reasons = {p.column: p.reason for p in problems.value.problems}
    assert "fees" in reasons and "không phải là số" in reasons["fees"]
    assert field_error(page.text, "fees") == reasons["fees"]
    assert 'id="kt-form-errors"' in page.text
    assert "ba mươi nghìn" in form_values(page.text)["fees"], "what was typed is kept"
    assert snapshot(bot) == before, "nothing written"

    values["fees"] = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)["fees"]
    page = member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values)  # the fee fixed, the kind still wrong
    assert page.status_code == 422 and "fees" not in re.findall(r'id="err-(\w+)"', page.text)
    with pytest.raises(FileProblems) as problems:
        read_entries(write_csv(tmp_path / "sua2.csv", [{c: values[c] for c in columns}], columns))
    assert field_error(page.text, "kind") == {p.column: p.reason for p in problems.value.problems}["kind"]
    assert snapshot(bot) == before


def test_an_edit_of_an_entry_changed_meanwhile_is_refused_not_overwritten(bot) -> None:
    member = signed_in(bot, Role.EDITOR, "604")
    values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    values["fees"], old, new = raise_fee(values["fees"])
    with bot.db.begin() as session:  # meanwhile another member teaches the bot a phrase for this entry
        editing.add_phrase(session, FEE_ENTRY, "mất căn cước làm lại", "telegram:9", "chat")
    before = snapshot(bot)

    refused = member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values)
    assert refused.status_code == 409 and "đã được thay đổi" in refused.text
    assert money(new) in form_values(refused.text)["fees"], "what was typed is kept"
    assert snapshot(bot) == before
    with bot.db() as session:
        stored = repository.get_entry(session, FEE_ENTRY)
    assert "mất căn cước làm lại" in stored.aliases and stored.fees[0].amount_vnd == old

    # Another entry changing meanwhile does not stop an edit of this one.
    fresh = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    fresh["fees"], _, new = raise_fee(fresh["fees"])
    with bot.db.begin() as session:
        editing.add_phrase(session, "1.001612", "mở quán nhỏ", "telegram:9", "chat")
    assert member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=fresh).status_code == 303
    with bot.db() as session:
        assert repository.get_entry(session, FEE_ENTRY).fees[0].amount_vnd == new


def test_an_unchanged_form_writes_nothing(bot) -> None:
    member = signed_in(bot, Role.EDITOR, "605")
    values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    before = snapshot(bot)
    page = member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values)
    assert page.status_code == 200 and "Không có gì thay đổi" in page.text
    assert snapshot(bot) == before


# --------------------------------------------------------------------------- history and revert


def test_history_shows_the_change_and_revert_undoes_it(bot) -> None:
    member = signed_in(bot, Role.ADMIN, "606")
    values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    values["fees"], old, new = raise_fee(values["fees"])
    assert member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values).status_code == 303
    wait_until(lambda: fee_of(bot) == new, what="the bot to reload")
    with bot.db() as session:
        edit_id = session.query(RevisionRow).one().id

    history = member.get(f"/kienthuc/muc/{FEE_ENTRY}/lichsu")
    assert history.status_code == 200 and f'id="rev-{edit_id}"' in history.text
    diff = re.search(rf'id="rev-{edit_id}".*?</section>', history.text, re.DOTALL).group(0)
    assert re.findall(r'data-field="(\w+)"', diff) == ["fees"], "only the changed field is listed"
    assert re.search(rf"<del>− any \| {old} \|", diff) and re.search(rf"<ins>\+ any \| {new} \|", diff)
    assert "telegram:606" in diff

    done = member.post(f"/kienthuc/thaydoi/{edit_id}/hoantac")
    assert done.status_code == 303
    assert 'id="kt-history-done"' in member.get(done.headers["location"]).text
    with bot.db() as session:
        undo = session.query(RevisionRow).order_by(RevisionRow.id.desc()).first()
        assert (undo.actor, undo.source) == ("telegram:606", f"web (hoàn tác #{edit_id})")
        assert repository.get_entry(session, FEE_ENTRY).fees[0].amount_vnd == old
    wait_until(lambda: fee_of(bot) == old, what="the bot to reload")
    assert f"{money(old)} đồng" in ask(bot, FEE_QUESTION).text

    before = snapshot(bot)
    again = member.post(f"/kienthuc/thaydoi/{edit_id}/hoantac")
    assert again.status_code == 409 and "đã được hoàn tác" in again.text and 'id="kt-history-error"' in again.text
    assert snapshot(bot) == before


def test_reverting_a_change_followed_by_another_is_refused(bot) -> None:
    member = signed_in(bot, Role.EDITOR, "607")
    for _ in range(2):
        values = form_values(member.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
        values["fees"], _, _ = raise_fee(values["fees"])
        assert member.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values).status_code == 303
    with bot.db() as session:
        first = session.query(RevisionRow).order_by(RevisionRow.id).first().id
    before = snapshot(bot)
    refused = member.post(f"/kienthuc/thaydoi/{first}/hoantac")
    assert refused.status_code == 409 and "đã được sửa tiếp" in refused.text and "--force" not in refused.text
    assert snapshot(bot) == before
    assert member.post("/kienthuc/thaydoi/999999/hoantac").status_code == 404


# --------------------------------------------------------------------------- upload and download


def downloaded_csv(client, tmp_path: Path) -> Path:
    response = client.get("/kienthuc/taixuong", params={"dinhdang": "csv"})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    path = tmp_path / "kienthuc.csv"
    path.write_bytes(response.content)
    return path


def upload(client, path: Path, name: str | None = None):
    with path.open("rb") as handle:
        return client.post("/kienthuc/tailen", files={"tep": (name or path.name, handle, "text/csv")})


def test_download_is_the_same_as_kb_export(bot, tmp_path) -> None:
    member = signed_in(bot, Role.EDITOR, "608")
    with bot.db() as session:
        entries = repository.load_entries(session)
    assert downloaded_csv(member, tmp_path).read_text(encoding="utf-8-sig") == export_csv(entries)
    xlsx = member.get("/kienthuc/taixuong", params={"dinhdang": "xlsx"})
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    rows = list(book["entries"].iter_rows(values_only=True))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == len(entries) + 1


def test_an_upload_with_an_error_names_the_row_and_changes_nothing(bot, tmp_path) -> None:
    member = signed_in(bot, Role.EDITOR, "609")
    rows = read_csv(downloaded_csv(member, tmp_path))
    rows[3]["id"] = ""
    rows[5]["fees"] = with_amount(rows[5]["fees"] or "any | 1000 | không | Một nghìn đồng", "mười nghìn")
    before = snapshot(bot)
    page = upload(member, write_csv(tmp_path / "hong.csv", rows))
    assert page.status_code == 422 and 'id="kt-upload-problems"' in page.text
    text = unescape(page.text)
    assert "hong.csv, hàng 5, cột id: thiếu id." in text
    assert "hong.csv, hàng 7, cột fees" in text
    assert 'id="kt-confirm"' not in page.text
    assert snapshot(bot) == before

    wrong = upload(member, write_csv(tmp_path / "ghi-chu.txt", rows))
    assert wrong.status_code == 422 and "không phải định dạng nhập được" in unescape(wrong.text)
    national = tmp_path / "quocgia.jsonl"
    national.write_text('{"ten_thu_tuc": "Không có mã"}\n', encoding="utf-8")
    broken = upload(member, national)
    assert broken.status_code == 422 and "quocgia.jsonl, line 1" in unescape(broken.text)
    assert str(tmp_path) not in broken.text and "/tmp" not in broken.text, "no server folder in what staff read"
    assert snapshot(bot) == before


@pytest.mark.parametrize("role", EDITORS)
def test_an_upload_previews_then_confirm_applies(bot, tmp_path, role) -> None:
    member = signed_in(bot, role, "610")
    path = downloaded_csv(member, tmp_path)
    rows = read_csv(path)
    row = next(r for r in rows if r["id"] == FEE_ENTRY)
    row["fees"], _, new = raise_fee(row["fees"])
    before = snapshot(bot)

    preview = upload(member, write_csv(tmp_path / "sua-le-phi.csv", rows))
    assert preview.status_code == 200 and 'id="kt-preview"' in preview.text
    assert re.search(r'id="kt-count-update">1<', preview.text) and re.search(r'id="kt-count-create">0<', preview.text)
    assert f'data-entry-id="{FEE_ENTRY}"' in preview.text and "Lệ phí" in preview.text
    assert snapshot(bot) == before, "a preview writes nothing"
    token = re.search(r'action="/kienthuc/tailen/([^/"]+)/nhap"', preview.text).group(1)

    other = signed_in(bot, Role.EDITOR, "611")  # the token is bound to who uploaded
    assert other.post(f"/kienthuc/tailen/{token}/nhap").status_code == 410
    assert snapshot(bot) == before

    done = member.post(f"/kienthuc/tailen/{token}/nhap")
    assert done.status_code == 200 and 'id="kt-upload-done"' in done.text
    with bot.db() as session:
        revision = session.query(RevisionRow).one()
        assert (revision.entry_id, revision.actor, revision.source) == (FEE_ENTRY, "telegram:610", "web:sua-le-phi.csv")
    wait_until(lambda: fee_of(bot) == new, what="the bot to reload")
    assert f"{money(new)} đồng" in ask(bot, FEE_QUESTION).text
    assert member.post(f"/kienthuc/tailen/{token}/nhap").status_code == 410, "a confirmed file is not imported twice"


def test_a_confirm_after_another_change_is_refused_and_cancel_forgets_the_file(bot, tmp_path) -> None:
    member = signed_in(bot, Role.EDITOR, "612")
    rows = read_csv(downloaded_csv(member, tmp_path))
    row = next(r for r in rows if r["id"] == FEE_ENTRY)
    row["fees"], _, _ = raise_fee(row["fees"])
    path = write_csv(tmp_path / "sua.csv", rows)
    token = re.search(r"/kienthuc/tailen/([^/\"]+)/nhap", upload(member, path).text).group(1)
    with bot.db.begin() as session:
        editing.add_phrase(session, "1.001612", "mở quán nhỏ", "telegram:9", "chat")
    before = snapshot(bot)
    stale = member.post(f"/kienthuc/tailen/{token}/nhap")
    assert stale.status_code == 409 and "Chưa nhập tệp sua.csv" in stale.text
    assert snapshot(bot) == before

    token = re.search(r"/kienthuc/tailen/([^/\"]+)/nhap", upload(member, path).text).group(1)
    cancelled = member.post(f"/kienthuc/tailen/{token}/huy")
    assert cancelled.status_code == 200 and "Đã hủy" in cancelled.text
    assert member.post(f"/kienthuc/tailen/{token}/nhap").status_code == 410
    assert snapshot(bot) == before


# --------------------------------------------------------------------------- who may


@pytest.mark.parametrize("role", [Role.BROADCASTER, None])
def test_others_can_neither_see_nor_change_knowledge(bot, role, tmp_path) -> None:
    client = signed_in(bot, role, "613") if role else anonymous(bot)
    editor = signed_in(bot, Role.EDITOR, "614")
    values = form_values(editor.get(f"/kienthuc/muc/{FEE_ENTRY}/sua").text)
    values["fees"], _, _ = raise_fee(values["fees"])
    path = write_csv(tmp_path / "x.csv", read_csv(downloaded_csv(editor, tmp_path)))
    token = re.search(r"/kienthuc/tailen/([^/\"]+)/nhap", upload(editor, path).text).group(1)
    with bot.db.begin() as session:
        editing.add_phrase(session, FEE_ENTRY, "mất căn cước làm lại", "telegram:9", "chat")
        revision = editing.last_revision_id(session)
    before = snapshot(bot)

    page_codes = {403} if role else {303}
    for url in ("/kienthuc", f"/kienthuc/muc/{FEE_ENTRY}", f"/kienthuc/muc/{FEE_ENTRY}/sua", f"/kienthuc/muc/{FEE_ENTRY}/lichsu",
                "/kienthuc/moi", "/kienthuc/tailen", "/kienthuc/taixuong?dinhdang=csv"):
        response = client.get(url)
        assert response.status_code in page_codes, url
        assert FEE_ENTRY not in response.text or role is None and response.status_code == 303
    change_codes = {403} if role else {303, 401}
    assert client.post(f"/kienthuc/muc/{FEE_ENTRY}/sua", data=values).status_code in change_codes
    assert client.post("/kienthuc/moi", data={"id": "moi", "kind": "topic", "name": "x", "group": "g",
                                               "summary": "x"}).status_code in change_codes
    assert client.post(f"/kienthuc/thaydoi/{revision}/hoantac").status_code in change_codes
    assert upload(client, path).status_code in change_codes
    assert client.post(f"/kienthuc/tailen/{token}/nhap").status_code in change_codes
    assert snapshot(bot) == before, "nothing changed"
