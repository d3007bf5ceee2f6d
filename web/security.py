"""Who is asking: the session cookie, the member's role checked on every request, and CSRF on every change.

Feature routers use `Depends(require(ROLES))`; the composition in web.server adds `verify_csrf` to every feature
router, so no form or htmx action can be forged from another site.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from fastapi import Request

from knowledge import web_access
from knowledge.staff import ALL_STAFF, CAN_BROADCAST, CAN_EDIT, CAN_FOLLOW_DOSSIERS, CAN_MANAGE_STAFF, Role
from knowledge.web_access import StaffIdentity

__all__ = ["ALL_STAFF", "CAN_BROADCAST", "CAN_EDIT", "CAN_FOLLOW_DOSSIERS", "CAN_MANAGE_STAFF", "Role", "StaffUser",
           "require", "verify_csrf", "signed_in", "SESSION_COOKIE", "NotSignedIn", "Forbidden", "CsrfRefused"]

StaffUser = StaffIdentity  # the signed-in member: platform, user_id, role, .actor

SESSION_COOKIE = "motcua_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(Exception):
    """No valid session: pages send the browser to sign in, htmx and API calls get 401."""


class Forbidden(Exception):
    """Signed in, but the member's role does not allow this."""


class CsrfRefused(Exception):
    """A change without this session's CSRF token (a forged form, or a page older than the session)."""


def signed_in(request: Request) -> StaffUser | None:
    """The member of this request's session (looked up once per request, the role as the database says now)."""
    if hasattr(request.state, "staff"):
        return request.state.staff
    token = request.cookies.get(SESSION_COOKIE)
    staff = None
    if token:
        bot = request.app.state.motcua
        with bot.db() as session:
            staff = web_access.session_staff(session, token)
    request.state.staff = staff
    request.state.csrf_token = web_access.csrf_token(token) if staff is not None else ""
    return staff


def require(roles: Iterable[Role] = ALL_STAFF) -> Callable[[Request], StaffUser]:
    """A dependency giving the signed-in member if their role is one of `roles`."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> StaffUser:
        staff = signed_in(request)
        if staff is None:
            raise NotSignedIn()
        if staff.role not in allowed:
            raise Forbidden()
        return staff

    return dependency


async def verify_csrf(request: Request) -> None:
    """Refuse a change that does not carry this session's CSRF token (header for htmx, form field for forms)."""
    if request.method not in UNSAFE_METHODS:
        return
    staff = signed_in(request)
    if staff is None:
        raise NotSignedIn()
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps the parsed form: the endpoint reads the same one
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, request.state.csrf_token):
        raise CsrfRefused()
