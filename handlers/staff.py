"""Staff work in chat: import a spreadsheet, look an entry up, teach the bot unanswered questions, undo."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from handlers.answers import display_name
from handlers.buttons import AttachButton, ImportButton
from handlers.core import Context, Router, command_argument
from handlers.messages import Button, Incoming, Reply
from handlers.state import ChatState
from knowledge import editing, unanswered
from knowledge.dvcqg import CatalogueError
from knowledge.models import local_time
from knowledge.spreadsheet import MAX_FILE_BYTES, FileProblems
from knowledge.staff import CAN_EDIT

log = logging.getLogger(__name__)

IMPORTABLE = (".xlsx", ".xlsm", ".csv", ".yaml", ".yml", ".jsonl", ".jsonl.gz")
UPLOAD_DIR = Path(tempfile.gettempdir()) / "motcua-uploads"
MAX_SHOWN = 10


class StaffImportState(ChatState):
    """A staff file checked and waiting for "Nhập" or "Hủy" (kept on disk in UPLOAD_DIR until then)."""

    feature: ClassVar[str] = "staff_import"
    path: str
    name: str
    origin: str
    version: int | None = None  # the version the summary was computed on: "Nhập" writes only if nobody changed anything

    @field_validator("path")
    @classmethod
    def _in_uploads(cls, path: str) -> str:
        # The state is read back from the database: it may only ever point into the upload folder.
        if Path(path).resolve().parent != UPLOAD_DIR.resolve():
            raise ValueError("not a file of the upload folder")
        return path

    def forgotten(self) -> list[str]:
        return ["tệp đang chờ nhập"]

    def discard(self) -> None:
        Path(self.path).unlink(missing_ok=True)


def actor(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.user_id}"


def receive_file(incoming: Incoming, context: Context) -> list[Reply]:
    """A file from staff: validate it, show what would change, and wait for "Nhập" or "Hủy"."""
    from knowledge.cli import read_any  # the same reading rules as `bot.py kb import`

    upload = incoming.file
    if upload is None or not context.router.allowed(incoming, CAN_EDIT):
        return [Reply("Xin lỗi, tôi chỉ đọc được câu hỏi bằng chữ. Bạn vui lòng gõ câu hỏi nhé.")]
    name = Path(upload.name).name or "tep"
    if not name.lower().endswith(IMPORTABLE):
        return [Reply(f"Tệp {name} không phải định dạng nhập được. Gửi tệp .xlsx, .csv hoặc .yaml (xuất bằng `bot.py kb export`).")]
    if len(upload.data) > MAX_FILE_BYTES:
        return [Reply(f"Tệp {name} quá lớn; tệp kiến thức hợp lệ nhỏ hơn {MAX_FILE_BYTES // (1024 * 1024)} MB.")]
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=UPLOAD_DIR, suffix="-" + name, delete=False)
    with handle:
        handle.write(upload.data)
    path = Path(handle.name)
    try:
        entries, origin = read_any(path)
    except (FileProblems, CatalogueError) as error:
        path.unlink(missing_ok=True)
        problems = [str(p).replace(path.name, name) for p in getattr(error, "problems", None) or [error]]
        shown = "\n".join(f"• {p}" for p in problems[:MAX_SHOWN])
        more = f"\n… và {len(problems) - MAX_SHOWN} lỗi khác." if len(problems) > MAX_SHOWN else ""
        return [Reply(f"Tệp {name} có lỗi nên chưa nhập gì:\n{shown}{more}")]
    with context.db() as session:
        version = editing.current_version(session)
        summary = editing.plan(session, entries, keep_curated=origin == "dvcqg")
    earlier = context.memory.peek(incoming.chat_key, StaffImportState)
    if earlier is not None:
        earlier.discard()
    context.memory.save(incoming.chat_key, StaffImportState(path=str(path), name=name, origin=origin, version=version))
    buttons = [[Button("✅ Nhập", ImportButton("yes").pack()), Button("❌ Hủy", ImportButton("no").pack())]]
    return [Reply(f"Tệp {name} hợp lệ ({len(entries)} mục). Nếu nhập: {summary.describe()}\nBấm Nhập để ghi, Hủy để bỏ.",
                  buttons, numbered=True)]


def confirm_import(incoming: Incoming, context: Context) -> list[Reply]:
    """"Nhập" or "Hủy" under a validated file."""
    from knowledge.cli import read_any

    answer = ImportButton.unpack(incoming.button).answer
    pending = context.memory.peek(incoming.chat_key, StaffImportState)
    if pending is None:
        return [Reply("Không có tệp nào đang chờ nhập. Gửi lại tệp nếu cần.")]
    context.memory.clear(incoming.chat_key, StaffImportState)
    name, version, path = pending.name, pending.version, Path(pending.path)
    if answer == "no":
        pending.discard()
        return [Reply(f"Đã hủy, không nhập tệp {name}.")]
    if not path.is_file():  # the server's temporary folder was emptied (a reboot) since the summary
        return [Reply(f"Tệp {name} không còn trên máy chủ nên chưa nhập gì. Bạn vui lòng gửi lại tệp.")]
    try:
        entries, origin = read_any(path)
        with context.db.begin() as session:
            summary = editing.apply(session, entries, actor(incoming), f"chat:{name}", origin=origin,
                                    keep_curated=origin == "dvcqg", expected_version=version)
    except editing.EditError as error:  # changed by someone else since the summary, or busy: nothing written
        return [Reply(f"Chưa nhập tệp {name}: {error}")]
    except (FileProblems, CatalogueError, OSError) as error:
        return [Reply(f"Không nhập được tệp {name}: {error}")]
    finally:
        path.unlink(missing_ok=True)
    return [Reply(f"Đã nhập {name}: {summary.describe()}\nBot sẽ trả lời theo dữ liệu mới trong vài giây. Hoàn tác: /hoantac <số thay đổi> (xem bằng /muc <mã>).")]


def look_up(incoming: Incoming, context: Context) -> list[Reply]:
    """Tra một mục theo mã hoặc từ khóa: /muc 1.001193"""
    query = command_argument(incoming)
    if not query:
        return [Reply("Cách dùng: /muc <mã mục> hoặc /muc <từ khóa>.")]
    entry = context.catalog.entries.get(query) or context.catalog.get(query)
    if entry is None:
        from nlp import understand

        found = understand(query, context.catalog.index).candidate_ids[:5]
        if not found:
            return [Reply(f"Không tìm thấy mục nào cho \"{query}\".")]
        lines = [f"Các mục gần với \"{query}\":"] + [f"• {i} – {display_name(context.catalog.get(i))}" for i in found]
        return [Reply("\n".join(lines))]
    with context.db() as session:
        revisions = editing.history(session, entry.id)[-3:]
    lines = [f"{entry.id} – {entry.name}", f"Nhóm: {entry.group}; cấp: {entry.level or '—'}",
             f"Tên gọi khác: {', '.join(entry.aliases[:8]) or '—'}"]
    lines += [f"Thay đổi #{r.id} lúc {local_time(r.created_at, context.settings.timezone):%d/%m/%Y %H:%M} bởi {r.actor} ({r.source})" for r in revisions]
    return [Reply("\n".join(lines))]


def list_unanswered(incoming: Incoming, context: Context) -> list[Reply]:
    """Các câu hỏi bot chưa trả lời được, hay gặp nhất trước."""
    with context.db() as session:
        rows = unanswered.most_frequent(session, MAX_SHOWN)
    if not rows:
        return [Reply("Chưa có câu hỏi nào chưa trả lời được.")]
    lines = ["Câu hỏi chưa trả lời được (số lần hỏi):"]
    buttons = []
    for row in rows:
        lines.append(f"#{row.id} ({row.count} lần): {row.text[:120]}")
        guess = context.catalog.get(row.best_guess) if row.best_guess else None
        if guess is not None:
            data = AttachButton(row.id, guess.id)
            if data.fits():
                buttons.append([Button(f"#{row.id} → {display_name(guess)}"[:60], data.pack())])
    lines.append("Bấm nút để gắn câu hỏi vào mục bot đoán, hoặc gõ /gan <số câu hỏi> <mã mục>.")
    return [Reply("\n".join(lines), buttons)]


def attach(incoming: Incoming, context: Context) -> list[Reply]:
    """Gắn một câu hỏi chưa trả lời được vào một mục: /gan 12 1.001193"""
    parts = command_argument(incoming).split()
    if len(parts) != 2 or not parts[0].lstrip("#").isdigit():
        return [Reply("Cách dùng: /gan <số câu hỏi> <mã mục>, vd /gan 12 1.001193 (số câu hỏi xem bằng /chuatraloi).")]
    return [_attach(incoming, context, int(parts[0].lstrip("#")), parts[1])]


def attach_button(incoming: Incoming, context: Context) -> list[Reply]:
    """The "#12 → entry" button of /chuatraloi."""
    pressed = AttachButton.unpack(incoming.button)
    return [_attach(incoming, context, pressed.question_id, pressed.entry_id)]


def _attach(incoming: Incoming, context: Context, question_id: int, entry_id: str) -> Reply:
    entry = context.catalog.get(entry_id)
    if entry is None:
        return Reply(f"Không có mục {entry_id}.")
    try:
        with context.db.begin() as session:
            editing.lock_knowledge(session)  # before any write: on SQLite the lock must open the transaction
            row = unanswered.resolve(session, question_id, entry.id)
            if row is None:
                return Reply(f"Không có câu hỏi số {question_id}.")
            revision = editing.add_phrase(session, entry.id, row.text, actor(incoming), "chat")
            revision_id = revision.id
    except editing.EditError as error:
        return Reply(str(error))
    return Reply(f"Đã gắn câu hỏi #{question_id} vào {entry.id} ({display_name(entry)}); bot dùng ngay trong vài giây. "
                 f"Hoàn tác: /hoantac {revision_id}")


def undo(incoming: Incoming, context: Context) -> list[Reply]:
    """Hoàn tác một thay đổi: /hoantac <số thay đổi>"""
    argument = command_argument(incoming).lstrip("#")
    if not argument.isdigit():
        return [Reply("Cách dùng: /hoantac <số thay đổi> (xem số bằng /muc <mã mục>).")]
    try:
        with context.db.begin() as session:
            done = editing.revert(session, int(argument), actor(incoming), "chat")
            entry_id = done.entry_id
    except editing.EditError as error:
        return [Reply(str(error))]
    return [Reply(f"Đã hoàn tác thay đổi #{argument} của {entry_id}.")]


def register(router: Router) -> None:
    if router.context.db is None:
        return  # without a database there is nothing staff could change
    router.state(StaffImportState)
    router.file(receive_file)
    router.button(ImportButton, confirm_import, CAN_EDIT)
    router.button(AttachButton, attach_button, CAN_EDIT)
    router.command("muc", look_up, roles=frozenset(CAN_EDIT))
    router.command("chuatraloi", list_unanswered, roles=frozenset(CAN_EDIT))
    router.command("gan", attach, roles=frozenset(CAN_EDIT))
    router.command("hoantac", undo, roles=frozenset(CAN_EDIT))
