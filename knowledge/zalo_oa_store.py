"""What the Zalo Official Account channel keeps in the database (migration 0009), shared by every bot process:

* `zalo_oa_tokens`: the OA's newest OAuth pair, sealed with the app secret (a copied database gives away no
  token), and a `version` that makes a refresh a compare-and-set: only the process that moves the version on
  may write the new pair, so two processes never spend the one-time refresh token twice;
* `zalo_oa_users`: per citizen (the OA's user id), when they last wrote and how many messages the OA sent
  since (the platform's reply window), whether they follow the OA, and the buttons last offered to them
  (a tapped `oa.query.show` button comes back as the citizen's own text);
* `zalo_oa_events`: the events already handled, so an event delivered twice is handled once, across restarts.

No table has `channel`/`chat_id` columns: `forget_user` is the channel's /xoadulieu step (see the report).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import datetime, timedelta

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.models import Base, as_utc, utc_now

EVENTS_KEPT = timedelta(days=7)  # the platform retries for minutes; a week of ids is plenty and stays small


class ZaloOATokenRow(Base):
    """The OA's access and refresh token, sealed; `version` moves on with every refresh."""

    __tablename__ = "zalo_oa_tokens"

    oa_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # a hash of the app id and OA id
    access_token: Mapped[str] = mapped_column(Text)  # sealed (seal/unseal), never the token itself
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    refreshing_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a refresh in progress
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ZaloOAUserRow(Base):
    """One citizen of the OA: the reply window's bookkeeping and the buttons last offered."""

    __tablename__ = "zalo_oa_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_in_window: Mapped[int] = mapped_column(Integer, default=0)
    following: Mapped[bool | None] = mapped_column(Boolean)
    offered: Mapped[dict | None] = mapped_column(JSON)  # what the citizen may send back -> the button's data
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ZaloOAEventRow(Base):
    """An event already taken in (by its message id, or event name + user + timestamp)."""

    __tablename__ = "zalo_oa_events"

    event_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utc_now)


# --------------------------------------------------------------------------- sealing tokens at rest

def _keys(secret: str) -> tuple[bytes, bytes]:
    root = hashlib.sha256(b"motcua zalo_oa tokens\0" + secret.encode("utf-8")).digest()
    return hmac.new(root, b"encrypt", hashlib.sha256).digest(), hmac.new(root, b"mac", hashlib.sha256).digest()


def _stream(key: bytes, nonce: bytes, size: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range((size + 31) // 32))
    return b"".join(blocks)[:size]


def seal(value: str, secret: str) -> str:
    """`value` encrypted and authenticated with a key from `secret` (HMAC-SHA256 stream, encrypt-then-MAC)."""
    enc, mac = _keys(secret)
    nonce = os.urandom(16)
    data = value.encode("utf-8")
    body = bytes(a ^ b for a, b in zip(data, _stream(enc, nonce, len(data)), strict=True))
    tag = hmac.new(mac, nonce + body, hashlib.sha256).digest()[:16]
    return "v1:" + base64.urlsafe_b64encode(nonce + tag + body).decode("ascii")


def unseal(sealed: str, secret: str) -> str | None:
    """The value sealed with `secret`, or None (another secret, or tampered with)."""
    if not sealed.startswith("v1:"):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed[3:].encode("ascii"))
    except ValueError:
        return None
    nonce, tag, body = raw[:16], raw[16:32], raw[32:]
    enc, mac = _keys(secret)
    if len(nonce) < 16 or not hmac.compare_digest(tag, hmac.new(mac, nonce + body, hashlib.sha256).digest()[:16]):
        return None
    return bytes(a ^ b for a, b in zip(body, _stream(enc, nonce, len(body)), strict=True)).decode("utf-8", "replace")


# --------------------------------------------------------------------------- events

def first_time(session: Session, key: str, now: datetime | None = None) -> bool:
    """Record the event `key`; False when it was recorded before (by any process). Commits."""
    session.add(ZaloOAEventRow(event_key=key[:160], received_at=now or utc_now()))
    try:
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def prune_events(session: Session, now: datetime | None = None) -> int:
    result = session.execute(delete(ZaloOAEventRow).where(ZaloOAEventRow.received_at < (now or utc_now()) - EVENTS_KEPT))
    session.commit()
    return result.rowcount or 0


# --------------------------------------------------------------------------- the reply window

def user_row(session: Session, user_id: str) -> ZaloOAUserRow:
    """The citizen's row, created if new (another process creating it at the same moment is fine)."""
    row = session.get(ZaloOAUserRow, user_id)
    if row is None:
        session.add(ZaloOAUserRow(user_id=user_id, sent_in_window=0))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
        row = session.get(ZaloOAUserRow, user_id)
    return row


def user_wrote(session: Session, user_id: str, at: datetime, following: bool | None = None) -> None:
    """The citizen wrote (or followed): the window opens again with no message used."""
    user_row(session, user_id)
    values: dict = {"last_message_at": at, "sent_in_window": 0, "updated_at": utc_now()}
    if following is not None:
        values["following"] = following
    session.execute(update(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id).values(**values))
    session.commit()


def set_following(session: Session, user_id: str, following: bool) -> None:
    user_row(session, user_id)
    values: dict = {"following": following, "updated_at": utc_now()}
    if not following:  # an unfollow ends the conversation: nothing more may be sent as a reply
        values.update(last_message_at=None, offered=None)
    session.execute(update(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id).values(**values))
    session.commit()


def take_window_slot(session: Session, user_id: str, now: datetime, hours: float, limit: int) -> bool:
    """Use one message of the citizen's window, atomically (every process counts in the same row)."""
    statement = (update(ZaloOAUserRow)
                 .where(ZaloOAUserRow.user_id == user_id, ZaloOAUserRow.last_message_at.is_not(None),
                        ZaloOAUserRow.last_message_at > now - timedelta(hours=hours), ZaloOAUserRow.sent_in_window < limit)
                 .values(sent_in_window=ZaloOAUserRow.sent_in_window + 1))
    result = session.execute(statement, execution_options={"synchronize_session": False})
    session.commit()
    return bool(result.rowcount)


def give_back_slot(session: Session, user_id: str) -> None:
    """A message that did not go out does not count."""
    session.execute(update(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id, ZaloOAUserRow.sent_in_window > 0)
                    .values(sent_in_window=ZaloOAUserRow.sent_in_window - 1), execution_options={"synchronize_session": False})
    session.commit()


def close_window(session: Session, user_id: str) -> None:
    """The platform said the window is shut (it knows best): stop counting on it."""
    session.execute(update(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id).values(last_message_at=None),
                    execution_options={"synchronize_session": False})
    session.commit()


def window_open(session: Session, user_id: str, now: datetime, hours: float, limit: int) -> bool:
    row = session.get(ZaloOAUserRow, user_id)
    last = as_utc(row.last_message_at) if row else None
    return bool(row and last and last > now - timedelta(hours=hours) and row.sent_in_window < limit)


def save_offered(session: Session, user_id: str, offered: dict[str, str] | None) -> None:
    user_row(session, user_id)
    session.execute(update(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id).values(offered=offered or None),
                    execution_options={"synchronize_session": False})
    session.commit()


def offered_to(session: Session, user_id: str) -> dict[str, str]:
    value = session.scalar(select(ZaloOAUserRow.offered).where(ZaloOAUserRow.user_id == user_id))
    return dict(value) if isinstance(value, dict) else {}


def forget_user(session: Session, user_id: str) -> int:
    """/xoadulieu: the citizen's row goes (the window then counts as shut until they write again)."""
    result = session.execute(delete(ZaloOAUserRow).where(ZaloOAUserRow.user_id == user_id))
    session.commit()
    return result.rowcount or 0


def forget(session: Session, channel: str, chat_id: str) -> int:
    """The /xoadulieu step (handlers.core.ForgetStep): runs in the caller's transaction, commits nothing."""
    if channel != "zalo_oa":
        return 0
    return session.execute(delete(ZaloOAUserRow).where(ZaloOAUserRow.user_id == chat_id)).rowcount or 0
