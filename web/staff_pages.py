"""The office's staff (admins): add a member, change a role, remove; every member: own password, sign out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from knowledge import staff as staff_store
from knowledge import web_access
from knowledge.models import StaffRow
from knowledge.staff import ROLE_NAMES, Role, parse_member, record_action
from web.rendering import render
from web.security import ALL_STAFF, CAN_MANAGE_STAFF, SESSION_COOKIE, StaffUser, require

router = APIRouter()


def _page(request: Request, status_code: int = 200, error: str | None = None, notice: str | None = None) -> Response:
    bot = request.app.state.motcua
    with bot.db() as session:
        members = web_access.staff_members(session)
        actions = staff_store.recent_actions(session, 30)
    return render(request, "staff/list.html", status_code=status_code, members=members, actions=actions,
                  roles=list(Role), role_names=ROLE_NAMES, error=error, notice=notice)


def _admins(session) -> int:
    return session.scalar(select(func.count()).select_from(StaffRow).where(StaffRow.role == Role.ADMIN.value)) or 0


@router.get("/canbo")
def staff_list(request: Request, user: StaffUser = Depends(require(CAN_MANAGE_STAFF))) -> Response:
    """Every staff member and the latest staff actions."""
    return _page(request)


@router.post("/canbo")
def add_member(request: Request, member: str = Form(""), role: str = Form(""),
               user: StaffUser = Depends(require(CAN_MANAGE_STAFF))) -> Response:
    """Add a member (or give an existing one this role)."""
    try:
        platform, user_id = parse_member(member)
        chosen = Role(role)
    except ValueError as error:
        message = str(error) if "nền tảng" in str(error) else "Vui lòng chọn một vai trò."
        return _page(request, 400, error=message)
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        existing = session.get(StaffRow, (platform, user_id))
        if existing is not None and existing.role == Role.ADMIN.value and chosen != Role.ADMIN and _admins(session) <= 1:
            return _page(request, 409, error="Phải còn ít nhất một quản trị viên.")
        staff_store.add(session, platform, user_id, chosen)
        record_action(session, user.actor, "staff.add", f"{platform}:{user_id} {chosen.value}")
    return _page(request, notice=f"Đã thêm {platform}:{user_id} với vai trò {ROLE_NAMES[chosen]}.")


@router.post("/canbo/{platform}/{user_id}/vaitro")
def change_role(request: Request, platform: str, user_id: str, role: str = Form(""),
                user: StaffUser = Depends(require(CAN_MANAGE_STAFF))) -> Response:
    """Change a member's role."""
    try:
        chosen = Role(role)
    except ValueError:
        return _page(request, 400, error="Vai trò không hợp lệ.")
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        row = session.get(StaffRow, (platform, user_id))
        if row is None:
            return _page(request, 404, error="Không có cán bộ này (có thể đã bị xóa).")
        if row.role == Role.ADMIN.value and chosen != Role.ADMIN and _admins(session) <= 1:
            return _page(request, 409, error="Phải còn ít nhất một quản trị viên.")
        before = row.role
        row.role = chosen.value
        record_action(session, user.actor, "staff.role", f"{platform}:{user_id} {before} -> {chosen.value}")
    return _page(request, notice=f"Đã đổi vai trò của {platform}:{user_id} thành {ROLE_NAMES[chosen]}.")


@router.post("/canbo/{platform}/{user_id}/xoa")
def remove_member(request: Request, platform: str, user_id: str,
                  user: StaffUser = Depends(require(CAN_MANAGE_STAFF))) -> Response:
    """Remove a member; their browser sessions end at once."""
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        row = session.get(StaffRow, (platform, user_id))
        if row is None:
            return _page(request, 404, error="Không có cán bộ này (có thể đã bị xóa).")
        if row.role == Role.ADMIN.value and _admins(session) <= 1:
            return _page(request, 409, error="Không thể xóa quản trị viên cuối cùng.")
        staff_store.remove(session, platform, user_id)
        web_access.close_sessions_of(session, platform, user_id)
        record_action(session, user.actor, "staff.remove", f"{platform}:{user_id}")
    if (platform, user_id) == (user.platform, user.user_id):
        return RedirectResponse("/dangnhap", status_code=303)
    return _page(request, notice=f"Đã xóa {platform}:{user_id} khỏi danh sách cán bộ.")


@router.get("/matkhau")
def password_page(request: Request, user: StaffUser = Depends(require(ALL_STAFF))) -> Response:
    """Set or change one's own password (optional: the chat link always works)."""
    return render(request, "staff/password.html", error=None, notice=None, minimum=web_access.MIN_PASSWORD_LENGTH)


@router.post("/matkhau")
def set_password(request: Request, password: str = Form(""), again: str = Form(""),
                 user: StaffUser = Depends(require(ALL_STAFF))) -> Response:
    """Store a new password (its argon2 hash)."""
    error = None
    if password != again:
        error = "Hai lần nhập mật khẩu không giống nhau."
    else:
        bot = request.app.state.motcua
        try:
            with bot.db.begin() as session:
                web_access.set_password(session, user.platform, user.user_id, password)
                record_action(session, user.actor, "staff.password", "")
        except ValueError as problem:
            error = str(problem)
    return render(request, "staff/password.html", status_code=400 if error else 200, error=error,
                  notice=None if error else "Đã lưu mật khẩu mới.", minimum=web_access.MIN_PASSWORD_LENGTH)


@router.post("/dangxuat")
def sign_out(request: Request, user: StaffUser = Depends(require(ALL_STAFF))) -> Response:
    """End this browser's session."""
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        web_access.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/dangnhap", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
