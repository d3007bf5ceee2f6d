"""The office's staff: who may edit the knowledge base or broadcast, by platform user id."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import StaffActionRow, StaffRow, utc_now


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    BROADCASTER = "broadcaster"


# What each role may do; admin may do everything.
CAN_EDIT = frozenset({Role.ADMIN, Role.EDITOR})
CAN_BROADCAST = frozenset({Role.ADMIN, Role.BROADCASTER})
CAN_FOLLOW_DOSSIERS = frozenset({Role.ADMIN, Role.EDITOR})
CAN_MANAGE_STAFF = frozenset({Role.ADMIN})
ALL_STAFF = frozenset(Role)

# How the console names each role to staff.
ROLE_NAMES = {Role.ADMIN: "Quản trị", Role.EDITOR: "Biên tập", Role.BROADCASTER: "Gửi thông báo"}


def parse_member(text: str) -> tuple[str, str]:
    """"telegram:12345" -> ("telegram", "12345"); raises ValueError with a plain reason."""
    platform, sep, user_id = text.strip().partition(":")
    if not sep or not platform or not user_id or " " in text.strip():
        raise ValueError(f"\"{text}\" không đúng dạng <nền tảng>:<mã người dùng>, vd telegram:123456789")
    return platform.lower(), user_id


def add(session: Session, platform: str, user_id: str, role: Role) -> StaffRow:
    row = session.get(StaffRow, (platform, user_id))
    if row is None:
        row = StaffRow(platform=platform, user_id=user_id, role=role.value)
        session.add(row)
    else:
        row.role = role.value
    return row


def remove(session: Session, platform: str, user_id: str) -> bool:
    row = session.get(StaffRow, (platform, user_id))
    if row is None:
        return False
    session.delete(row)
    return True


def list_staff(session: Session) -> list[StaffRow]:
    return list(session.scalars(select(StaffRow).order_by(StaffRow.platform, StaffRow.user_id)))


def role_of(session: Session, platform: str, user_id: str) -> Role | None:
    row = session.get(StaffRow, (platform, user_id))
    return Role(row.role) if row else None


def record_action(session: Session, actor: str, action: str, detail: str = "") -> StaffActionRow:
    """Note who changed what (in the caller's transaction, so the record and the change land together)."""
    row = StaffActionRow(at=utc_now(), actor=actor, action=action, detail=detail[:2000])
    session.add(row)
    return row


def recent_actions(session: Session, limit: int = 50) -> list[StaffActionRow]:
    return list(session.scalars(select(StaffActionRow).order_by(StaffActionRow.id.desc()).limit(limit)))
