"""/xoadulieu tells the truth: it runs every feature's "forget this chat" step, reports what it deleted and
what it could not (database down, disk full), leaves no row of the chat in any table, and in a group chat
touches nobody's stored data; subscriptions are refused in groups."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import Chat, make_settings
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from broadcasts import audience, compose
from broadcasts.models import BroadcastRow, DeliveryRow, SubscriptionRow
from handlers import build_router
from handlers.messages import Incoming
from handlers.state import now_utc
from knowledge.db import make_engine, session_factory

CHANNEL = "telegram"


@pytest.fixture
def wired(catalog, db, database_url):
    return build_router(catalog, make_settings(database_url), db)


def subscribed(db, chat_id: str) -> SubscriptionRow | None:
    with db() as session:
        return audience.subscription(session, CHANNEL, chat_id)


def remembered(router, chat_key: str) -> dict:
    """What the chat's memory holds (every feature's stored state), read from its store."""
    return router.context.memory.backend.read_all(chat_key, now_utc())


def group_says(router, chat_id: str, text: str = "", button: str | None = None) -> str:
    [reply] = router.handle(Incoming(CHANNEL, chat_id, "member-1", text, button=button, group=True))
    return reply.text


# --------------------------------------------------------------------------- every table, every step

_numbers = itertools.count(1)


def _sample(column: sa.Column):
    """A value of the column's type (unique enough for unique constraints), for a table we know nothing of."""
    n = next(_numbers)
    kind = column.type
    if isinstance(kind, sa.JSON):
        return []
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return datetime(2026, 11, 27).date()
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float | sa.Numeric):
        return float(n)
    length = getattr(kind, "length", None) or 64
    return str(n).rjust(min(length, 4), "0")[-length:]


def _insert(connection, table: sa.Table, given: dict) -> dict:
    """A row in `table` with every column filled (parents of its foreign keys inserted first); its values."""
    row = {}
    for column in table.columns:
        if column.name in given:
            row[column.name] = given[column.name]
        elif column.foreign_keys:
            if column.nullable:
                continue
            target = next(iter(column.foreign_keys)).column
            row[column.name] = _insert(connection, target.table, {})[target.name]
        elif column.primary_key and isinstance(column.type, sa.Integer):
            continue  # autoincrement
        else:
            row[column.name] = _sample(column)
    result = connection.execute(sa.insert(table).values(row))
    return {**row, **dict(zip([c.name for c in table.primary_key.columns], result.inserted_primary_key, strict=True))}


def per_chat_tables(engine: sa.Engine) -> list[sa.Table]:
    """Every table of the migrated database that stores something per chat (a channel and a chat id)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    return [t for t in metadata.sorted_tables if {"channel", "chat_id"} <= set(t.columns.keys())]


def rows_of(engine: sa.Engine, table: sa.Table, chat_id: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)
                                  .where(table.c.channel == CHANNEL, table.c.chat_id == chat_id))


def test_xoadulieu_leaves_no_row_of_the_chat_in_any_table(wired, db):
    """A feature that stores per-chat data without registering a forget step fails here."""
    engine = db.kw["bind"]
    tables = per_chat_tables(engine)
    assert {"subscriptions", "deliveries", "dossier_follows", "reminders"} <= {t.name for t in tables}
    with engine.begin() as connection:
        for table in tables:
            for chat_id in ("777", "888"):
                _insert(connection, table, {"channel": CHANNEL, "chat_id": chat_id})
    assert all(rows_of(engine, t, "777") == 1 for t in tables)

    [reply] = Chat(wired, "777", CHANNEL).send("/xoadulieu")

    left = {t.name: rows_of(engine, t, "777") for t in tables}
    assert not any(left.values()), f"/xoadulieu left rows of the chat in {[n for n, c in left.items() if c]}"
    assert all(rows_of(engine, t, "888") == 1 for t in tables), "another chat's data is untouched"
    assert reply.text.startswith("Đã xóa") and "đăng ký nhận thông báo" in reply.text and "hồ sơ bạn theo dõi" in reply.text


def test_every_registered_step_runs_and_a_failing_one_is_reported_as_a_failure(wired, db):
    def broken(session, channel, chat_id):
        raise OperationalError("DELETE FROM notes", {}, Exception("database or disk is full"))

    wired.forget("ghi chú thử nghiệm", broken)
    chat = Chat(wired, "701", CHANNEL)
    chat.send("/dangky")
    chat.send("khai sinh")  # the chat's memory: a question and the choices offered
    [reply] = chat.send("/xoadulieu")
    assert "Đã xóa" in reply.text and "đăng ký nhận thông báo" in reply.text and "câu hỏi gần nhất" in reply.text
    assert "Chưa xóa được ghi chú thử nghiệm" in reply.text and "thử lại sau hoặc liên hệ" in reply.text
    assert subscribed(db, "701") is None, "one feature failing does not keep the others' data"
    assert not remembered(wired, f"{CHANNEL}:701")


def _unreachable(database_url: str, tmp_path) -> sa.Engine:
    """An engine on the same kind of database that cannot be opened (the server or the file is gone)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        return create_engine(f"sqlite:///{blocker / 'motcua.db'}")
    return make_engine(url.set(port=1, host="127.0.0.1").render_as_string(hide_password=False))


def test_with_the_database_down_nothing_is_claimed_deleted(catalog, database_url, tmp_path):
    engine = _unreachable(database_url, tmp_path)
    router = build_router(catalog, make_settings(database_url), session_factory(engine))
    chat = Chat(router, "702", CHANNEL)
    [fresh] = chat.send("/xoadulieu")
    assert "không lưu gì" not in fresh.text, "the database could not be read: the bot does not know"
    assert "Chưa xóa được" in fresh.text and "đăng ký nhận thông báo" in fresh.text and "hồ sơ bạn theo dõi" in fresh.text
    assert "thử lại sau hoặc liên hệ" in fresh.text

    [answer] = chat.send("khai sinh")
    assert "trục trặc" not in answer.text, "questions are answered while the chat's memory cannot be kept"
    [reply] = chat.send("/xoadulieu")
    assert "Chưa xóa được" in reply.text and "ghi nhớ trong cuộc trò chuyện" in reply.text, \
        "the chat's memory lives in the database too: it is not claimed deleted"
    assert "Đã xóa" not in reply.text
    engine.dispose()


def test_a_full_disk_is_reported_and_the_data_kept_until_a_retry_succeeds(wired, db):
    chat = Chat(wired, "703", CHANNEL)
    chat.send("/dangky")

    def disk_full(session):
        raise OperationalError("COMMIT", {}, Exception("database or disk is full"))

    event.listen(db, "before_commit", disk_full)
    try:
        [reply] = chat.send("/xoadulieu")
    finally:
        event.remove(db, "before_commit", disk_full)
    assert "Chưa xóa được" in reply.text and "đăng ký nhận thông báo" in reply.text
    assert "Đã xóa" not in reply.text and "không lưu gì" not in reply.text
    assert subscribed(db, "703") is not None, "nothing was deleted, and the reply says so"

    [again] = chat.send("/xoadulieu")
    assert again.text.startswith("Đã xóa") and "đăng ký nhận thông báo" in again.text and "Chưa xóa" not in again.text
    assert subscribed(db, "703") is None


def test_a_chat_with_nothing_kept_is_told_so(wired):
    [reply] = Chat(wired, "704", CHANNEL).send("/xoadulieu")
    assert reply.text.startswith("Tôi không lưu gì") and "Chưa xóa" not in reply.text


def test_a_bot_without_a_database_forgets_the_chat_memory(router):
    chat = Chat(router, "705", CHANNEL)
    chat.send("khai sinh")
    [reply] = chat.send("/xoadulieu")
    assert reply.text.startswith("Đã xóa") and "câu hỏi gần nhất" in reply.text and "Chưa xóa" not in reply.text


# --------------------------------------------------------------------------- announcements' delivery rows

def test_the_chat_leaves_every_delivery_row_and_reports_keep_their_figures(wired, db):
    for chat_id in ("711", "712"):
        Chat(wired, chat_id, CHANNEL).send("/dangky")
    with db.begin() as session:
        done = BroadcastRow(text="Nghỉ lễ", created_by="test", state="done", recipients=2)
        sending = BroadcastRow(text="Lịch mới", created_by="test", state="sending", recipients=2)
        session.add_all([done, sending])
        session.flush()
        session.add_all([
            DeliveryRow(broadcast_id=done.id, channel=CHANNEL, chat_id="711", state="sent", attempts=1),
            DeliveryRow(broadcast_id=done.id, channel=CHANNEL, chat_id="712", state="failed", attempts=5, last_error="x"),
            DeliveryRow(broadcast_id=sending.id, channel=CHANNEL, chat_id="711", state="pending",
                        last_error="chat 711 timed out"),
            DeliveryRow(broadcast_id=sending.id, channel=CHANNEL, chat_id="712", state="pending"),
        ])
        done_id, sending_id = done.id, sending.id
    with db() as session:
        before = compose.counts(session, done_id)

    Chat(wired, "711", CHANNEL).send("/xoadulieu")

    with db() as session:
        assert compose.counts(session, done_id) == before, "the report of a sent announcement does not change"
        assert not session.scalars(select(DeliveryRow).where(DeliveryRow.chat_id == "711")).all()
        pending = session.scalars(select(DeliveryRow).where(DeliveryRow.broadcast_id == sending_id)).all()
    states = {row.chat_id: row.state for row in pending}
    assert states["712"] == "pending" and list(states.values()).count("cancelled") == 1, "nothing more goes to the chat"
    assert all(row.last_error is None for row in pending if row.chat_id != "712")


# --------------------------------------------------------------------------- group chats

def test_subscriptions_are_refused_in_a_group(wired, db):
    text = group_says(wired, "-100500", "/dangky")
    assert "từng người" in text and "nhắn riêng" in text
    assert subscribed(db, "-100500") is None
    with db.begin() as session:  # subscribed before groups were refused
        audience.subscribe(session, CHANNEL, "-100501")
    assert "nhắn riêng" in group_says(wired, "-100501", "/huydangky")
    assert "nhắn riêng" in group_says(wired, "-100501", button="sub:t:ho-tich")
    row = subscribed(db, "-100501")
    assert row.active and row.topics == [], "a member cannot change the group's subscription"
    [private] = Chat(wired, "713", CHANNEL).send("/dangky")
    assert private.text.startswith("Đã đăng ký!")


def test_xoadulieu_in_a_group_forgets_the_conversation_only(wired, db):
    with db.begin() as session:
        audience.subscribe(session, CHANNEL, "-100502")
    wired.handle(Incoming(CHANNEL, "-100502", "member-1", "khai sinh", group=True))
    assert remembered(wired, f"{CHANNEL}:-100502")
    text = group_says(wired, "-100502", "/xoadulieu")
    assert "nhắn riêng" in text and "/xoadulieu" in text
    assert not remembered(wired, f"{CHANNEL}:-100502")
    assert subscribed(db, "-100502") is not None, "one member cannot erase what the group set up"
