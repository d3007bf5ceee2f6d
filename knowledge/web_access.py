"""Who may use the web console: one-time sign-in links sent to a staff member's chat, browser sessions and
optional passwords. Only hashes of links, session tokens and passwords are stored.

Plain functions on a database session; the web layer (web.security) turns them into cookies and redirects.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from knowledge.models import SignInLinkRow, StaffActionRow, StaffRow, WebSessionRow, as_utc, utc_now
from knowledge.staff import Role, record_action

LINK_MINUTES = 10  # the issue's "a link valid 10 minutes, once"
MIN_PASSWORD_LENGTH = 10
# Wrong passwords for one account: this many within the window, and that account's password sign-in waits out
# the window (the one-time link from the chat still works, so a guesser cannot lock a member out of the office).
MAX_WRONG_PASSWORDS = 5
WRONG_PASSWORD_WINDOW = timedelta(minutes=15)
WRONG_PASSWORD_ACTION = "web.signin_failed"

_hasher = PasswordHasher()


@dataclass(frozen=True)
class StaffIdentity:
    platform: str
    user_id: str
    role: Role

    @property
    def actor(self) -> str:
        """The name written into revisions and staff actions, as chat staff are named."""
        return f"{self.platform}:{self.user_id}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _identity(session: Session, platform: str, user_id: str) -> StaffIdentity | None:
    row = session.get(StaffRow, (platform, user_id))
    return StaffIdentity(platform, user_id, Role(row.role)) if row is not None else None


def issue_link(session: Session, platform: str, user_id: str, minutes: float = LINK_MINUTES,
               now: datetime | None = None) -> str:
    """A new one-time token for a staff member (the caller checks they are staff and sends it to their chat)."""
    now = now or utc_now()
    token = secrets.token_urlsafe(32)
    # Expired links are of no use to anyone: tidy them away while here.
    session.execute(delete(SignInLinkRow).where(SignInLinkRow.expires_at < now - timedelta(days=1)))
    session.add(SignInLinkRow(token_hash=_digest(token), platform=platform, user_id=user_id,
                              expires_at=now + timedelta(minutes=minutes)))
    return token


def link_is_usable(session: Session, token: str, now: datetime | None = None) -> bool:
    row = session.get(SignInLinkRow, _digest(token))
    return row is not None and row.used_at is None and as_utc(row.expires_at) > (now or utc_now())


def redeem_link(session: Session, token: str, now: datetime | None = None) -> StaffIdentity | None:
    """The staff member a valid, unused, unexpired link belongs to, marking it used; None otherwise.

    One conditional UPDATE: two browsers opening the same link at once cannot both get in.
    """
    now = now or utc_now()
    digest = _digest(token)
    taken = session.execute(
        update(SignInLinkRow)
        .where(SignInLinkRow.token_hash == digest, SignInLinkRow.used_at.is_(None), SignInLinkRow.expires_at > now)
        .values(used_at=now)
    ).rowcount
    if taken != 1:
        return None
    row = session.get(SignInLinkRow, digest)
    return _identity(session, row.platform, row.user_id)  # None if removed from staff since the link was sent


def open_session(session: Session, identity: StaffIdentity, hours: float, now: datetime | None = None) -> str:
    """A new browser session; returns the token for the cookie."""
    now = now or utc_now()
    token = secrets.token_urlsafe(32)
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))
    session.add(WebSessionRow(token_hash=_digest(token), platform=identity.platform, user_id=identity.user_id,
                              created_at=now, expires_at=now + timedelta(hours=hours)))
    return token


def session_staff(session: Session, token: str, now: datetime | None = None) -> StaffIdentity | None:
    """Who holds this session token, with their role as of now (a removed member's sessions stop working)."""
    row = session.get(WebSessionRow, _digest(token))
    if row is None or as_utc(row.expires_at) <= (now or utc_now()):
        return None
    return _identity(session, row.platform, row.user_id)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _digest(token)))


def close_sessions_of(session: Session, platform: str, user_id: str) -> int:
    """Sign a member out everywhere (removed from staff, or a password changed)."""
    return session.execute(
        delete(WebSessionRow).where(WebSessionRow.platform == platform, WebSessionRow.user_id == user_id)).rowcount


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from its secret token, so nothing more is stored."""
    return hashlib.sha256(f"csrf:{session_token}".encode()).hexdigest()


def set_password(session: Session, platform: str, user_id: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Mật khẩu cần ít nhất {MIN_PASSWORD_LENGTH} ký tự.")
    row = session.get(StaffRow, (platform, user_id))
    if row is None:
        raise ValueError("Không có cán bộ này.")
    row.password_hash = _hasher.hash(password)


def password_locked(session: Session, platform: str, user_id: str, now: datetime | None = None) -> bool:
    """Too many wrong passwords for this account lately (kept in the staff actions: every process counts them)."""
    since = (now or utc_now()) - WRONG_PASSWORD_WINDOW
    wrong = session.scalar(select(func.count()).select_from(StaffActionRow).where(
        StaffActionRow.actor == f"{platform}:{user_id}", StaffActionRow.action == WRONG_PASSWORD_ACTION,
        StaffActionRow.at >= since))
    return (wrong or 0) >= MAX_WRONG_PASSWORDS


def check_password(session: Session, platform: str, user_id: str, password: str) -> StaffIdentity | None:
    row = session.get(StaffRow, (platform, user_id))
    if row is None or not row.password_hash:
        _hasher.hash(password)  # the same work either way: timing tells no one which accounts exist
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        record_action(session, f"{platform}:{user_id}", WRONG_PASSWORD_ACTION)
        return None
    return StaffIdentity(platform, user_id, Role(row.role))


def staff_members(session: Session) -> list[StaffRow]:
    return list(session.scalars(select(StaffRow).order_by(StaffRow.platform, StaffRow.user_id)))
