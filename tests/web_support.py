"""The web console in tests: an assembled bot on a test database, and browsers signed in as a staff member."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from fastapi import FastAPI
from starlette.testclient import TestClient

from app import App, build_app
from knowledge import staff as staff_store
from knowledge import web_access
from knowledge.staff import Role
from tests.conftest import make_settings
from web.server import create_web_app


@contextlib.contextmanager
def web_app(database_url: str, live: bool = False, **overrides) -> Iterator[App]:
    """The bot assembled on `database_url` (starter knowledge base), closed afterwards."""
    bot = build_app(make_settings(database_url, **overrides), live=live)
    try:
        yield bot
    finally:
        bot.close()


def anonymous(bot: App, console: FastAPI | None = None) -> TestClient:
    """A browser with no session (redirects are not followed, so a test sees where it is sent); pass `console`
    for several browsers on one console (what it keeps in memory, e.g. an upload waiting for its confirm)."""
    return TestClient(console or create_web_app(bot), follow_redirects=False)


def add_staff(bot: App, role: Role, user_id: str, platform: str = "telegram") -> None:
    with bot.db.begin() as session:
        staff_store.add(session, platform, user_id, role)


def signed_in(bot: App, role: Role = Role.ADMIN, user_id: str = "1001", platform: str = "telegram",
              console: FastAPI | None = None) -> TestClient:
    """A browser signed in as a staff member with `role`, through a real one-time link; it sends the session's
    CSRF token on every request, as the console's pages do."""
    add_staff(bot, role, user_id, platform)
    with bot.db.begin() as session:
        token = web_access.issue_link(session, platform, user_id)
    client = anonymous(bot, console)
    response = client.post(f"/dangnhap/{token}")
    assert response.status_code == 303, response.text
    page = client.get("/matkhau")
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, "the signed-in page carries no CSRF token"
    client.headers["X-CSRF-Token"] = found.group(1)
    return client


def without_tokens(html: str) -> str:
    """A page without its random tokens (the session's CSRF token: 64 hex digits). A check that a filer's
    digits are not shown must not fail on the one run in a thousand whose token happens to contain them."""
    return re.sub(r"[0-9a-f]{32,}", "", html)
