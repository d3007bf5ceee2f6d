"""Signing in: a one-time link the bot sends to a staff member's chat (/dangnhap), or an optional password.

Opening a link shows a button instead of signing in at once: chat apps fetch links to draw previews, and such
a fetch must not use up the link.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from knowledge import web_access
from knowledge.staff import parse_member, record_action
from knowledge.web_access import StaffIdentity
from web.rendering import render
from web.security import SESSION_COOKIE

router = APIRouter()

FORM_COOKIE = "motcua_signin"  # double-submit token for the password form: there is no session to hold one yet


def safe_next(target: str | None) -> str:
    """Only a path of this site: a crafted link must not send a member elsewhere after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/tongquan"
    return target


def _secure(request: Request) -> bool:
    return request.app.state.motcua.settings.web_url.startswith("https://")


def start_session(request: Request, staff: StaffIdentity, how: str, target: str | None) -> Response:
    """Open a session for `staff` and send the browser on to the page it wanted."""
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        token = web_access.open_session(session, staff, bot.settings.web_session_hours)
        record_action(session, staff.actor, "web.signin", how)
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(bot.settings.web_session_hours * 3600), httponly=True,
                        samesite="lax", secure=_secure(request), path="/")
    response.delete_cookie(FORM_COOKIE, path="/")
    return response


@router.get("/dangnhap")
def sign_in_page(request: Request, tiep: str | None = None) -> Response:
    """How to sign in: the chat command, or a password."""
    form_token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "signin/signin.html", form_token=form_token, next=safe_next(tiep), error=None)
    response.set_cookie(FORM_COOKIE, form_token, httponly=True, samesite="strict", secure=_secure(request), path="/")
    return response


@router.post("/dangnhap")
def sign_in_with_password(request: Request, member: str = Form(""), password: str = Form(""),
                          form_token: str = Form(""), tiep: str = Form("/tongquan")) -> Response:
    """A member who has set a password."""
    cookie = request.cookies.get(FORM_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, form_token):
        return render(request, "signin/signin.html", status_code=403, form_token=cookie or secrets.token_urlsafe(24),
                      next=safe_next(tiep), error="Biểu mẫu đã cũ. Vui lòng tải lại trang rồi đăng nhập lại.")
    staff = None
    try:
        platform, user_id = parse_member(member)
    except ValueError:
        platform = user_id = None
    if platform and password:
        bot = request.app.state.motcua
        with bot.db.begin() as session:
            if web_access.password_locked(session, platform, user_id):
                return render(request, "signin/signin.html", status_code=429, form_token=cookie, next=safe_next(tiep),
                              error="Nhập sai mật khẩu quá nhiều lần. Vui lòng thử lại sau 15 phút, hoặc nhắn /dangnhap "
                                    "cho bot để nhận đường dẫn đăng nhập.")
            staff = web_access.check_password(session, platform, user_id, password)
    if staff is None:
        return render(request, "signin/signin.html", status_code=401, form_token=cookie, next=safe_next(tiep),
                      error="Tài khoản hoặc mật khẩu không đúng.")
    return start_session(request, staff, "password", tiep)


@router.get("/dangnhap/{token}")
def sign_in_link(request: Request, token: str) -> Response:
    """The page a one-time link opens: a button that signs in (the link is not used up by merely opening it)."""
    bot = request.app.state.motcua
    with bot.db() as session:
        usable = web_access.link_is_usable(session, token)
    if not usable:
        return render(request, "signin/link_used.html", status_code=410)
    return render(request, "signin/confirm.html", token=token)


@router.post("/dangnhap/{token}")
def use_sign_in_link(request: Request, token: str) -> Response:
    """Sign in with a one-time link: valid for its minutes, once."""
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        staff = web_access.redeem_link(session, token)
    if staff is None:
        return render(request, "signin/link_used.html", status_code=410)
    return start_session(request, staff, "link", "/tongquan")
