"""Tables of subscriptions, announcements and their deliveries (schema changes go through migration 0004).

One delivery row per recipient is the whole durability story: a message is marked in flight before it
goes out and sent after, so a crash can only repeat the messages that were in flight, never skip one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.models import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands stored times back without their zone; they were written in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class State(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waits for scheduled_at; recipients are chosen when it fires
    SENDING = "sending"  # recipients chosen (delivery rows exist); a dispatcher works through them
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"  # claimed by a dispatcher: may have reached the user even if not yet marked sent
    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot or the chat is gone: unsubscribed
    FAILED = "failed"  # refused by the platform, or transient errors on every allowed attempt
    CANCELLED = "cancelled"  # the broadcast was cancelled before this one went out


class SubscriptionRow(Base):
    """A chat that asked for announcements; empty `areas`/`topics` mean every area/topic."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("channel", "chat_id", name="uq_subscriptions_chat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)  # area keys (see broadcasts.audience)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # knowledge-base group slugs
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribe_reason: Mapped[str | None] = mapped_column(String(32))  # user | blocked

    @property
    def active(self) -> bool:
        return self.unsubscribed_at is None


class BroadcastRow(Base):
    """One announcement: what, to whom, when, and how its delivery went."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    link_label: Mapped[str | None] = mapped_column(String(64))
    link_url: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(512), default="all")  # all | area:a,b | topic:x,y
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default=State.DRAFT.value, index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(String(128))
    # Counts as of the last dispatcher checkpoint; the delivery rows are the truth.
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # Which process is sending it, until when: a second process keeps off while the lease is alive.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)  # why it ended unusually (nobody matched when it fired...)


class DeliveryRow(Base):
    """One announcement to one chat."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "channel", "chat_id", name="uq_deliveries_recipient"),
        Index("ix_deliveries_broadcast_state", "broadcast_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
