"""Chat states in the database (table chat_states): the backend of handlers.state.ChatMemory.

One row per (channel, chat, feature); a write is an upsert, so two processes writing one chat's state at
once never fail on the key and the later write wins for that feature, leaving the chat's other features
alone. Expired rows are never read and are purged in batches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from knowledge.models import ChatStateRow


def split_key(chat_key: str) -> tuple[str, str]:
    """(channel, chat id) of a chat key "telegram:123" (channel names never hold ":")."""
    channel, _, chat_id = chat_key.partition(":")
    return channel, chat_id


class DatabaseBackend:
    """handlers.state.StateBackend on the bot's database."""

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db
        self._engine: Engine = db.kw["bind"]

    def read(self, chat_key: str, feature: str, now: datetime) -> dict | None:
        channel, chat_id = split_key(chat_key)
        # Read on a plain connection: a few of these per message, and an ORM session costs more than the query.
        with self._engine.connect() as connection:
            return connection.scalar(select(ChatStateRow.data).where(
                ChatStateRow.channel == channel, ChatStateRow.chat_id == chat_id, ChatStateRow.feature == feature,
                ChatStateRow.expires_at > now))

    def read_all(self, chat_key: str, now: datetime) -> dict[str, dict]:
        channel, chat_id = split_key(chat_key)
        with self._engine.connect() as connection:
            rows = connection.execute(select(ChatStateRow.feature, ChatStateRow.data).where(
                ChatStateRow.channel == channel, ChatStateRow.chat_id == chat_id, ChatStateRow.expires_at > now))
            return {feature: data for feature, data in rows}

    def write(self, chat_key: str, feature: str, data: dict, now: datetime, expires: datetime) -> None:
        channel, chat_id = split_key(chat_key)
        with self.db.begin() as session:
            postgresql = _no_flush_wait(session)
            insert = pg_insert if postgresql else sqlite_insert
            statement = insert(ChatStateRow).values(channel=channel, chat_id=chat_id, feature=feature, data=data,
                                                    updated_at=now, expires_at=expires)
            session.execute(statement.on_conflict_do_update(
                index_elements=["channel", "chat_id", "feature"],
                set_={"data": statement.excluded.data, "updated_at": now, "expires_at": expires}))

    def delete(self, chat_key: str, feature: str) -> None:
        channel, chat_id = split_key(chat_key)
        with self.db.begin() as session:
            _no_flush_wait(session)
            session.execute(delete(ChatStateRow).where(
                ChatStateRow.channel == channel, ChatStateRow.chat_id == chat_id, ChatStateRow.feature == feature))

    def delete_chat(self, chat_key: str) -> int:
        channel, chat_id = split_key(chat_key)
        with self.db.begin() as session:
            return forget_chat(session, channel, chat_id)

    def purge(self, now: datetime) -> int:
        with self.db.begin() as session:
            return session.execute(delete(ChatStateRow).where(ChatStateRow.expires_at <= now)).rowcount or 0


def _no_flush_wait(session: Session) -> bool:
    """On PostgreSQL, commit this transaction without waiting for the disk (whether it is PostgreSQL).

    A chat's memory is written on nearly every message; waiting for the log flush made each reply ~7 ms
    slower. A crash may lose the last fraction of a second of it (the chat then starts that turn afresh),
    never corrupt it. Deletions by /xoadulieu wait as usual.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    return True


def forget_chat(session: Session, channel: str, chat_id: str) -> int:
    """Delete every state row of the chat in the session's transaction; how many."""
    return session.execute(delete(ChatStateRow).where(
        ChatStateRow.channel == channel, ChatStateRow.chat_id == chat_id)).rowcount or 0
