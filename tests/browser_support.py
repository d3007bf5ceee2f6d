"""End-to-end tests in a real browser: the bot running as `bot.py run` does in production (the Telegram channel on
the fake Bot API server, the background services, the web console served in the same process with WEB_IN_RUN),
and Debian's Chromium driven by Playwright.

The bot runs in a thread with its own event loop (Playwright's sync API wants the test's thread free of one);
the test talks to the fake Telegram server through that loop and reads what the bot sent.

    with RunningBot(database_url) as running:
        running.add_staff(Role.ADMIN, STAFF_CHAT)
        sign_in(page, running)                # /dangnhap in chat, the link opened in the browser
        running.say(1001, "lam cccd mat bao nhieu tien")

Screenshots go to $MOTCUA_SCREENSHOTS (e.g. docs/screenshots, for the README) when set, else to the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

from app import App, build_app
from background import background_services
from channels.runner import run_channels
from knowledge import staff as staff_store
from knowledge.staff import Role
from tests.conftest import make_settings, wait_until
from tests.fake_telegram import FakeTelegram, Sent
from web.server import WebConsoleService

CHROMIUM = Path(os.environ.get("MOTCUA_CHROMIUM", "/usr/bin/chromium"))
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")

STAFF_CHAT = 9000  # an admin's private chat with the bot (Telegram: the chat id of a private chat is the user's id)
LINK = re.compile(r"http://127\.0\.0\.1:\d+/dangnhap/[A-Za-z0-9_-]+")
TIMEOUT = 30.0  # seconds: generous, CI is a loaded 2-core machine
START_TIMEOUT = 120.0  # building the bot (migrations, catalogue) and starting every service
VIEWPORT = {"width": 1280, "height": 860}


def free_port() -> int:
    """A port nobody listens on now (the console's URL must be known before it starts: sign-in links carry it).

    Taken below the kernel's ephemeral range, so that no outgoing connection (the bot's to the fake server, the
    browser's) can be given it as its local port before the console binds it.
    """
    try:
        lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lowest_ephemeral = 32768
    for _ in range(100):
        port = random.randrange(10000, max(lowest_ephemeral, 10001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningBot:
    """`bot.py run --channel telegram` with WEB_IN_RUN on `database_url`, its Telegram being the fake server."""

    def __init__(self, database_url: str, **overrides) -> None:
        self.database_url = database_url
        # Changes made in the console reach the chats within a fraction of a second (production: 1-2 s).
        self.overrides = {"reload_seconds": 0.2, "broadcast_poll_seconds": 0.3, "handoff_poll_seconds": 0.2} | overrides
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fake: FakeTelegram | None = None
        self.bot: App | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="motcua-bot", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            wait_until(self._started, START_TIMEOUT, "the bot and its web console to start")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._thread.is_alive():
            pytest.fail("the bot did not stop within 60 s")
        if self._error is not None and exc == (None, None, None):
            error, self._error = self._error, None
            raise error

    def _started(self) -> bool:
        if self._error is not None:
            raise self._error
        if self.fake is None or not self.fake.calls_to("getUpdates"):
            return False  # the Telegram channel polls once it is up
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread, which fails with it
            self._error = error

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FakeTelegram() as fake:
            settings = make_settings(self.database_url, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url,
                                     web_in_run=True, web_port=self.port, **self.overrides)
            # As bot.py run assembles it: the live catalogue, every background service, the console beside them.
            bot = await asyncio.to_thread(build_app, settings, live=True)
            try:
                services = [*background_services(settings, bot.db), WebConsoleService(bot)]
                serving = asyncio.create_task(run_channels(bot.router, settings, ["telegram"], services=services))
                self.bot, self.fake = bot, fake
                stopping = asyncio.create_task(self._stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if serving.done():  # the bot stopped on its own: a failure to report
                    stopping.cancel()
                    serving.result()
                    raise RuntimeError("the bot stopped by itself")
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
            finally:
                await asyncio.to_thread(bot.close)

    # ------------------------------------------------------------------ the database

    def add_staff(self, role: Role, chat_id: int = STAFF_CHAT) -> None:
        with self.bot.db.begin() as session:
            staff_store.add(session, "telegram", str(chat_id), role)

    def wait_knowledge_reloaded(self) -> None:
        """Wait until the chats answer from the knowledge base as it is now stored (an edit made in the console is
        picked up by the running bot's live catalogue within RELOAD_SECONDS)."""
        from knowledge.editing import current_version

        with self.bot.db() as session:
            stored = current_version(session)
        wait_until(lambda: self.bot.source.version >= stored, TIMEOUT, "the bot to reload the knowledge base")

    # ------------------------------------------------------------------ chats on the fake Telegram server

    def _on_loop(self, action: Callable[[], object]) -> None:
        """The fake server's queues and events belong to the bot's loop: touch them there only."""
        done = threading.Event()

        def call() -> None:
            try:
                action()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(call)
        assert done.wait(TIMEOUT), "the bot's event loop did not answer"

    def messages(self, chat_id: int) -> list[Sent]:
        return self.fake.messages(chat_id)

    def texts(self, chat_id: int) -> list[str]:
        return self.fake.texts(chat_id)

    def send(self, chat_id: int, text: str) -> None:
        self._on_loop(lambda: self.fake.push_text(chat_id, text))

    def press(self, chat_id: int, data: str) -> Sent:
        before = len(self.messages(chat_id))
        self._on_loop(lambda: self.fake.push_callback(chat_id, data))
        return self.wait_message(chat_id, before)

    def say(self, chat_id: int, text: str) -> Sent:
        """Send `text` in the chat; the bot's first message in reply."""
        before = len(self.messages(chat_id))
        self.send(chat_id, text)
        return self.wait_message(chat_id, before)

    def wait_message(self, chat_id: int, after: int = 0, matching: Callable[[Sent], bool] = lambda _: True,
                     what: str = "a message") -> Sent:
        """The first message the bot sent to the chat after its first `after` messages that is `matching`."""
        found: list[Sent] = []

        def arrived() -> bool:
            found[:] = [m for m in self.messages(chat_id)[after:] if matching(m)]
            return bool(found)

        wait_until(arrived, TIMEOUT, f"{what} in chat {chat_id}")
        return found[0]


def sign_in_link(running: RunningBot, chat_id: int = STAFF_CHAT) -> str:
    """A staff member asks the bot for a one-time sign-in link in chat; the link the bot sent."""
    reply = running.say(chat_id, "/dangnhap")
    found = LINK.search(reply.text)
    assert found, f"no sign-in link in the bot's reply: {reply.text!r}"
    assert found.group(0).startswith(running.url + "/dangnhap/")
    return found.group(0)


def sign_in(page, running: RunningBot, chat_id: int = STAFF_CHAT) -> None:
    """Sign the browser in as the staff member of `chat_id` through the link the bot sends, and land on the overview."""
    from playwright.sync_api import expect

    page.goto(sign_in_link(running, chat_id))
    page.locator("#sign-in-link").click()
    expect(page).to_have_url(f"{running.url}/tongquan")


# ---------------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium (a browser download is not possible here), launched once per test module: Playwright's
    sync API holds an event loop of its own, which must be gone before the suite's asyncio tests run (and two
    modules importing this fixture would otherwise each start one in the same thread)."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT * 1000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser profile (no cookies) with one tab, in Vietnamese, the size of a laptop screen."""
    context = chromium.new_context(viewport=VIEWPORT, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(TIMEOUT * 1000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors in the console's pages: {errors}"


@pytest.fixture
def running(database_url) -> Iterator[RunningBot]:
    """The bot running with its console on a fresh database, an admin registered for chat STAFF_CHAT."""
    with RunningBot(database_url) as bot:
        bot.add_staff(Role.ADMIN)
        yield bot


@pytest.fixture
def screenshot(tmp_path) -> Callable[..., Path]:
    """Save a full-page screenshot: shot(page, "tongquan") -> its path (in $MOTCUA_SCREENSHOTS when set)."""
    folder = Path(os.environ["MOTCUA_SCREENSHOTS"]) if os.environ.get("MOTCUA_SCREENSHOTS") else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, full_page: bool = True) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 0
        return path

    return shot
