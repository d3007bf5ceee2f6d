"""Who gets an announcement: everyone subscribed, or those of some areas, or of some topics.

Areas are the communes/wards the office serves (setting OFFICE_AREAS), known by a key folded from the
name ("Phường Bến Nghé" -> "phuong-ben-nghe") so that a typed "area:phuong ben nghe" finds it. Topics are
the knowledge base's groups. A subscriber who did not narrow an area (or a topic) gets the announcements
of every area (topic); an announcement to everyone reaches every subscriber, whatever they narrowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import String, cast, delete, literal, select, update
from sqlalchemy.orm import Session

from broadcasts.models import DeliveryRow, DeliveryState, SubscriptionRow, utcnow
from config import Settings
from knowledge.groups import GROUP_LABELS, group_label
from knowledge.models import EntryRow
from nlp.normalize import fold


class AudienceError(ValueError):
    """An audience that cannot be understood; the message is for staff, in Vietnamese."""


def area_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")


def office_areas(settings: Settings) -> dict[str, str]:
    """The office's areas, key -> name as written in the settings, in that order."""
    names = [part.strip() for part in re.split(r"[,;\n]", settings.office_areas or "") if part.strip()]
    return {area_key(name): name for name in names}


def known_topics(session: Session | None = None) -> dict[str, str]:
    """Topic slug -> label: the groups citizens browse, plus any group the database's entries use."""
    topics = dict(GROUP_LABELS)
    if session is not None:
        for slug in session.scalars(select(EntryRow.group).distinct()):
            topics.setdefault(slug, group_label(slug))
    return topics


@dataclass(frozen=True)
class Audience:
    kind: str  # all | area | topic
    keys: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{','.join(self.keys)}"

    def matches(self, subscription: SubscriptionRow) -> bool:
        if not subscription.active:
            return False
        if self.kind == "all":
            return True
        chosen = subscription.areas if self.kind == "area" else subscription.topics
        return not chosen or any(key in chosen for key in self.keys)

    def describe(self, settings: Settings) -> str:
        if self.kind == "all":
            return "tất cả người đăng ký"
        if self.kind == "area":
            names = office_areas(settings)
            return "người đăng ký ở " + ", ".join(names.get(k, k) for k in self.keys)
        return "người đăng ký chủ đề " + ", ".join(group_label(k) for k in self.keys)


def parse_audience(spec: str, settings: Settings, session: Session | None = None) -> Audience:
    """"all", "area:X[,Y]" or "topic:Y[,Z]" (names or keys, with or without diacritics)."""
    text = (spec or "all").strip()
    if fold(text) in ("all", "tat ca", "*"):
        return Audience("all")
    kind, sep, rest = text.partition(":")
    kind = fold(kind.strip())
    if not sep or kind not in ("area", "topic", "khu vuc", "chu de"):
        raise AudienceError(f"Không hiểu đối tượng \"{spec}\": dùng all, area:<xã/phường> hoặc topic:<chủ đề>.")
    kind = "area" if kind in ("area", "khu vuc") else "topic"
    wanted = [part.strip() for part in rest.split(",") if part.strip()]
    if not wanted:
        raise AudienceError(f"Chưa ghi {'xã/phường' if kind == 'area' else 'chủ đề'} sau \"{kind}:\".")
    choices = office_areas(settings) if kind == "area" else known_topics(session)
    if kind == "area" and not choices:
        raise AudienceError("Chưa cấu hình danh sách xã/phường (OFFICE_AREAS), nên chưa gửi theo khu vực được.")
    keys = []
    for item in wanted:
        key = area_key(item)
        found = key if key in choices else next((k for k, name in choices.items() if area_key(name) == key), None)
        if found is None:
            shown = ", ".join(choices)
            raise AudienceError(f"Không có {'xã/phường' if kind == 'area' else 'chủ đề'} \"{item}\". Có: {shown}.")
        keys.append(found)
    return Audience(kind, tuple(dict.fromkeys(keys)))


def recipients(session: Session, audience: Audience) -> list[SubscriptionRow]:
    rows = session.scalars(select(SubscriptionRow).where(SubscriptionRow.unsubscribed_at.is_(None))
                           .order_by(SubscriptionRow.id))
    return [row for row in rows if audience.matches(row)]


# --------------------------------------------------------------------------- subscribing

def subscription(session: Session, channel: str, chat_id: str) -> SubscriptionRow | None:
    return session.scalar(select(SubscriptionRow).where(SubscriptionRow.channel == channel,
                                                        SubscriptionRow.chat_id == chat_id))


def subscribe(session: Session, channel: str, chat_id: str) -> tuple[SubscriptionRow, bool]:
    """Subscribe a chat to everything (again); returns the row and whether it was already active."""
    row = subscription(session, channel, chat_id)
    if row is None:
        row = SubscriptionRow(channel=channel, chat_id=chat_id, areas=[], topics=[], created_at=utcnow())
        session.add(row)
        session.flush()
        return row, False
    was_active = row.active
    if not was_active:
        row.unsubscribed_at, row.unsubscribe_reason = None, None
        row.areas, row.topics = [], []
    return row, was_active


def unsubscribe(session: Session, channel: str, chat_id: str, reason: str = "user") -> bool:
    row = subscription(session, channel, chat_id)
    if row is None or not row.active:
        return False
    row.unsubscribed_at, row.unsubscribe_reason = utcnow(), reason
    return True


FORGOTTEN_PREFIX = "forgotten:"  # a delivery's chat id after /xoadulieu: "forgotten:<delivery id>"


def forget(session: Session, channel: str, chat_id: str) -> int:
    """/xoadulieu: the subscription goes entirely (not only switched off), and the chat disappears from
    every announcement's delivery rows; returns the rows changed.

    The delivery rows stay, with the chat id replaced by a value naming no one, because an announcement's
    report (sent, blocked, failed) is counted from them: deleting them would change what staff were told.
    Messages not yet sent to the chat are cancelled; the error texts, which may quote the chat, are cleared.
    """
    gone = session.execute(delete(SubscriptionRow).where(SubscriptionRow.channel == channel,
                                                         SubscriptionRow.chat_id == chat_id)).rowcount or 0
    mine = (DeliveryRow.channel == channel) & (DeliveryRow.chat_id == chat_id)
    unsent = [DeliveryState.PENDING.value, DeliveryState.IN_FLIGHT.value]
    session.execute(update(DeliveryRow).where(mine, DeliveryRow.state.in_(unsent))
                    .values(state=DeliveryState.CANCELLED.value, claimed_at=None, next_attempt_at=None),
                    execution_options={"synchronize_session": False})
    masked = session.execute(update(DeliveryRow).where(mine)
                             .values(chat_id=literal(FORGOTTEN_PREFIX, String) + cast(DeliveryRow.id, String), last_error=None),
                             execution_options={"synchronize_session": False}).rowcount or 0
    return gone + masked
