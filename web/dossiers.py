"""The console's dossier pages (/hoso): lists with filters, one dossier's history and reminders, and importing the
one-stop software's export with the same checks, preview and confirm as `bot.py dossiers import`.

Personal data: lists show whether the filer's digits are known, never the digits (only their last 4 are stored
anyway), and followers are counted and numbered, never named or shown by chat id.

An upload is read and checked at once; what it would change is shown, and the checked records (the filer's
numbers already cut to 4 digits) wait in memory under a random token bound to the staff member who uploaded,
for PENDING_SECONDS. Nothing is written before the confirm, which applies them as the CLI does, in one transaction.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from knowledge.spreadsheet import MAX_FILE_BYTES, FileProblems, Problem
from knowledge.staff import CAN_FOLLOW_DOSSIERS, record_action
from reminders.codes import normalize_code
from reminders.decide import show_date
from reminders.importer import COLUMNS, read_dossiers
from reminders.queries import (
    FILTER_LABELS,
    INFO,
    NEW,
    SAME,
    STATUS,
    Filter,
    dossier_record,
    filter_counts,
    list_dossiers,
    parse_filter,
    preview_import,
)
from reminders.statuses import Status, label
from reminders.store import apply_updates
from web.rendering import render
from web.security import StaffUser, require

router = APIRouter()
Staff = Annotated[StaffUser, Depends(require(CAN_FOLLOW_DOSSIERS))]  # admins and editors

PENDING_SECONDS = 30 * 60  # an upload not confirmed within this time must be uploaded again
MAX_PENDING_PER_USER = 3
MAX_PENDING = 50
PREVIEW_ROWS = 300  # rows listed on the preview page; the counts cover every row
SUFFIXES = (".csv", ".xlsx", ".xlsm")
ACTION = "dossiers.import"

FIELD_LABELS = dict(COLUMNS) | {"phone_last4": "4 số cuối SĐT", "id_last4": "4 số cuối CCCD"}
CHANGE_LABELS = {NEW: "Hồ sơ mới", STATUS: "Đổi trạng thái", INFO: "Cập nhật thông tin", SAME: "Không đổi"}
STATE_LABELS = {"planned": "Chờ gửi", "claimed": "Đang gửi", "sent": "Đã gửi", "deferred": "Hoãn (giờ yên lặng)",
                "undeliverable": "Không gửi được", "cancelled": "Đã hủy"}
CHANNEL_LABELS = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA"}


# --------------------------------------------------------------------------- uploads waiting for their confirm

@dataclass
class PendingImport:
    token: str
    actor: str
    filename: str
    updates: list
    created: float


class PendingImports:
    """Checked uploads waiting to be confirmed, each bound to the staff member who uploaded it, expiring."""

    def __init__(self, ttl: float = PENDING_SECONDS, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[str, PendingImport] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, p in self._items.items() if now - p.created > self.ttl]:
            del self._items[token]

    def put(self, actor: str, filename: str, updates: list) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._expire()
            mine = sorted((p for p in self._items.values() if p.actor == actor), key=lambda p: p.created)
            for old in mine[: max(0, len(mine) - MAX_PENDING_PER_USER + 1)]:
                del self._items[old.token]
            while len(self._items) >= MAX_PENDING:
                del self._items[min(self._items.values(), key=lambda p: p.created).token]
            self._items[token] = PendingImport(token, actor, filename, updates, self.clock())
        return token

    def take(self, token: str, actor: str) -> PendingImport | None:
        """The upload for this token if it is this staff member's and still fresh, removed (applied at most once)."""
        with self._lock:
            self._expire()
            pending = self._items.get(token)
            if pending is None or not secrets.compare_digest(pending.actor, actor):
                return None
            return self._items.pop(token)

    def restore(self, pending: PendingImport) -> None:
        with self._lock:
            self._items[pending.token] = pending


def pending_imports(request: Request) -> PendingImports:
    state = request.app.state
    store = getattr(state, "dossier_imports", None)
    if store is None:
        store = state.dossier_imports = PendingImports()
    return store


# --------------------------------------------------------------------------- helpers

def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.motcua.settings.timezone)


def _helpers(zone: ZoneInfo) -> dict:
    return {"show_date": lambda moment: show_date(moment, zone) if moment else "", "status_label": label,
            "state_label": lambda state: STATE_LABELS.get(state, state), "field_label": lambda f: FIELD_LABELS.get(f, f),
            "channel_label": lambda c: CHANNEL_LABELS.get(c, c), "change_label": lambda c: CHANGE_LABELS.get(c, c),
            "Status": Status}


STATUS_KINDS = frozenset(s.value for s in Status)  # a status-change reminder's kind is the new status


def kind_label(kind: str) -> str:
    if kind in STATUS_KINDS:
        return f"Báo trạng thái: {label(kind)}"
    return {"appointment": "Nhắc ngày hẹn", "late": "Xin lỗi trễ hẹn", "uncollected": "Nhắc nhận kết quả",
            "verify": "Mời xác nhận người nộp"}.get(kind, kind)


def kind_reason(kind: str, settings) -> str:
    """Why the reminder logic (reminders.decide) plans a reminder of this kind, in staff's words."""
    if kind in STATUS_KINDS:
        return "Trạng thái hồ sơ thay đổi sau khi người dân bắt đầu theo dõi: báo cho người dân biết."
    return {
        "appointment": f"Ngày hôm sau là ngày hẹn trả; nhắc lúc {settings.appointment_reminder_time} ngày trước hẹn "
                       "khi hồ sơ còn đang xử lý hoặc đã có kết quả.",
        "late": "Đã qua ngày hẹn trả mà hồ sơ vẫn đang tiếp nhận/xử lý: xin lỗi người dân, báo ngày hẹn mới nếu có.",
        "uncollected": f"Kết quả chờ tại bộ phận một cửa đã {settings.uncollected_days} ngày mà chưa được nhận.",
        "verify": "Người theo dõi chưa xác nhận là người nộp hồ sơ: chỉ gửi hướng dẫn xác nhận, không kèm thông tin hồ sơ.",
    }.get(kind, "")


def _display_name(filename: str | None) -> str:
    """The uploaded file's own name, for messages (never a path from the client)."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return name[:120] or "tệp tải lên"


def _read_upload(upload: UploadFile, timezone: str, now: datetime) -> tuple[str, list]:
    """Checked updates from an uploaded export, exactly as `read_dossiers` checks a file; FileProblems otherwise."""
    name = _display_name(upload.filename)
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise FileProblems([Problem(name, "định dạng không hỗ trợ; dùng tệp .csv hoặc .xlsx xuất từ phần mềm một cửa.")])
    with tempfile.TemporaryDirectory(prefix="motcua-hoso-") as folder:
        path = Path(folder) / f"upload{suffix}"  # a name of ours on disk: the client's name is only displayed
        size = 0
        with path.open("wb") as out:
            while chunk := upload.file.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise FileProblems([Problem(name, f"tệp quá lớn; tệp xuất hồ sơ hợp lệ nhỏ hơn "
                                                      f"{MAX_FILE_BYTES // (1024 * 1024)} MB.")])
                out.write(chunk)
        if size == 0:
            raise FileProblems([Problem(name, "tệp rỗng.")])
        try:
            updates = read_dossiers(path, timezone, now)
        except FileProblems as error:
            raise FileProblems([dataclasses.replace(p, file=name) for p in error.problems]) from None
    return name, updates


def _upload_page(request: Request, user: StaffUser, status_code: int = 200, **context) -> HTMLResponse:
    context.setdefault("problems", [])
    context.setdefault("message", None)
    return render(request, "dossiers/import.html", status_code=status_code, columns=COLUMNS, **context)


# --------------------------------------------------------------------------- pages

@router.get("/hoso", response_class=HTMLResponse)
def dossier_list(request: Request, user: Staff,
                 loc: str | None = None, ma: str | None = None, trang: str | None = None) -> HTMLResponse:
    bot = request.app.state.motcua
    zone = _zone(request)
    now = datetime.now(UTC)
    which = parse_filter(loc)
    try:
        page_number = max(1, int(trang or 1))
    except ValueError:
        page_number = 1
    with bot.db() as session:
        page = list_dossiers(session, which, now, zone, ma or "", page_number)
        counts = filter_counts(session, now, zone)
    return render(request, "dossiers/list.html", page=page, counts=counts, filters=FILTER_LABELS, Filter=Filter,
                  **_helpers(zone))


@router.get("/hoso/nhap", response_class=HTMLResponse)
def import_form(request: Request, user: Staff) -> HTMLResponse:
    return _upload_page(request, user)


@router.post("/hoso/nhap", response_class=HTMLResponse)
def import_upload(request: Request, user: Staff,
                  file: Annotated[UploadFile | None, File()] = None) -> HTMLResponse:
    """Check the upload and show what it would change; nothing is written."""
    bot = request.app.state.motcua
    if file is None or not (file.filename or "").strip():
        return _upload_page(request, user, 400, message="Vui lòng chọn tệp xuất hồ sơ (.csv hoặc .xlsx) rồi bấm Kiểm tra.")
    try:
        name, updates = _read_upload(file, bot.settings.timezone, datetime.now(UTC))
    except FileProblems as error:
        return _upload_page(request, user, 400, filename=_display_name(file.filename), problems=error.problems)
    finally:
        file.file.close()
    with bot.db() as session:
        preview = preview_import(session, updates)
    token = pending_imports(request).put(user.actor, name, updates)
    return render(request, "dossiers/preview.html", filename=name, total=len(updates), preview=preview, token=token,
                  rows=preview.changed[:PREVIEW_ROWS], more=max(0, len(preview.changed) - PREVIEW_ROWS),
                  NEW=NEW, STATUS=STATUS, INFO=INFO, SAME=SAME, minutes=PENDING_SECONDS // 60, **_helpers(_zone(request)))


@router.post("/hoso/nhap/xacnhan", response_class=HTMLResponse)
def import_confirm(request: Request, user: Staff,
                   token: Annotated[str, Form()] = "") -> HTMLResponse:
    """Apply a previewed upload as `bot.py dossiers import` does: one transaction, recorded with who did it."""
    bot = request.app.state.motcua
    store = pending_imports(request)
    pending = store.take(token, user.actor)
    if pending is None:
        return _upload_page(request, user, 400, message="Bản xem trước không còn (đã nhập, đã hủy hoặc quá "
                                                        f"{PENDING_SECONDS // 60} phút). Vui lòng tải tệp lên lại.")
    try:
        with bot.db() as session:
            result = apply_updates(session, pending.updates, f"import:{pending.filename}", datetime.now(UTC))
            record_action(session, user.actor, ACTION,
                          f"{pending.filename}: {len(pending.updates)} hồ sơ hợp lệ; {result.describe()}")
            session.commit()
    except Exception:
        store.restore(pending)  # nothing was written: the same preview may be confirmed again
        raise
    return render(request, "dossiers/imported.html", filename=pending.filename, total=len(pending.updates), result=result)


@router.post("/hoso/nhap/huy", response_class=HTMLResponse)
def import_cancel(request: Request, user: Staff,
                  token: Annotated[str, Form()] = "") -> HTMLResponse:
    pending_imports(request).take(token, user.actor)
    return _upload_page(request, user, message="Đã hủy, không ghi gì vào cơ sở dữ liệu.")


@router.get("/hoso/{code}", response_class=HTMLResponse)
def dossier_page(request: Request, code: str, user: Staff) -> HTMLResponse:
    bot = request.app.state.motcua
    zone = _zone(request)
    canonical = normalize_code(code)
    record = None
    if canonical is not None:
        with bot.db() as session:
            record = dossier_record(session, canonical, datetime.now(UTC), zone)
    if record is None:
        return render(request, "dossiers/missing.html", status_code=404, code=code[:80])
    return render(request, "dossiers/detail.html", record=record, d=record.dossier, kind_label=kind_label,
                  kind_reason=lambda kind: kind_reason(kind, bot.settings), **_helpers(zone))
