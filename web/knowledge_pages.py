"""The console's knowledge pages (/kienthuc), for admins and editors.

Search and browse entries, an entry's facts, edit or create one in a form, its history with field-level diffs
and revert, upload a spreadsheet (preview, then confirm) and download it.

Everything goes through the functions `bot.py kb` and the chat's staff commands use, so the web accepts,
refuses and records alike:
- a form is read cell by cell exactly as a spreadsheet row is (knowledge.spreadsheet's row reader, the same
  text in each cell as `kb export` writes), so its errors are the import's errors, shown next to the field;
- changes are knowledge.editing.apply / revert, with the member's actor in the revision; a running bot
  (LiveCatalog) follows the new version within RELOAD_SECONDS;
- an upload is read by knowledge.cli.read_any and planned by knowledge.editing.plan, as `kb validate` does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import secrets
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge import editing, repository, unanswered
from knowledge.dvcqg import CatalogueError
from knowledge.groups import group_label
from knowledge.models import EntryRow, RevisionRow
from knowledge.schema import Entry
from knowledge.spreadsheet import COLUMNS, LIST_COLUMNS, MAX_FILE_BYTES, PARTS, FileProblems, Problem, entry_to_row
from knowledge.staff import CAN_EDIT
from nlp.normalize import fold
from web.rendering import render
from web.security import StaffUser, require

log = logging.getLogger(__name__)
router = APIRouter()
allowed = require(CAN_EDIT)
Editor = Annotated[StaffUser, Depends(allowed)]

PAGE_SIZE = 50
SEARCH_LIMIT = 50
FORM_NAME = "biểu mẫu"  # the "file" a form's problems would name; only their reasons are shown
WEB_SOURCE = "web"
IMPORTABLE = (".xlsx", ".xlsm", ".csv", ".yaml", ".yml", ".jsonl", ".jsonl.gz")
UPLOAD_TTL_SECONDS = 30 * 60
MAX_PENDING_UPLOADS = 5  # parsed entries of a national file take tens of MB each
SHOWN_PROBLEMS = 50
SHOWN_WARNINGS = 30

# What staff read for each column of the spreadsheet (the form has one field per column; COLUMNS explains each).
LABELS: dict[str, str] = {
    "id": "Mã", "kind": "Loại", "name": "Tên chính thức", "short_name": "Tên thường gọi", "group": "Nhóm",
    "level": "Cấp thực hiện", "equivalents": "Mã cùng thủ tục ở cấp khác", "summary": "Giới thiệu",
    "aliases": "Tên người dân hay gọi", "examples": "Câu hỏi mẫu", "documents": "Giấy tờ", "fees": "Lệ phí",
    "durations": "Thời hạn giải quyết", "places": "Nơi nộp", "online_level": "Mức nộp trực tuyến",
    "online_portals": "Cổng nộp trực tuyến", "online_note": "Ghi chú nộp trực tuyến",
    "postal_submit": "Gửi hồ sơ qua bưu điện", "postal_receive_result": "Nhận kết quả qua bưu điện",
    "postal_note": "Ghi chú bưu điện", "steps": "Các bước", "conditions": "Điều kiện", "legal_basis": "Căn cứ pháp lý",
    "result": "Kết quả", "notes": "Lưu ý thêm",
}
CHOICES: dict[str, list[tuple[str, str]]] = {
    "kind": [("procedure", "Thủ tục"), ("topic", "Chủ đề")],
    "online_level": [("", "Chưa rõ"), ("full", "Toàn trình"), ("partial", "Một phần"), ("none", "Không"),
                     ("unknown", "Chưa rõ (unknown)")],
    "postal_submit": [("", "Chưa rõ"), ("có", "Có"), ("không", "Không")],
    "postal_receive_result": [("", "Chưa rõ"), ("có", "Có"), ("không", "Không")],
}
MULTILINE = LIST_COLUMNS | set(PARTS) | {"summary", "result"}
# A problem on a nested value ("online.level") belongs next to the form field that holds it.
PROBLEM_FIELDS = {"online": "online_level", "postal": "postal_submit"}
SOURCES = {"starter": "Dữ liệu kèm theo bot", "staff": "Cán bộ biên soạn", "dvcqg": "CSDL quốc gia"}
ACTIONS = {"create": "Tạo mới", "update": "Sửa", "delete": "Xóa", "revert": "Hoàn tác"}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    help: str
    multiline: bool
    choices: list[tuple[str, str]] | None


FORM_FIELDS = [FormField(name, LABELS[name], COLUMNS[name], name in MULTILINE, CHOICES.get(name)) for name in COLUMNS]


def db_session(request: Request) -> Session:
    return request.app.state.motcua.db()


def catalog(request: Request):
    return request.app.state.motcua.source.current


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# --------------------------------------------------------------------------- reading a form like a spreadsheet row

def entry_from_form(row: dict[str, str]) -> tuple[Entry | None, list[Problem]]:
    """The entry a form's cells make, read exactly as a row of an imported file (same checks, same messages)."""
    from knowledge.spreadsheet import row_to_entry  # the import's own reader: one rule for files and forms

    return row_to_entry(FORM_NAME, None, 2, row)


def form_errors(problems: list[Problem]) -> tuple[dict[str, list[str]], list[str]]:
    """The problems by form field (shown next to it), and those belonging to no field (shown at the top)."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in problems:
        name = PROBLEM_FIELDS.get(problem.column or "", problem.column or "")
        if name in COLUMNS:
            by_field.setdefault(name, []).append(problem.reason)
        else:
            general.append(problem.reason)
    return by_field, general


def fingerprint(entry: Entry | None) -> str:
    """What an entry said when a form was opened: saving refuses if it says something else by then."""
    if entry is None:
        return ""
    text = json.dumps(editing.entry_dict(entry), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


async def posted_cells(request: Request) -> dict[str, str]:
    form = await request.form()
    cells = {}
    for name in COLUMNS:
        value = form.get(name)
        # Browsers post line breaks as CRLF; the row reader splits lines on LF.
        cells[name] = value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else ""
    return cells


class EntryChanged(editing.EditError):
    """The entry changed (another member, an import) after the form was opened."""


class EntryExists(editing.EditError):
    """A new entry whose id is taken."""


STALE_MESSAGE = ("Mục này đã được thay đổi (bởi người khác hoặc một lần nhập tệp) sau khi bạn mở biểu mẫu, nên chưa lưu "
                 "để không đè lên thay đổi đó. Nội dung bạn gõ vẫn còn dưới đây: hãy mở lại mục trong thẻ mới để xem bản "
                 "hiện tại rồi sửa lại.")


def save_entry(session: Session, entry: Entry, actor: str, opened: str | None) -> editing.ChangeSummary:
    """Write one entry from the form under the knowledge lock; the caller commits.

    `opened`: the fingerprint of the entry when the form was opened (None: a new entry, which must not exist).
    Only this entry's own change refuses the save: another entry changed meanwhile takes nothing from it.
    """
    version = editing.lock_knowledge(session)
    stored = repository.get_entry(session, entry.id)
    if opened is None and stored is not None:
        raise EntryExists(f"Đã có mục mã {entry.id}; hãy chọn mã khác hoặc sửa mục đó.")
    if opened is not None:
        if stored is None:
            raise editing.EditError(f"Mục {entry.id} không còn trong cơ sở kiến thức (đã bị hoàn tác hoặc xóa).")
        if fingerprint(stored) != opened:
            raise EntryChanged(STALE_MESSAGE)
    return editing.apply(session, [entry], actor, WEB_SOURCE, origin="staff", expected_version=version)


# --------------------------------------------------------------------------- search and browse

_folded_cache: dict[str, object] = {"catalog": lambda: None, "rows": []}
_folded_lock = threading.Lock()


def _folded(current) -> list[tuple[str, str]]:
    """(id, folded names) of every entry of the running catalogue, computed once per catalogue version
    (held by a weak reference: a replaced catalogue is not kept alive by the cache)."""
    with _folded_lock:
        if _folded_cache["catalog"]() is not current:  # type: ignore[operator]
            rows = [(e.id, fold(" ".join([e.id, e.name, e.short_name or "", *e.aliases]))) for e in current.entries.values()]
            _folded_cache.update(catalog=weakref.ref(current), rows=rows)
        return _folded_cache["rows"]  # type: ignore[return-value]


def search_entries(current, query: str, limit: int = SEARCH_LIMIT) -> list[Entry]:
    """Entries for a search: the exact id, what the bot itself would answer the words with, then names containing them."""
    from nlp import understand

    query = " ".join(query.split())[:200]
    if not query:
        return []
    found: dict[str, None] = {}
    if query in current.entries:
        found[query] = None
    try:
        for entry_id in understand(query, current.index).candidate_ids[:10]:
            found[entry_id] = None
    except Exception:  # the matcher never raises by contract; a staff search must not fail on it either
        log.exception("the matcher failed on a staff search")
    words = fold(query)
    for entry_id, text in _folded(current):
        if len(found) >= limit:
            break
        if words in text:
            found[entry_id] = None
    return [current.entries[i] for i in list(found)[:limit] if i in current.entries]


def page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@router.get("/kienthuc", response_class=HTMLResponse)
def browse(request: Request, user: Editor, q: str = "", nhom: str = "", trang: str = "1"):
    page = page_number(trang)
    q = q.strip()
    with db_session(request) as session:
        groups = [g for g, in session.execute(select(EntryRow.group).distinct().order_by(EntryRow.group))]
        if q:
            entries = search_entries(catalog(request), q)
            if nhom:
                entries = [e for e in entries if e.group == nhom]
            sources = dict(session.execute(select(EntryRow.id, EntryRow.source).where(EntryRow.id.in_([e.id for e in entries]))).all())
            rows = [(e.id, e.short_name or e.name, e.group, e.level, sources.get(e.id, "")) for e in entries]
            total, pages = len(rows), 1
        else:
            query = select(EntryRow.id, EntryRow.name, EntryRow.short_name, EntryRow.group, EntryRow.level, EntryRow.source)
            counting = select(func.count(EntryRow.id))
            if nhom:
                query, counting = query.where(EntryRow.group == nhom), counting.where(EntryRow.group == nhom)
            total = session.scalar(counting) or 0
            pages = max(1, -(-total // PAGE_SIZE))
            page = min(page, pages)
            found = session.execute(query.order_by(EntryRow.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
            rows = [(r.id, r.short_name or r.name, r.group, r.level, r.source) for r in found]
        version = editing.current_version(session)
    return render(request, "knowledge/list.html", rows=rows, total=total, page=page, pages=pages, q=q, nhom=nhom,
                  groups=[(g, group_label(g)) for g in groups], group_label=group_label, sources=SOURCES, version=version)


# --------------------------------------------------------------------------- one entry

def entry_or_404(session: Session, entry_id: str) -> tuple[Entry | None, str]:
    row = session.get(EntryRow, entry_id, options=repository.LOAD_ALL)
    return (repository.to_entry(row), row.source) if row is not None else (None, "")


def not_found(request: Request, entry_id: str) -> HTMLResponse:
    return render(request, "knowledge/missing.html", status_code=404, entry_id=entry_id)


@router.get("/kienthuc/muc/{entry_id}", response_class=HTMLResponse)
def entry_page(request: Request, user: Editor, entry_id: str, luu: int | None = None):
    from handlers.answers import write_answer

    with db_session(request) as session:
        entry, source = entry_or_404(session, entry_id)
        if entry is None:
            return not_found(request, entry_id)
        revisions = editing.history(session, entry_id)
        saved = session.get(RevisionRow, luu) if luu else None
        warnings = []
        if saved is not None and saved.entry_id == entry_id and saved.before and saved.after:
            warnings = safe_fee_warnings(saved.before, saved.after)
    return render(request, "knowledge/entry.html", entry=entry, source=SOURCES.get(source, source),
                  group=group_label(entry.group), cells=entry_to_row(entry), fields=FORM_FIELDS,
                  revisions=revisions[-5:][::-1], saved=saved if saved is not None and saved.entry_id == entry_id else None,
                  warnings=warnings, answer=write_answer(entry, ()))


def safe_fee_warnings(before: dict, after: dict) -> list[str]:
    try:
        return editing.fee_warnings(Entry.model_validate(before), Entry.model_validate(after))
    except ValidationError:
        return []


def entry_form(request: Request, *, entry_id: str | None, cells: dict[str, str], opened: str = "",
               errors: dict[str, list[str]] | None = None, general: list[str] | None = None, status_code: int = 200,
               question_id: int | None = None, notice: str | None = None) -> HTMLResponse:
    return render(request, "knowledge/form.html", status_code=status_code, entry_id=entry_id, cells=cells, opened=opened,
                  fields=FORM_FIELDS, errors=errors or {}, general=general or [], question_id=question_id, notice=notice)


@router.get("/kienthuc/muc/{entry_id}/sua", response_class=HTMLResponse)
def edit_form(request: Request, user: Editor, entry_id: str):
    with db_session(request) as session:
        entry, _ = entry_or_404(session, entry_id)
    if entry is None:
        return not_found(request, entry_id)
    return entry_form(request, entry_id=entry_id, cells=entry_to_row(entry), opened=fingerprint(entry))


@router.post("/kienthuc/muc/{entry_id}/sua", response_class=HTMLResponse)
async def edit_save(request: Request, user: Editor, entry_id: str):
    form = await request.form()
    opened = str(form.get("opened") or "")
    cells = await posted_cells(request)
    cells["id"] = entry_id  # the id is the entry's name in every revision: it is not edited here
    return await _run(request, lambda: _save_edit(request, entry_id, cells, opened, user))


def _save_edit(request: Request, entry_id: str, cells: dict[str, str], opened: str, user: StaffUser) -> Response:
    entry, problems = entry_from_form(cells)
    if entry is None:
        errors, general = form_errors(problems)
        return entry_form(request, entry_id=entry_id, cells=cells, opened=opened, errors=errors, general=general,
                          status_code=422)
    bot = request.app.state.motcua
    try:
        with bot.db.begin() as session:
            summary = save_entry(session, entry, user.actor, opened)
            revision = editing.last_revision_id(session) if summary.updated else None
    except EntryChanged as error:
        return entry_form(request, entry_id=entry_id, cells=cells, opened=opened, general=[str(error)], status_code=409)
    except editing.EditError as error:
        return entry_form(request, entry_id=entry_id, cells=cells, opened=opened, general=[str(error)], status_code=409)
    if revision is None:
        return entry_form(request, entry_id=entry_id, cells=cells, opened=opened,
                          notice="Không có gì thay đổi so với bản đang lưu, nên không ghi gì.")
    return RedirectResponse(f"/kienthuc/muc/{quote(entry_id)}?luu={revision}", status_code=303)


async def _run(request: Request, work) -> Response:
    """Database work of an async endpoint in the thread pool (the knowledge lock may wait)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(work)


def question_text(session: Session, question_id: int | None) -> str | None:
    from knowledge.models import UnansweredRow

    row = session.get(UnansweredRow, question_id) if question_id else None
    return row.text if row is not None else None


@router.get("/kienthuc/moi", response_class=HTMLResponse)
def new_form(request: Request, user: Editor, cauhoi: int | None = None):
    cells = {name: "" for name in COLUMNS}
    cells["kind"] = "procedure"
    with db_session(request) as session:
        text = question_text(session, cauhoi)
    if text:  # a question citizens asked: the first example of the entry that will answer it
        cells["examples"] = " ".join(text.split())
    return entry_form(request, entry_id=None, cells=cells, question_id=cauhoi if text else None)


@router.post("/kienthuc/moi", response_class=HTMLResponse)
async def new_save(request: Request, user: Editor):
    form = await request.form()
    cells = await posted_cells(request)
    raw_question = str(form.get("cauhoi") or "")
    question_id = int(raw_question) if raw_question.isdigit() else None
    return await _run(request, lambda: _save_new(request, cells, question_id, user))


def _save_new(request: Request, cells: dict[str, str], question_id: int | None, user: StaffUser) -> Response:
    entry, problems = entry_from_form(cells)
    if entry is None:
        errors, general = form_errors(problems)
        return entry_form(request, entry_id=None, cells=cells, errors=errors, general=general, status_code=422,
                          question_id=question_id)
    bot = request.app.state.motcua
    try:
        with bot.db.begin() as session:
            save_entry(session, entry, user.actor, None)
            revision = editing.last_revision_id(session)
            if question_id is not None and question_text(session, question_id) is not None:
                unanswered.resolve(session, question_id, entry.id)
    except EntryExists as error:
        return entry_form(request, entry_id=None, cells=cells, errors={"id": [str(error)]}, status_code=409,
                          question_id=question_id)
    except editing.EditError as error:
        return entry_form(request, entry_id=None, cells=cells, general=[str(error)], status_code=409, question_id=question_id)
    return RedirectResponse(f"/kienthuc/muc/{quote(entry.id)}?luu={revision}", status_code=303)


# --------------------------------------------------------------------------- history, diffs, revert

@dataclass
class FieldDiff:
    name: str
    label: str
    lines: list[tuple[str, str]]  # ("-", old line) | ("+", new line) | (" ", unchanged line)


@dataclass
class RevisionView:
    revision: RevisionRow
    action: str
    diffs: list[FieldDiff] = field(default_factory=list)


def _cells(data: dict | None) -> dict[str, str]:
    if data is None:
        return {}
    try:
        return entry_to_row(Entry.model_validate(data))
    except ValidationError:  # a revision written by an older schema: compare its raw values
        return {k: json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v for k, v in data.items()}


def field_diffs(before: dict | None, after: dict | None) -> list[FieldDiff]:
    """What a revision changed, field by field, line by line, in the words of the spreadsheet's cells."""
    old, new = _cells(before), _cells(after)
    diffs = []
    for name in dict.fromkeys([*COLUMNS, *old, *new]):
        a, b = old.get(name, ""), new.get(name, "")
        if a == b:
            continue
        a_lines, b_lines = a.split("\n") if a else [], b.split("\n") if b else []
        lines: list[tuple[str, str]] = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False).get_opcodes():
            if tag == "equal":
                same = a_lines[i1:i2]
                # Long unchanged stretches (a list of 30 documents) are cut to one line of context each side.
                shown = same if len(same) <= 3 else [same[0], "…", same[-1]]
                lines += [(" ", line) for line in shown]
                continue
            lines += [("-", line) for line in a_lines[i1:i2]]
            lines += [("+", line) for line in b_lines[j1:j2]]
        diffs.append(FieldDiff(name, LABELS.get(name, name), lines))
    return diffs


def history_view(session: Session, entry_id: str) -> list[RevisionView]:
    views = []
    for revision in editing.history(session, entry_id)[::-1]:
        views.append(RevisionView(revision, ACTIONS.get(revision.action, revision.action),
                                  field_diffs(revision.before, revision.after)))
    return views


def history_page(request: Request, entry_id: str, *, error: str | None = None, done: str | None = None,
                 status_code: int = 200) -> HTMLResponse:
    with db_session(request) as session:
        views = history_view(session, entry_id)
        exists = session.get(EntryRow, entry_id) is not None
    if not views and not exists:
        return not_found(request, entry_id)
    return render(request, "knowledge/history.html", status_code=status_code, entry_id=entry_id, views=views,
                  exists=exists, error=error, done=done, sources=SOURCES)


@router.get("/kienthuc/muc/{entry_id}/lichsu", response_class=HTMLResponse)
def history(request: Request, user: Editor, entry_id: str, hoantac: int | None = None):
    done = f"Đã hoàn tác; việc hoàn tác được ghi là thay đổi #{hoantac}." if hoantac else None
    return history_page(request, entry_id, done=done)


def revert_revision(session: Session, revision_id: int, actor: str) -> RevisionRow:
    """knowledge.editing.revert, with the refusal of an entry changed since worded for the web (no --force here)."""
    editing.lock_knowledge(session)
    revision = session.get(RevisionRow, revision_id)
    if revision is not None and revision.reverted_by is None:
        now = repository.get_entry(session, revision.entry_id)
        if (editing.entry_dict(now) if now is not None else None) != revision.after:
            raise editing.EditError(
                f"Mục {revision.entry_id} đã được sửa tiếp sau thay đổi #{revision_id}; hoàn tác thay đổi này sẽ làm mất "
                "các sửa đổi đó. Hãy hoàn tác các thay đổi mới hơn trước (từ trên xuống).")
    return editing.revert(session, revision_id, actor, WEB_SOURCE)


@router.post("/kienthuc/thaydoi/{revision_id}/hoantac", response_class=HTMLResponse)
def revert(request: Request, user: Editor, revision_id: int):
    bot = request.app.state.motcua
    with bot.db() as session:
        revision = session.get(RevisionRow, revision_id)
        entry_id = revision.entry_id if revision is not None else None
    if entry_id is None:
        return render(request, "knowledge/missing.html", status_code=404, entry_id=f"thay đổi #{revision_id}")
    try:
        with bot.db.begin() as session:
            undo = revert_revision(session, revision_id, user.actor)
            undo_id = undo.id
    except editing.EditError as error:
        return history_page(request, entry_id, error=str(error), status_code=409)
    return RedirectResponse(f"/kienthuc/muc/{quote(entry_id)}/lichsu?hoantac={undo_id}", status_code=303)


# --------------------------------------------------------------------------- upload, preview, confirm

@dataclass
class PendingUpload:
    """A checked file waiting for "Nhập": its entries as read, for the member who sent it, until it expires."""

    token: str
    actor: str
    name: str
    origin: str
    version: int
    entries: list[Entry]
    expires: float


_pending: dict[str, PendingUpload] = {}
_pending_lock = threading.Lock()


def _keep(upload: PendingUpload) -> None:
    """Keep the entries server-side (never in the browser, so nothing but the token travels back); one per member."""
    now = time.monotonic()
    with _pending_lock:
        for token, waiting in list(_pending.items()):
            if waiting.expires < now or waiting.actor == upload.actor:
                del _pending[token]
        while len(_pending) >= MAX_PENDING_UPLOADS:
            del _pending[min(_pending, key=lambda t: _pending[t].expires)]
        _pending[upload.token] = upload


def _take(token: str, actor: str) -> PendingUpload | None:
    with _pending_lock:
        upload = _pending.get(token)
        if upload is None or upload.actor != actor:
            return None
        del _pending[token]
        return upload if upload.expires >= time.monotonic() else None


def safe_name(name: str) -> str:
    name = Path(name or "").name.strip().replace("\x00", "") or "tep"
    return name[-120:]


def read_upload(name: str, data: bytes):
    """Entries of an uploaded file through `bot.py kb import`'s own reader, or FileProblems / CatalogueError.

    The bytes are written under their own name (the problems name the file staff know) in a private folder
    removed at once: only the parsed entries are kept.
    """
    from knowledge.cli import read_any

    with tempfile.TemporaryDirectory(prefix="motcua-web-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return read_any(path)
        except CatalogueError as error:
            error.path = Path(name)  # the server's folder means nothing to staff (and is not theirs to know)
            error.problems = [p.replace(f"{folder}/", "") for p in error.problems]
            raise


def upload_problems(error: Exception) -> list[str]:
    if isinstance(error, FileProblems):
        return [str(p) for p in error.problems]
    if isinstance(error, CatalogueError):
        return [str(error), *error.problems]
    return [str(error)]


def preview_warnings(entries, origin: str, summary: editing.ChangeSummary) -> list[str]:
    """What `kb validate` prints under the summary: fee slips, then the audit (staff files) or the cleaning (national)."""
    warnings = [f"{c.entry_id}: {w}" for c in summary.changes for w in c.warnings]
    if origin == "dvcqg":
        skipped = set(summary.skipped)
        flagged = [i for i, log in getattr(entries, "cleaning", {}).items() if i not in skipped and log.flagged]
        if flagged:
            warnings.append(f"{len(flagged)} mục nhập từ CSDL quốc gia cần cán bộ xem lại sau khi nhập "
                            "(câu trả lời của chúng kèm lưu ý).")
        return warnings
    from knowledge.audit import KINDS, audit

    touched = {c.entry_id for c in summary.changes if c.action in ("create", "update")}
    report = audit([e for e in entries if e.id in touched])
    warnings += [f"{KINDS[f.kind]}: {f}" for f in report.findings]
    return warnings


@router.get("/kienthuc/tailen", response_class=HTMLResponse)
def upload_form(request: Request, user: Editor):
    return render(request, "knowledge/upload.html", stage="form")


@router.post("/kienthuc/tailen", response_class=HTMLResponse)
def upload(request: Request, user: Editor, tep: Annotated[UploadFile, File()]):
    name = safe_name(tep.filename or "")
    if not name.lower().endswith(IMPORTABLE):
        return render(request, "knowledge/upload.html", status_code=422, stage="form", filename=name,
                      problems=[(f"Tệp {name} không phải định dạng nhập được. Chọn tệp .xlsx, .csv hoặc .yaml "
                                 "(tải về ở trang này), hoặc tệp .jsonl/.jsonl.gz của CSDL quốc gia.")])
    data = tep.file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return render(request, "knowledge/upload.html", status_code=422, stage="form", filename=name,
                      problems=[f"Tệp {name} quá lớn; tệp kiến thức hợp lệ nhỏ hơn {MAX_FILE_BYTES // (1024 * 1024)} MB."])
    try:
        entries, origin = read_upload(name, data)
    except (FileProblems, CatalogueError) as error:
        problems = upload_problems(error)
        return render(request, "knowledge/upload.html", status_code=422, stage="form", filename=name,
                      problems=problems[:SHOWN_PROBLEMS], more=max(0, len(problems) - SHOWN_PROBLEMS))
    with db_session(request) as session:
        version = editing.current_version(session)
        summary = editing.plan(session, entries, keep_curated=origin == "dvcqg")
    warnings = preview_warnings(entries, origin, summary)
    token = secrets.token_urlsafe(24)
    _keep(PendingUpload(token, user.actor, name, origin, version, entries, time.monotonic() + UPLOAD_TTL_SECONDS))
    return render(request, "knowledge/upload.html", stage="preview", filename=name, token=token, count=len(entries),
                  summary=summary, changes=[c for c in summary.changes if c.action in ("create", "update")][:200],
                  warnings=warnings[:SHOWN_WARNINGS], more_warnings=max(0, len(warnings) - SHOWN_WARNINGS),
                  origin=origin, version=version, labels=LABELS, minutes=UPLOAD_TTL_SECONDS // 60)


@router.post("/kienthuc/tailen/{token}/nhap", response_class=HTMLResponse)
def upload_confirm(request: Request, user: Editor, token: str):
    pending = _take(token, user.actor)
    if pending is None:
        return render(request, "knowledge/upload.html", status_code=410, stage="form",
                      problems=[("Tệp đã kiểm tra không còn chờ nhập (quá hạn, đã nhập, đã hủy hoặc của người khác). "
                                 "Vui lòng tải tệp lên lại.")])
    bot = request.app.state.motcua
    try:
        with bot.db.begin() as session:
            summary = editing.apply(session, pending.entries, user.actor, f"web:{pending.name}", origin=pending.origin,
                                    keep_curated=pending.origin == "dvcqg", expected_version=pending.version)
    except editing.EditError as error:
        return render(request, "knowledge/upload.html", status_code=409, stage="form", filename=pending.name,
                      problems=[f"Chưa nhập tệp {pending.name}: {error}"])
    return render(request, "knowledge/upload.html", stage="done", filename=pending.name, summary=summary)


@router.post("/kienthuc/tailen/{token}/huy", response_class=HTMLResponse)
def upload_cancel(request: Request, user: Editor, token: str):
    pending = _take(token, user.actor)
    return render(request, "knowledge/upload.html", stage="form",
                  notice=f"Đã hủy, không nhập tệp {pending.name}." if pending else "Không có tệp nào đang chờ nhập.")


# --------------------------------------------------------------------------- download

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8",
           "yaml": "application/x-yaml; charset=utf-8"}


@router.get("/kienthuc/taixuong")
def download(request: Request, user: Editor, dinhdang: str = "xlsx"):
    """The same file as `bot.py kb export --format <dinhdang>`."""
    from knowledge.spreadsheet import export_csv, export_xlsx, export_yaml

    fmt = dinhdang if dinhdang in FORMATS else "xlsx"
    with db_session(request) as session:
        entries = repository.load_entries(session)
    if fmt == "xlsx":
        with tempfile.TemporaryDirectory(prefix="motcua-web-") as folder:
            path = Path(folder) / "motcua-kb.xlsx"
            export_xlsx(entries, path)
            body = path.read_bytes()
    elif fmt == "csv":
        body = export_csv(entries).encode("utf-8-sig")  # as `kb export -o x.csv` writes it: Excel reads the BOM as UTF-8
    else:
        body = export_yaml(entries).encode("utf-8")
    return Response(body, media_type=FORMATS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="motcua-kb.{fmt}"'})
