"""The console's "Questions to teach" page (/cauhoi), for admins and editors.

The questions the bot could not answer well (knowledge.unanswered, masked before they were stored), most asked
first, with the bot's best guess. One click attaches a question to an entry as an alias — the same change as
the chat's /gan (knowledge.editing.add_phrase, a revision with the member's actor; running bots follow it
within RELOAD_SECONDS) — dismisses it (recorded with knowledge.staff.record_action), or opens the new-entry
form with the question as its first example. The one-click actions answer htmx with the row, updated in place.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from handlers.answers import display_name
from knowledge import editing, unanswered
from knowledge.models import UnansweredRow
from knowledge.staff import CAN_EDIT, record_action
from web.knowledge_pages import WEB_SOURCE, is_htmx, page_number, search_entries
from web.rendering import render
from web.security import StaffUser, require

router = APIRouter()
Editor = Annotated[StaffUser, Depends(require(CAN_EDIT))]

PAGE_SIZE = 30
PICKER_LIMIT = 15
REASONS = {
    "unknown": "Bot không hiểu",
    "clarify": "Bot phải hỏi lại",
    "low": "Bot không chắc",
    "law": "Hỏi về luật, chính sách",
    "thumbs_down": "Người dân chê câu trả lời 👎",
}
DISMISSED_ACTION = "question.dismiss"


def reason_label(reason: str) -> str:
    return REASONS.get(reason, reason)


def entry_label(entry) -> str:
    return f"{entry.id} – {display_name(entry)}"


def attach_question(session: Session, question_id: int, entry_id: str, actor: str):
    """/gan of the chat, for the web: the question becomes an alias of the entry and leaves the queue.

    Raises knowledge.editing.EditError (no such question or entry, already handled, phrase already there)."""
    editing.lock_knowledge(session)  # before any write: on SQLite the lock must open the transaction
    row = session.get(UnansweredRow, question_id)
    if row is None:
        raise editing.EditError(f"Không có câu hỏi số {question_id}.")
    if row.resolved_entry_id is not None:
        raise editing.EditError(f"Câu hỏi #{question_id} đã được xử lý rồi.")
    unanswered.resolve(session, question_id, entry_id)
    return editing.add_phrase(session, entry_id, row.text, actor, WEB_SOURCE)


def dismiss_question(session: Session, question_id: int, actor: str) -> UnansweredRow:
    row = session.get(UnansweredRow, question_id)
    if row is None:
        raise editing.EditError(f"Không có câu hỏi số {question_id}.")
    if row.resolved_entry_id is not None:
        raise editing.EditError(f"Câu hỏi #{question_id} đã được xử lý rồi.")
    unanswered.dismiss(session, question_id)
    # The text was masked before it was stored (no names, numbers or codes): it may be named in the record.
    record_action(session, actor, DISMISSED_ACTION, f"#{question_id}: {row.text[:200]}")
    return row


def queue_page(request: Request, page: int, *, notice: str | None = None, error: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    current = request.app.state.motcua.source.current
    with request.app.state.motcua.db() as session:
        waiting, asked = unanswered.open_totals(session)
        pages = max(1, -(-waiting // PAGE_SIZE))
        page = min(page, pages)
        rows = unanswered.most_frequent(session, PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    questions = [question_view(row, current) for row in rows]
    return render(request, "teach/queue.html", status_code=status_code, questions=questions, waiting=waiting, asked=asked,
                  page=page, pages=pages, notice=notice, error=error)


def question_view(row: UnansweredRow, current) -> dict:
    guess = current.get(row.best_guess) if row.best_guess else None
    return {"id": row.id, "text": row.text, "count": row.count, "reason": reason_label(row.reason), "last_seen": row.last_seen,
            "guess": guess, "guess_label": entry_label(guess) if guess else None}


def row_fragment(request: Request, question: dict, *, done: str | None = None, error: str | None = None,
                 revision_id: int | None = None, entry_id: str | None = None) -> HTMLResponse:
    """One row of the queue for htmx (with the counts refreshed out of band)."""
    with request.app.state.motcua.db() as session:
        waiting, asked = unanswered.open_totals(session)
    return render(request, "teach/_row.html", q=question, done=done, error=error, revision_id=revision_id,
                  entry_id=entry_id, waiting=waiting, asked=asked, oob=True)


@router.get("/cauhoi", response_class=HTMLResponse)
def queue(request: Request, user: Editor, trang: str = "1"):
    return queue_page(request, page_number(trang))


@router.get("/cauhoi/{question_id}/timmuc", response_class=HTMLResponse)
def picker_options(request: Request, user: Editor, question_id: int, q: str = ""):
    """The options of a row's entry picker: entries matching the search, or the bot's best guess."""
    current = request.app.state.motcua.source.current
    entries = search_entries(current, q, PICKER_LIMIT) if q.strip() else []
    if not q.strip():
        with request.app.state.motcua.db() as session:
            row = session.get(UnansweredRow, question_id)
        guess = current.get(row.best_guess) if row is not None and row.best_guess else None
        entries = [guess] if guess else []
    return render(request, "teach/_options.html", entries=entries, label=entry_label, searched=bool(q.strip()))


def _question(request: Request, question_id: int) -> dict | None:
    with request.app.state.motcua.db() as session:
        row = session.get(UnansweredRow, question_id)
        return question_view(row, request.app.state.motcua.source.current) if row is not None else None


@router.post("/cauhoi/{question_id}/gan", response_class=HTMLResponse)
async def attach(request: Request, user: Editor, question_id: int):
    form = await request.form()
    chosen = str(form.get("entry_id") or "").strip()
    page = page_number(str(form.get("trang") or "1"))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_attach, request, user, question_id, chosen, page)


def _attach(request: Request, user: StaffUser, question_id: int, chosen: str, page: int):
    bot = request.app.state.motcua
    question = _question(request, question_id)
    if question is None:
        return _refused(request, question, page, f"Không có câu hỏi số {question_id}.", status_code=404)
    if not chosen:
        return _refused(request, question, page, "Chọn mục để gắn câu hỏi vào (tìm theo mã hoặc tên).")
    # As the chat's /gan: the entry the bot answers with for that procedure (one of equivalent levels).
    entry = bot.source.current.get(chosen)
    entry_id = entry.id if entry is not None else chosen
    try:
        with bot.db.begin() as session:
            revision = attach_question(session, question_id, entry_id, user.actor)
            revision_id = revision.id
    except editing.EditError as error:
        return _refused(request, question, page, str(error))
    name = entry_label(entry) if entry is not None else entry_id
    done = f"Đã gắn vào {name}; bot dùng ngay trong vài giây."
    if is_htmx(request):
        return row_fragment(request, question, done=done, revision_id=revision_id, entry_id=entry_id)
    return queue_page(request, page, notice=f"Câu hỏi #{question_id}: {done} Hoàn tác ở trang lịch sử của mục.")


def _refused(request: Request, question: dict | None, page: int, message: str, status_code: int = 409):
    if is_htmx(request) and question is not None:
        return row_fragment(request, question, error=message)  # 200: htmx swaps only successful answers
    return queue_page(request, page, error=message, status_code=status_code)


@router.post("/cauhoi/{question_id}/boqua", response_class=HTMLResponse)
async def dismiss(request: Request, user: Editor, question_id: int):
    form = await request.form()
    page = page_number(str(form.get("trang") or "1"))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_dismiss, request, user, question_id, page)


def _dismiss(request: Request, user: StaffUser, question_id: int, page: int):
    question = _question(request, question_id)
    if question is None:
        return _refused(request, question, page, f"Không có câu hỏi số {question_id}.", status_code=404)
    try:
        with request.app.state.motcua.db.begin() as session:
            dismiss_question(session, question_id, user.actor)
    except editing.EditError as error:
        return _refused(request, question, page, str(error))
    if is_htmx(request):
        return row_fragment(request, question, done="Đã bỏ qua câu hỏi này.")
    return queue_page(request, page, notice=f"Đã bỏ qua câu hỏi #{question_id}.")

