"""Running the bot as an operated service: waiting for the database at start, keeping a database outage from
flooding the log, and telling a process manager whether the bot is healthy (`/healthz`).

Nothing here knows a chat platform: the webhook servers (channels/webhooks.py) add the same health route,
and `HealthServer` serves it alone where the bot polls and has no HTTP server of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential, wait_random

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
HEALTH_TIMEOUT = 2.0  # seconds a `SELECT 1` may take before the bot reports itself unhealthy
CONNECT_TIMEOUT = 5  # seconds one connection attempt may take at start (a black-holed host must not hang)


# --------------------------------------------------------------------------- the database at start

class DatabaseUnavailable(Exception):
    """The database did not answer within the time allowed; the message is one line for the operator."""


def describe_database(url: str) -> str:
    """Where the database is, for a log line: driver, host, port and name, never the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(DATABASE_URL không hợp lệ)"
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:{parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    return f"{parsed.get_backend_name()}://{host}{f':{parsed.port}' if parsed.port else ''}/{parsed.database or ''}"


def _probe_engine(url: str) -> Engine:
    """An engine for one connection at a time, with a connect timeout: only for the wait at start."""
    from knowledge.db import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, poolclass=NullPool, hide_parameters=True,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT})
    return make_engine(url)


def _reason(error: BaseException) -> str:
    """An error as a short line: the driver's first line, which names the cause (refused, unknown host...)."""
    original = getattr(error, "orig", None) or error
    first = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {first}"[:200] if first else type(original).__name__


def wait_for_database(url: str, timeout: float = 60.0, *, sleep: Callable[[float], None] = time.sleep,
                      logger: logging.Logger | None = None) -> None:
    """Return once the database answers `SELECT 1`; retry with backoff (0.5 s doubling to 10 s) for up to
    `timeout` seconds, one log line per attempt; then raise DatabaseUnavailable with a one-line reason."""
    logger = logger or log
    where = describe_database(url)
    try:
        engine = _probe_engine(url)
    except (ArgumentError, NoSuchModuleError) as error:
        raise DatabaseUnavailable(f"DATABASE_URL không dùng được ({where}): {error}") from None

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        if state.attempt_number == 1:  # the operator's one line; the retries only with LOG_LEVEL=INFO
            logger.warning("database %s not reachable (%s); retrying for up to %g s", where, _reason(error) if error else "?", timeout)
        else:
            logger.info("database %s still not reachable (%s); retry %d in %.1f s",
                        where, _reason(error) if error else "?", state.attempt_number, wait)

    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    backoff = wait_exponential(multiplier=0.5, max=10.0) + wait_random(0, 0.5)

    def left(state: RetryCallState) -> float:
        # Real time (a connect attempt may take CONNECT_TIMEOUT) or time slept, whichever is further along.
        return timeout - max(state.seconds_since_start or 0.0, state.idle_for)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), left(state)))  # the last attempt falls on the deadline, not past it

    retrying = Retrying(retry=retry_if_exception_type(DBAPIError), stop=lambda state: left(state) <= 1e-6, wait=wait, sleep=sleep,
                        before_sleep=before_sleep, reraise=True)
    try:
        retrying(ping)
    except DBAPIError as error:
        raise DatabaseUnavailable(f"Không kết nối được cơ sở dữ liệu {where} sau {timeout:g} giây: {_reason(error)}") from None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- repeated errors in the log

@dataclass
class _Seen:
    until: float  # end of the window opened by the record that went through
    suppressed: int = 0


class RepeatedErrorFilter(logging.Filter):
    """Lets the first of identical warnings/errors through, then holds the repeats back for `interval`
    seconds; the first one after that goes out with "(repeated N times in the last … s)".

    Identical means the same logger, level, message template and exception type: during a database outage
    every chat's question fails with the same template, and one line a minute says as much as thousands.
    Records below `level` always pass. Put it on a handler, before the redaction filter (which formats the
    message): a filter on a logger does not see its children's records.
    """

    MAX_KEYS = 1000  # distinct kinds remembered; the oldest are forgotten (they then pass again)

    def __init__(self, interval: float = 60.0, level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.level = level
        self.clock = clock
        self._seen: dict[tuple, _Seen] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(record: logging.LogRecord) -> tuple:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        return record.name, record.levelno, str(record.msg), exc

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or self.interval <= 0:
            return True
        key, now = self.key(record), self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now < seen.until:
                seen.suppressed += 1
                return False
            repeated = seen.suppressed if seen is not None else 0
            self._seen.pop(key, None)
            if len(self._seen) >= self.MAX_KEYS:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = _Seen(now + self.interval)
        if repeated:
            # Appended to the template (no % in it), so the arguments are still formatted by whoever formats it.
            record.msg = f"{record.msg} (repeated {repeated} times in the last {self.interval:g} s)"
        return True

    def pending(self) -> dict[tuple, int]:
        """Repeats held back and not yet reported (a final summary at shutdown may log them)."""
        with self._lock:
            return {key: seen.suppressed for key, seen in self._seen.items() if seen.suppressed}


def install_repeated_error_filter(interval: float = 60.0, logger: logging.Logger | None = None) -> list[RepeatedErrorFilter]:
    """A RepeatedErrorFilter on every handler of the root logger (and the last-resort one); safe to call again.

    Each handler gets its own (a shared one would count the second handler's copy as a repeat), placed first
    so it reads the message template before the redaction filter formats it.
    """
    root = logger or logging.getLogger()
    handlers = list(root.handlers) + ([logging.lastResort] if logging.lastResort is not None else [])
    installed = []
    for handler in handlers:
        flt = next((f for f in handler.filters if isinstance(f, RepeatedErrorFilter)), None)
        if flt is None:
            flt = RepeatedErrorFilter(interval)
            handler.filters.insert(0, flt)
        flt.interval = interval
        installed.append(flt)
    return installed


def uninstall_repeated_error_filter(logger: logging.Logger | None = None) -> None:
    """Take the filters off again (the end of `bot.py run`, tests)."""
    root = logger or logging.getLogger()
    for handler in list(root.handlers) + ([logging.lastResort] if logging.lastResort is not None else []):
        for flt in [f for f in handler.filters if isinstance(f, RepeatedErrorFilter)]:
            handler.removeFilter(flt)


# --------------------------------------------------------------------------- health

@dataclass(frozen=True)
class Health:
    ok: bool
    body: dict[str, Any]


class DatabaseProbe:
    """`SELECT 1` with a time limit, one at a time: checks coming while one runs share its answer, so a
    hanging database cannot pile up threads."""

    def __init__(self, db: Engine | sessionmaker[Session] | None, timeout: float = HEALTH_TIMEOUT) -> None:
        self.engine = db.kw.get("bind") if isinstance(db, sessionmaker) else db
        self.timeout = timeout
        self._running: asyncio.Future | None = None
        self.started = time.monotonic()

    def _select_one(self) -> float:
        begun = time.perf_counter()
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return (time.perf_counter() - begun) * 1000

    async def check(self) -> Health:
        """200-worthy when the database answered within the time limit."""
        body: dict[str, Any] = {"status": "ok", "uptime_s": round(time.monotonic() - self.started)}
        if self.engine is None:
            return Health(True, body)
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(self._select_one))
        try:
            ms = await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except TimeoutError:
            return Health(False, body | {"status": "unavailable", "database": "timeout"})
        except Exception as error:  # noqa: BLE001 - the reason stays in the log; the answer names only its kind
            log.warning("health check: database not answering (%s)", _reason(error))
            return Health(False, body | {"status": "unavailable", "database": "error"})
        return Health(True, body | {"database": "ok", "database_ms": round(ms, 1)})


async def health_response(probe: DatabaseProbe) -> web.Response:
    """200 with a small JSON when healthy, else 503 (what a process manager or load balancer reads)."""
    health = await probe.check()
    return web.json_response(health.body, status=200 if health.ok else 503, headers={"Cache-Control": "no-store"})


def add_health_route(app: web.Application, probe: DatabaseProbe) -> None:
    """GET /healthz on an aiohttp application."""

    async def healthz(_request: web.Request) -> web.Response:
        return await health_response(probe)

    app.router.add_get(HEALTH_PATH, healthz)


class HealthServer:
    """/healthz alone on its own port, for a bot that polls (the webhook servers serve it themselves)."""

    def __init__(self, db: Engine | sessionmaker[Session] | None, listen: str = "127.0.0.1", port: int = 8081) -> None:
        self.probe = DatabaseProbe(db)
        self.listen, self.port = listen, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> HealthServer:
        app = web.Application()
        add_health_route(app, self.probe)
        self._runner = web.AppRunner(app, access_log=None)  # a probe every few seconds is not news
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 asked for any free one
        log.info("health check on http://%s:%d%s", self.listen, self.port, HEALTH_PATH)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
