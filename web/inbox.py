"""The officers' inbox (/hopthu), for every staff member: citizens who asked for a person.

New conversations appear without reloading (htmx polls the list); an officer claims one (one conditional UPDATE:
two officers never both get it), reads the citizen's earlier questions to the bot and the dossiers they follow
(verified ones only), replies and closes. Replies are stored and delivered by the running bot's hand-off service
(handoff.service) on the citizen's own channel, so the console may run in another process. /hopthu/solieu shows
the ratings per month and the response times per day.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from handlers.handoff import CHANNEL_NAMES
from handoff import actions
from knowledge import handoff_store as store
from knowledge import question_log
from knowledge.models import as_utc, utc_now
from knowledge.staff import ALL_STAFF, record_action
from web.rendering import render
from web.security import StaffUser, require

router = APIRouter()
Staff = Annotated[StaffUser, Depends(require(ALL_STAFF))]

MAX_REPLY_CHARS = 2000
CLOSED_SHOWN = 20
STATS_DAYS = 30
STATUS_NAMES = {store.WAITING: "Đang chờ", store.ACTIVE: "Đang trao đổi", store.CLOSED: "Đã kết thúc"}
KIND_NAMES = {store.HISTORY_CITIZEN: "Người dân hỏi trợ lý", store.HISTORY_BOT: "Trợ lý trả lời", store.CITIZEN: "Người dân",
              store.OFFICER: "Cán bộ", store.NOTICE: "Thông báo của hệ thống"}
DELIVERY_NAMES = {store.PENDING: "đang gửi", store.SENDING: "đang gửi", store.SENT: "đã gửi", store.FAILED: "không gửi được"}


def _bot(request: Request):
    return request.app.state.motcua


def handoff_view(row: store.HandoffRow, position: int = 0) -> dict:
    return {"id": row.id, "channel": CHANNEL_NAMES.get(row.channel, row.channel), "status": row.status,
            "status_name": STATUS_NAMES.get(row.status, row.status), "created_at": row.created_at, "in_hours": row.in_hours,
            "claimed_by": row.claimed_by, "first_reply_at": row.first_reply_at, "last_activity_at": row.last_activity_at,
            "closed_at": row.closed_at, "closed_by": row.closed_by, "position": position}


def _lists(request: Request) -> dict:
    with _bot(request).db() as session:
        open_rows = list(reversed(store.list_handoffs(session, store.OPEN, limit=500)))  # oldest waiting first
        waiting = [handoff_view(row, n) for n, row in enumerate((r for r in open_rows if r.status == store.WAITING), 1)]
        active = [handoff_view(row) for row in open_rows if row.status == store.ACTIVE]
        closed = [handoff_view(row) for row in store.list_handoffs(session, (store.CLOSED,), limit=CLOSED_SHOWN)]
    return {"waiting": waiting, "active": active, "closed": closed}


@router.get("/hopthu", response_class=HTMLResponse)
def inbox(request: Request, user: Staff):
    return render(request, "inbox/list.html", **_lists(request))


@router.get("/hopthu/danhsach", response_class=HTMLResponse)
def inbox_fragment(request: Request, user: Staff):
    """The lists alone, polled by the page every few seconds."""
    return render(request, "inbox/_lists.html", **_lists(request))


def _conversation(request: Request, handoff_id: int) -> dict | None:
    with _bot(request).db() as session:
        row = session.get(store.HandoffRow, handoff_id)
        if row is None:
            return None
        position = store.queue_position(session, row)
        messages = store.messages_of(session, handoff_id)
        deliveries = store.delivery_of(session, [m.id for m in messages if m.kind in (store.OFFICER, store.NOTICE)])
        dossiers = _followed_dossiers(session, row.channel, row.chat_id)
    history = [m for m in messages if m.kind in (store.HISTORY_CITIZEN, store.HISTORY_BOT)]
    talk = [m for m in messages if m not in history]
    return {"h": handoff_view(row, position), "history": [_message_view(m, deliveries) for m in history],
            "talk": [_message_view(m, deliveries) for m in talk], "dossiers": dossiers}


def _message_view(message: store.HandoffMessageRow, deliveries: dict[int, store.OutboxRow]) -> dict:
    outbox = deliveries.get(message.id)
    return {"id": message.id, "kind": message.kind, "who": KIND_NAMES.get(message.kind, message.kind), "author": message.author,
            "text": message.text, "at": message.created_at,
            "delivery": DELIVERY_NAMES.get(outbox.state) if outbox else None,
            "failed": outbox is not None and outbox.state == store.FAILED, "error": outbox.error if outbox else None}


def _followed_dossiers(session, channel: str, chat_id: str) -> list[dict]:
    """The dossiers this chat follows and proved it filed (the 4 digits): only those may be shown."""
    from reminders.models import DossierRow, FollowRow, VerificationRow
    from reminders.statuses import label

    rows = session.execute(
        select(DossierRow).join(FollowRow, FollowRow.dossier_code == DossierRow.code)
        .join(VerificationRow, (VerificationRow.dossier_code == DossierRow.code) & (VerificationRow.channel == FollowRow.channel)
              & (VerificationRow.chat_id == FollowRow.chat_id))
        .where(FollowRow.channel == channel, FollowRow.chat_id == chat_id).order_by(DossierRow.code)).scalars().all()
    return [{"code": d.code, "procedure": d.procedure, "status": label(d.status), "due_at": d.new_due_at or d.due_at} for d in rows]


def conversation_page(request: Request, handoff_id: int, *, notice: str | None = None, error: str | None = None,
                      status_code: int = 200, draft: str = "") -> HTMLResponse:
    view = _conversation(request, handoff_id)
    if view is None:
        return render(request, "inbox/missing.html", status_code=404, handoff_id=handoff_id)
    return render(request, "inbox/conversation.html", status_code=status_code, notice=notice, error=error, draft=draft, **view)


@router.get("/hopthu/solieu", response_class=HTMLResponse)
def figures(request: Request, user: Staff, ngay: str = str(STATS_DAYS)):
    days = int(ngay) if ngay.isdigit() and 1 <= int(ngay) <= 366 else STATS_DAYS
    settings = _bot(request).settings
    zone = ZoneInfo(settings.timezone)
    since = utc_now() - timedelta(days=days)
    with _bot(request).db() as session:
        months = store.ratings_by_month(session)
        thumbs = question_log.votes_by_month(session, settings.timezone)
        comments = [{"month": r.month, "score": r.score, "source": r.source, "comment": r.comment}
                    for r in store.recent_comments(session)]
        handoffs = store.handoffs_since(session, since)
    return render(request, "inbox/stats.html", months=_month_rows(months, thumbs), comments=comments, days=days,
                  per_day=response_times(handoffs, zone))


SOURCE_NAMES = {"handoff": "Trao đổi với cán bộ", "dossier": "Giải quyết hồ sơ"}


def _month_rows(months: list[tuple[str, str, int, float, int]], thumbs: dict[str, tuple[int, int]]) -> list[dict]:
    """One row per month and source of ratings, beside the month's 👍 share (a month with votes only has a row too)."""
    rows = [{"key": m, "source": SOURCE_NAMES.get(source, source), "count": count, "average": round(average, 2),
             "satisfied": round(100 * good / count) if count else 0} for m, source, count, average, good in months]
    rated = {m for m, *_ in months}
    rows += [{"key": m, "source": "–", "count": 0, "average": None, "satisfied": None} for m in thumbs if m not in rated]
    rows.sort(key=lambda row: row["key"], reverse=True)
    for row in rows:
        up, total = thumbs.get(row["key"], (0, 0))
        row["month"] = f"{row['key'][5:]}/{row['key'][:4]}"
        row["thumbs"] = f"{round(100 * up / total)}% ({up}/{total})" if total else "–"
    return rows


def response_times(handoffs: list[store.HandoffRow], zone: ZoneInfo) -> list[dict]:
    """Per day the conversations were asked for: how many, and the median minutes to claim, to the first
    reply and to the end (each over the conversations that got that far)."""
    days: dict[date, list[store.HandoffRow]] = {}
    for row in handoffs:
        days.setdefault(as_utc(row.created_at).astimezone(zone).date(), []).append(row)
    result = []
    for day in sorted(days, reverse=True):
        rows = days[day]
        result.append({"day": day, "count": len(rows), "answered": sum(1 for r in rows if r.first_reply_at),
                       "wait": _median(store.seconds_between(r.created_at, r.claimed_at) for r in rows),
                       "first_reply": _median(store.seconds_between(r.created_at, r.first_reply_at) for r in rows),
                       "closed": _median(store.seconds_between(r.created_at, r.closed_at) for r in rows)})
    return result


def _median(values) -> str:
    present = [v for v in values if v is not None]
    return duration(statistics.median(present)) if present else "–"


def duration(seconds: float) -> str:
    """"45 giây", "12 phút", "2 giờ 5 phút", "3 ngày 4 giờ"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} giây"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} phút"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"
    days, hours = divmod(hours, 24)
    return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"


@router.get("/hopthu/{handoff_id}", response_class=HTMLResponse)
def conversation(request: Request, user: Staff, handoff_id: int, xong: str = ""):
    return conversation_page(request, handoff_id, notice=DONE.get(xong))


@router.get("/hopthu/{handoff_id}/tinnhan", response_class=HTMLResponse)
def messages_fragment(request: Request, user: Staff, handoff_id: int):
    """The conversation's state and messages, polled by its page."""
    view = _conversation(request, handoff_id)
    if view is None:
        return HTMLResponse("<p class=\"error\">Cuộc trò chuyện không còn (người dân đã xóa dữ liệu).</p>", status_code=200)
    return render(request, "inbox/_talk.html", **view)


# What the page says after an action (post/redirect/get): by a code, so no text can be planted through a link.
DONE = {
    "nhan": "Đã nhận cuộc trò chuyện. Tin nhắn bạn gửi sẽ đến người dân trong vài giây.",
    "danhan": "Bạn đã nhận cuộc trò chuyện này.",
    "gui": "Đã gửi; người dân nhận được trong vài giây.",
    "dong": "Đã kết thúc; người dân đã được báo.",
    "danhgia": "Đã kết thúc; người dân đã được báo và được mời đánh giá.",
}


def _done(handoff_id: int, code: str) -> RedirectResponse:
    return RedirectResponse(f"/hopthu/{handoff_id}?xong={code}", status_code=303)


@router.post("/hopthu/{handoff_id}/nhan", response_class=HTMLResponse)
async def take(request: Request, user: Staff, handoff_id: int):
    return await run_in_threadpool(_take, request, user, handoff_id)


def _take(request: Request, user: StaffUser, handoff_id: int):
    with _bot(request).db() as session:
        row = session.get(store.HandoffRow, handoff_id)
        if row is None:
            return render(request, "inbox/missing.html", status_code=404, handoff_id=handoff_id)
        if not store.claim(session, handoff_id, user.actor):
            session.refresh(row)
            if row.claimed_by == user.actor:
                return _done(handoff_id, "danhan")
            why = "đã kết thúc" if row.status == store.CLOSED else f"đã được {row.claimed_by} nhận"
            return conversation_page(request, handoff_id, error=f"Không nhận được: cuộc trò chuyện #{handoff_id} {why}.", status_code=409)
        record_action(session, user.actor, "handoff.claim", f"#{handoff_id}")
        session.commit()
    return _done(handoff_id, "nhan")


@router.post("/hopthu/{handoff_id}/traloi", response_class=HTMLResponse)
async def reply(request: Request, user: Staff, handoff_id: int):
    form = await request.form()
    text = str(form.get("noidung") or "").strip()
    return await run_in_threadpool(_reply, request, user, handoff_id, text)


def _reply(request: Request, user: StaffUser, handoff_id: int, text: str):
    if not text:
        return conversation_page(request, handoff_id, error="Tin nhắn trống: hãy gõ nội dung trả lời.", status_code=400)
    if len(text) > MAX_REPLY_CHARS:
        return conversation_page(request, handoff_id, error=f"Tin nhắn dài quá ({len(text)} ký tự); tối đa {MAX_REPLY_CHARS}.",
                                 status_code=400, draft=text)
    with _bot(request).db() as session:
        if session.get(store.HandoffRow, handoff_id) is None:
            return render(request, "inbox/missing.html", status_code=404, handoff_id=handoff_id)
        try:
            store.officer_reply(session, handoff_id, user.actor, text)
        except store.NotYours as error:
            why = "đã kết thúc" if str(error) == "closed" else "đang do cán bộ khác phụ trách"
            return conversation_page(request, handoff_id, error=f"Không gửi được: cuộc trò chuyện {why}.", status_code=409, draft=text)
    return _done(handoff_id, "gui")


@router.post("/hopthu/{handoff_id}/dong", response_class=HTMLResponse)
async def close(request: Request, user: Staff, handoff_id: int):
    return await run_in_threadpool(_close, request, user, handoff_id)


def _close(request: Request, user: StaffUser, handoff_id: int):
    bot = _bot(request)
    with bot.db() as session:
        row = session.get(store.HandoffRow, handoff_id)
        if row is None:
            return render(request, "inbox/missing.html", status_code=404, handoff_id=handoff_id)
        if row.claimed_by not in (None, user.actor) and row.status == store.ACTIVE:
            return conversation_page(request, handoff_id, error="Chỉ cán bộ đang phụ trách mới kết thúc được cuộc trò chuyện này.",
                                     status_code=409)
        ended = actions.end(session, handoff_id, user.actor, bot.settings, utc_now(), notify=actions.CLOSED_BY_OFFICER)
        if ended is None:
            return conversation_page(request, handoff_id, error="Cuộc trò chuyện đã kết thúc rồi.", status_code=409)
        record_action(session, user.actor, "handoff.close", f"#{handoff_id}")
        session.commit()
    return _done(handoff_id, "danhgia" if ended.rating else "dong")

