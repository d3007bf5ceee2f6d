"""Pages are Jinja2 templates under web/templates; every page gets the signed-in member, settings and CSRF token."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape

from knowledge.models import as_utc, utc_now
from knowledge.staff import ROLE_NAMES, Role

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


@pass_context
def _localtime(context, moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A stored UTC moment in the office's time zone."""
    if moment is None:
        return ""
    settings = context.get("settings")
    zone = settings.timezone if settings is not None else "Asia/Ho_Chi_Minh"
    return as_utc(moment).astimezone(ZoneInfo(zone)).strftime(fmt)


def _number(value: float | int | None) -> str:
    """1234567 -> "1.234.567", as Vietnamese readers write it."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
    return f"{int(value):,}".replace(",", ".")


def _role_name(role: str | Role) -> str:
    try:
        return ROLE_NAMES[Role(role)]
    except ValueError:
        return str(role)


templates.env.filters["localtime"] = _localtime
templates.env.filters["number"] = _number
templates.env.filters["role_name"] = _role_name


def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    """A page (or an htmx fragment) with what every template may use."""
    settings = request.app.state.motcua.settings
    user = getattr(request.state, "staff", None)
    token = getattr(request.state, "csrf_token", "")
    base = {
        "request": request,
        "user": user,
        "settings": settings,
        "csrf_token": token,
        "csrf_field": lambda: Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">'),
        "now": utc_now(),
    }
    base.update(context)
    return templates.TemplateResponse(request, name, base, status_code=status_code)
