"""The console's composition: every feature's router registered here, in one place, with the same guards.

    console = create_web_app(build_app(settings, live=True))   # an ASGI app; `serve` runs it with uvicorn
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from web.rendering import STATIC_DIR, render
from web.security import CsrfRefused, Forbidden, NotSignedIn, signed_in, verify_csrf

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from app import App
    from channels.outbound import Sender

log = logging.getLogger(__name__)

# Sign-in checks its own forms (there is no session yet to hold a CSRF token).
SIGN_IN_ROUTER = "web.signin"
# Each module has a `router`; every one of its changes is CSRF-checked. Nav links live in base.html.
FEATURE_ROUTERS = [
    "web.inbox",
    "web.staff_pages",
    "web.announcements",
    "web.overview",
    "web.teach",
    "web.dossiers",
    "web.knowledge_pages",
]

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Sign-in links carry their token in the URL: never pass it on to another site.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
}


def create_web_app(bot: App) -> FastAPI:
    """The console as an ASGI app on an assembled bot (app.build_app)."""
    console = FastAPI(title="motcua", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.motcua = bot
    console.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    console.include_router(importlib.import_module(SIGN_IN_ROUTER).router)
    for name in FEATURE_ROUTERS:
        console.include_router(importlib.import_module(name).router, dependencies=[Depends(verify_csrf)])

    @console.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        return RedirectResponse("/tongquan" if signed_in(request) else "/dangnhap", status_code=303)

    @console.get("/healthz", include_in_schema=False)
    def health() -> dict:
        return {"ok": True}

    @console.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if request.url.path != "/static" and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages hold personal data
        return response

    @console.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/dangnhap"})
        if request.method == "GET" and "application/json" not in request.headers.get("accept", ""):
            return RedirectResponse(f"/dangnhap?tiep={request.url.path}", status_code=303)
        return HTMLResponse("Bạn cần đăng nhập.", status_code=401)

    @console.exception_handler(Forbidden)
    async def forbidden(request: Request, _: Forbidden) -> Response:
        return render(request, "errors/403.html", status_code=403,
                      message="Tài khoản của bạn không có quyền dùng trang hoặc thao tác này.")

    @console.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _: CsrfRefused) -> Response:
        return render(request, "errors/403.html", status_code=403,
                      message="Biểu mẫu đã cũ hoặc không hợp lệ. Vui lòng tải lại trang rồi thử lại.")

    return console


def serve(bot: App, host: str, port: int) -> None:
    """Run the console until interrupted (`bot.py web`)."""
    import uvicorn

    uvicorn.run(create_web_app(bot), host=host, port=port, log_level="warning", proxy_headers=True)


class WebConsoleService:
    """The console served inside `bot.py run` (WEB_IN_RUN): one process for the chats and the staff."""

    name = "web console"

    def __init__(self, bot: App) -> None:
        self.bot = bot
        self.server = None
        self.task: asyncio.Task | None = None

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        import uvicorn

        settings = self.bot.settings
        config = uvicorn.Config(create_web_app(self.bot), host=settings.web_listen, port=settings.web_port,
                                log_level="warning", proxy_headers=True, lifespan="off")
        self.server = uvicorn.Server(config)
        self.server.capture_signals = contextlib.nullcontext  # the bot's runner owns the signals, not the console
        self.task = asyncio.create_task(self.server.serve())
        log.warning("web console on %s", settings.web_url)

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
