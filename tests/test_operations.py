"""Database trouble as an operator sees it (issue 12, item 6): at start a one-line wait with backoff, then a
one-line reason and exit; mid-run one log line per kind of error and interval instead of thousands; a
/healthz answer a process manager can act on (200 when the database answers `SELECT 1`, else 503)."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

import operations
import redaction
from config import PROJECT_DIR
from knowledge.db import make_engine, session_factory
from operations import (
    DatabaseProbe,
    DatabaseUnavailable,
    HealthServer,
    RepeatedErrorFilter,
    install_repeated_error_filter,
    uninstall_repeated_error_filter,
)

DOWN = "postgresql://motcua:hunter2-secret@127.0.0.1:1/motcua"  # nothing listens on port 1: refused at once


# --------------------------------------------------------------------------- the database at start

def test_waiting_for_a_database_that_answers_returns_at_once(database_url):
    slept: list[float] = []
    operations.wait_for_database(database_url, timeout=30, sleep=slept.append)
    assert slept == []


def test_a_database_down_at_start_is_retried_with_backoff_then_refused_in_one_line(caplog):
    slept: list[float] = []
    caplog.set_level(logging.INFO)
    with pytest.raises(DatabaseUnavailable) as refused:
        operations.wait_for_database(DOWN, timeout=20, sleep=slept.append)
    message = str(refused.value)
    assert "\n" not in message and "127.0.0.1:1/motcua" in message and "hunter2" not in message
    assert sum(slept) == pytest.approx(20) and slept[0] < slept[1] < slept[2] and max(slept) <= 10.5, slept
    lines = [r for r in caplog.records if r.name == "operations"]
    assert len(lines) == len(slept) and all("\n" not in r.getMessage() and not r.exc_info for r in lines)
    assert [r.levelno for r in lines].count(logging.WARNING) == 1  # one line at the default level, then the reason
    assert all("hunter2" not in r.getMessage() for r in lines)


def test_a_database_that_comes_up_during_the_wait_is_used(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'up.db'}")
    attempts = []

    class ComingUp:
        def connect(self):
            attempts.append(1)
            if len(attempts) < 3:
                raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
            return engine.connect()

        def dispose(self):
            engine.dispose()

    monkeypatch.setattr(operations, "_probe_engine", lambda url: ComingUp())
    slept: list[float] = []
    operations.wait_for_database("sqlite://", timeout=60, sleep=slept.append)
    assert len(attempts) == 3 and len(slept) == 2


# --------------------------------------------------------------------------- repeated errors

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logger_writing_to(stream: io.StringIO, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [logging.StreamHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_an_outage_mid_run_logs_one_line_per_kind_and_interval_with_a_count():
    stream, clock = io.StringIO(), Clock()
    logger = _logger_writing_to(stream, "test.outage")
    redaction.install(logger=logger)
    [flt] = install_repeated_error_filter(60, logger=logger)[:1]
    flt.clock = clock
    try:
        for chat in range(5000):  # every chat's question fails the same way while the database is down
            try:
                raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
            except OperationalError:
                logger.exception("update for chat %s failed", chat)
            logger.warning("reminder job failed")
            clock.now += 0.01  # 50 s in all: inside one interval
        logger.info("a normal event")  # below WARNING: never held back
        clock.now += 11
        logger.warning("reminder job failed")
    finally:
        redaction.uninstall(logger)
        logger.handlers[:] = []
    lines = stream.getvalue().splitlines()
    assert sum("Traceback" in line for line in lines) == 1
    messages = [line for line in lines if "failed" in line]
    assert messages[0] == "update for chat 0 failed" and messages[1] == "reminder job failed"
    assert messages[-1] == "reminder job failed (repeated 4999 times in the last 60 s)"
    assert "a normal event" in lines and len(messages) == 3


def test_the_filter_lets_different_errors_through_and_counts_per_kind():
    clock = Clock()
    flt = RepeatedErrorFilter(60, clock=clock)

    def record(msg, level=logging.ERROR, name="x"):
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    assert flt.filter(record("a")) and flt.filter(record("b")) and flt.filter(record("a", name="y"))
    assert not flt.filter(record("a")) and not flt.filter(record("a"))
    assert flt.filter(record("a", level=logging.INFO))
    assert flt.pending() == {("x", logging.ERROR, "a", None): 2}
    clock.now = 61
    passed = record("a")
    assert flt.filter(passed) and passed.getMessage() == "a (repeated 2 times in the last 60 s)"
    assert not flt.filter(record("a"))


def test_installing_twice_keeps_one_filter_per_handler():
    logger = _logger_writing_to(io.StringIO(), "test.install")
    try:
        install_repeated_error_filter(30, logger=logger)
        install_repeated_error_filter(10, logger=logger)
        filters = [f for f in logger.handlers[0].filters if isinstance(f, RepeatedErrorFilter)]
        assert len(filters) == 1 and filters[0].interval == 10
        uninstall_repeated_error_filter(logger)
        assert not logger.handlers[0].filters
    finally:
        logger.handlers[:] = []


# --------------------------------------------------------------------------- health

async def _get(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def test_healthz_is_200_when_the_database_answers(db):
    server = await HealthServer(db, "127.0.0.1", 0).start()
    try:
        status, body = await _get(server.port)
    finally:
        await server.stop()
    assert status == 200 and body["status"] == "ok" and body["database"] == "ok"


async def test_healthz_is_503_when_the_database_is_down():
    engine = create_engine(DOWN.replace("postgresql://", "postgresql+psycopg://"), hide_parameters=True)
    server = await HealthServer(session_factory(engine), "127.0.0.1", 0).start()
    try:
        status, body = await _get(server.port)
    finally:
        await server.stop()
        engine.dispose()
    assert status == 503 and body["status"] == "unavailable" and "hunter2" not in str(body)


async def test_a_hanging_database_is_503_and_checks_share_one_probe(tmp_path):
    release, started = threading.Event(), []
    engine = make_engine(f"sqlite:///{tmp_path / 'hang.db'}")

    class Hanging:
        def connect(self):
            started.append(1)
            release.wait(60)
            return engine.connect()

    probe = DatabaseProbe(None, timeout=0.2)
    probe.engine = Hanging()
    try:
        results = await asyncio.gather(*(probe.check() for _ in range(5)))
        assert all(not r.ok and r.body["database"] == "timeout" for r in results)
        assert len(started) == 1  # a hanging database does not pile up threads
    finally:
        release.set()
    engine.dispose()


# --------------------------------------------------------------------------- the command line

def _wired() -> bool:
    return any("wait_for_database" in (PROJECT_DIR / name).read_text() for name in ("bot.py", "app.py")
               if (PROJECT_DIR / name).exists())


@pytest.mark.skipif(not _wired(), reason="until bot.py/app.py calls operations.wait_for_database at start")
def test_bot_run_with_the_database_down_says_so_in_one_line_and_exits_1(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_WAIT_SECONDS": "1", "TELEGRAM_BOT_TOKEN": "123:abc", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(Path(PROJECT_DIR, "bot.py")), "--db", DOWN, "run"], check=False, cwd=tmp_path,
                          env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 5, done.stderr  # a line per attempt and the reason
    assert "127.0.0.1:1/motcua" in done.stderr.strip().splitlines()[-1]
