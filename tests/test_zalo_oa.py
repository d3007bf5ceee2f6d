"""The Zalo Official Account channel end to end: a fake OA platform on 127.0.0.1 (tests/fake_zalo_oa.py) signs
webhook events and posts them to the channel's own webhook server, checks access tokens (-216 when expired,
one-time refresh tokens) and records what the citizen received; the database is SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_settings
from fake_zalo_oa import FakeZaloOA, sign
from sqlalchemy import func, select

from channels.outbound import Outcome
from channels.zalo_oa import MAX_BUTTONS, SIGNATURE_HEADER, ZaloOA, ZaloOAChannel, ZaloOASender, oa_key, render, signature
from handlers import build_router
from handlers.messages import Button, Reply
from knowledge import zalo_oa_store as store
from reminders.dispatch import dispatch
from reminders.models import DossierRow, FollowRow, ReminderRow

USER = "4572281739"
TEMPLATES = {"zalo_oa_template_received": "tpl-received", "zalo_oa_template_result_ready": "tpl-result"}


def oa_settings(database_url: str, fake: FakeZaloOA, **overrides):
    values = {"zalo_oa_app_id": fake.app_id, "zalo_oa_app_secret": fake.app_secret, "zalo_oa_secret_key": fake.oa_secret_key,
                  "zalo_oa_id": "oa-1", "zalo_oa_access_token": "access-0", "zalo_oa_refresh_token": "refresh-0",
                  "zalo_oa_api_base_url": fake.base_url, "zalo_oa_oauth_base_url": fake.base_url, "zalo_oa_zns_base_url": fake.base_url,
                  "office_phone": "0236 3822 111", "quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def fake():
    server = await FakeZaloOA().start()
    yield server
    await server.stop()


@pytest.fixture
async def oa(catalog, db, database_url, fake):
    """The channel serving its webhook on a free port, and the URL the platform posts to."""
    settings = oa_settings(database_url, fake)
    channel = ZaloOAChannel(build_router(catalog, settings), settings, db=db, backoff_base=0.01, backoff_max=0.05)
    await channel.start("127.0.0.1", 0)
    channel.url = f"http://127.0.0.1:{channel.port}{settings.zalo_oa_webhook_path}"
    yield channel
    await channel.stop()


async def say(oa, fake: FakeZaloOA, text: str, user: str = USER, expect: int = 1) -> list[dict]:
    """The citizen writes; the messages the OA sent back."""
    before = len(fake.messages[user])
    assert await fake.deliver(oa.url, fake.event("user_send_text", user, text)) == 200
    return (await fake.wait_messages(user, before + expect))[before:]


def buttons_of(message: dict) -> list[dict]:
    return (message.get("attachment") or {}).get("payload", {}).get("buttons", [])


def events_stored(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(store.ZaloOAEventRow))


# --------------------------------------------------------------------------- conversations

async def test_zalo_oa_question_answered_with_buttons_and_a_button_press(oa, fake, db):
    [question] = await say(oa, fake, "khai sinh")
    choices = [b for b in buttons_of(question) if b["type"] == "oa.query.show"]
    assert len(choices) >= 2, question
    assert all(b["payload"] == b["title"] for b in choices), "oa.query.show sends the choice's text back as the citizen's"
    # The platform sends a tapped oa.query.show button back as the citizen's text message.
    messages = await say(oa, fake, choices[0]["payload"], expect=2)
    answer, more = messages[0], messages[-1]
    assert "khai sinh" in answer["text"].lower() and "Lệ phí" in {b["title"] for b in buttons_of(answer)}
    assert len(buttons_of(answer)) <= MAX_BUTTONS and len(buttons_of(more)) <= MAX_BUTTONS
    # An aspect button of the answer opens that aspect of the same entry.
    [fee] = await say(oa, fake, "Lệ phí")
    assert "lệ phí" in fee["text"].lower() or "miễn" in fee["text"].lower(), fee["text"][:200]


async def test_zalo_oa_follow_is_welcomed(oa, fake, db):
    assert await fake.deliver(oa.url, fake.event("follow", "follower-1")) == 200
    [welcome] = await fake.wait_messages("follower-1", 1)
    assert welcome["text"].startswith("Xin chào")
    with db() as session:
        row = session.get(store.ZaloOAUserRow, "follower-1")
        assert row.following is True and row.last_message_at is not None, "a follow opens the reply window"


async def test_zalo_oa_contact_reply_has_a_call_button(oa, fake):
    [contact] = await say(oa, fake, "/lienhe")
    phones = [b for b in buttons_of(contact) if b["type"] == "oa.open.phone"]
    assert phones and phones[0]["payload"] == {"phone_code": "02363822111"}


# --------------------------------------------------------------------------- webhook security

async def test_zalo_oa_forged_unsigned_or_stale_webhooks_are_refused(oa, fake, db):
    event = fake.event("user_send_text", "victim", "khai sinh")
    assert await fake.deliver(oa.url, event, unsigned=True) == 401
    assert await fake.deliver(oa.url, event, signature="mac=" + "0" * 64) == 401
    raw, headers = fake.signed(event)
    assert await fake.deliver(oa.url, event, body=raw.replace(b"khai sinh", b"ho tich"), signature=headers[SIGNATURE_HEADER]) == 401
    old = fake.event("user_send_text", "victim", "khai sinh", timestamp=int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000))
    assert await fake.deliver(oa.url, old) == 401, "a signed event an hour old is a replay"
    await oa.idle()
    assert not fake.messages["victim"] and events_stored(db) == 0, "a refused request changes nothing"
    with db() as session:
        assert session.get(store.ZaloOAUserRow, "victim") is None


async def test_zalo_oa_same_event_twice_is_handled_once(oa, fake, db):
    event = fake.event("user_send_text", "twice", "/start")
    assert await fake.deliver(oa.url, event) == 200
    assert await fake.deliver(oa.url, event) == 200, "a redelivery is acknowledged"
    await fake.wait_messages("twice", 1)
    await oa.idle()
    assert len(fake.messages["twice"]) == 1 and events_stored(db) == 1


def test_zalo_oa_signature_is_the_platforms_formula():
    body = b'{"event_name":"user_send_text"}'
    assert signature("app", body, "1700000000000", "key") == sign("app", body, "1700000000000", "key")
    assert signature("app", body, "1700000000000", "key").startswith("mac=")


# --------------------------------------------------------------------------- tokens

async def test_zalo_oa_token_expiring_mid_conversation_is_refreshed_once(oa, fake, db):
    await say(oa, fake, "/start")
    fake.expire()
    for user in ("a1", "a2", "a3"):  # three citizens at once on the expired token
        assert await fake.deliver(oa.url, fake.event("user_send_text", user, "/start")) == 200
    for user in ("a1", "a2", "a3"):
        await fake.wait_messages(user, 1)
    assert fake.refreshes == 1, "one refresh for every request that met the expired token"
    with db() as session:
        row = session.get(store.ZaloOATokenRow, oa_key(oa.settings))
        assert row.version == 2 and row.expires_at is not None
        assert "access-1" not in row.access_token and "refresh-1" not in row.refresh_token, "tokens are sealed at rest"
        assert store.unseal(row.access_token, fake.app_secret) == "access-1"


async def test_zalo_oa_refreshed_pair_survives_a_restart(db, database_url, fake):
    settings = oa_settings(database_url, fake)
    first = ZaloOA(settings, db)
    await first.tokens.refresh((await first.tokens.token()).version)
    await first.aclose()
    again = ZaloOA(settings, db)  # a new process: the settings still hold the spent pair
    assert (await again.tokens.token()).access == "access-1"
    await again.send_cs(USER, {"text": "xin chào"})
    await again.aclose()
    assert fake.refreshes == 1 and fake.token_errors == 0


async def test_zalo_oa_two_processes_never_refresh_at_once(db, database_url, fake):
    settings = oa_settings(database_url, fake)
    processes = [ZaloOA(settings, db) for _ in range(3)]  # keepers that share nothing but the database
    seen = (await processes[0].tokens.token()).version
    tokens = await asyncio.gather(*(p.tokens.refresh(seen) for p in processes))
    assert fake.refreshes == 1, "the one-time refresh token is spent once"
    assert {t.access for t in tokens} == {"access-1"}
    for process in processes:
        await process.aclose()


async def test_zalo_oa_token_refreshed_before_expiry(db, database_url, fake):
    settings = oa_settings(database_url, fake)
    oa = ZaloOA(settings, db)
    await oa.tokens.refresh((await oa.tokens.token()).version)
    later = datetime.now(UTC) + timedelta(seconds=fake.token_lifetime - 60)  # a minute before it expires
    oa.tokens.clock = lambda: later
    await oa.send_cs(USER, {"text": "xin chào"})
    await oa.aclose()
    assert fake.refreshes == 2 and fake.token_errors == 0, "refreshed ahead, never sent with an expiring token"


# --------------------------------------------------------------------------- reminders

REMINDER_AT = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 office time


def plan_reminder(db, user: str, kind: str, text: str = "Hồ sơ 000.00.12.H12-260301-0001 đã có kết quả.") -> int:
    with db() as session:
        session.add(DossierRow(code="000.00.12.H12-260301-0001", procedure="Đăng ký khai sinh", status="result_ready",
                               received_at=datetime(2026, 3, 1, 2, 0, tzinfo=UTC), due_at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC),
                               status_since=datetime(2026, 3, 2, 1, 0, tzinfo=UTC), source="test"))
        session.flush()
        follow = FollowRow(channel="zalo_oa", chat_id=user, dossier_code="000.00.12.H12-260301-0001")
        session.add(follow)
        session.flush()
        reminder = ReminderRow(follow_id=follow.id, channel="zalo_oa", chat_id=user, dossier_code="000.00.12.H12-260301-0001",
                               kind=kind, key=f"{kind}:1", text=text, due_at=REMINDER_AT - timedelta(minutes=1), state="planned")
        session.add(reminder)
        session.commit()
        return reminder.id


def reminder(db, reminder_id: int) -> ReminderRow:
    with db() as session:
        return session.get(ReminderRow, reminder_id)


async def send_due(db, settings) -> None:
    sender = ZaloOASender(settings, db)
    try:
        await dispatch(db, {"zalo_oa": sender}, settings, REMINDER_AT)
    finally:
        await sender.aclose()


async def test_zalo_oa_reminder_inside_the_window_goes_as_a_consultation_message(db, database_url, fake):
    settings = oa_settings(database_url, fake, **TEMPLATES)
    with db() as session:
        store.user_wrote(session, USER, datetime.now(UTC) - timedelta(hours=47))
    rid = plan_reminder(db, USER, "result_ready")
    await send_due(db, settings)
    assert reminder(db, rid).state == "sent"
    assert fake.texts(USER) == ["Hồ sơ 000.00.12.H12-260301-0001 đã có kết quả."] and not fake.templates


async def test_zalo_oa_reminder_outside_the_window_goes_as_its_template(db, database_url, fake):
    settings = oa_settings(database_url, fake, office_name="UBND phường Hải Châu", **TEMPLATES)
    fake.approved_templates.add("tpl-result")
    with db() as session:
        store.user_wrote(session, USER, datetime.now(UTC) - timedelta(hours=49))
    rid = plan_reminder(db, USER, "result_ready")
    await send_due(db, settings)
    assert reminder(db, rid).state == "sent" and not fake.messages[USER]
    [template] = fake.templates
    assert template["recipient"] == {"user_id": USER} and template["template_id"] == "tpl-result"
    assert template["template_data"] == {"ma_ho_so": "000.00.12.H12-260301-0001", "thu_tuc": "Đăng ký khai sinh",
                                         "ngay": "02/03/2026", "co_quan": "UBND phường Hải Châu"}


async def test_zalo_oa_window_of_eight_messages_is_counted(db, database_url, fake):
    settings = oa_settings(database_url, fake, **TEMPLATES)
    fake.approved_templates.add("tpl-result")
    with db() as session:
        store.user_wrote(session, USER, datetime.now(UTC))
        for _ in range(8):
            assert store.take_window_slot(session, USER, datetime.now(UTC), 48, 8)
    rid = plan_reminder(db, USER, "result_ready")
    await send_due(db, settings)
    assert reminder(db, rid).state == "sent" and len(fake.templates) == 1, "the ninth message goes as a template"


async def test_zalo_oa_reminder_without_a_template_is_recorded_undeliverable(db, database_url, fake):
    settings = oa_settings(database_url, fake)  # no template configured
    rid = plan_reminder(db, "never-wrote", "late")
    await send_due(db, settings)
    row = reminder(db, rid)
    assert row.state == "undeliverable"
    assert "ngoài khung trả lời" in row.reason and "ZALO_OA_TEMPLATE_LATE" in row.reason
    assert not fake.templates and not fake.messages["never-wrote"]


@pytest.mark.parametrize(("code", "state", "words"), [
    (-131, "undeliverable", "chưa được phê duyệt"),
    (-144, "planned", "thử lại sau 3600 giây"),  # the day's quota: tried again later
    (-141, "undeliverable", "từ chối nhận tin mẫu"),
])
async def test_zalo_oa_template_errors_end_in_a_recorded_outcome(db, database_url, fake, code, state, words):
    settings = oa_settings(database_url, fake, **TEMPLATES)
    fake.template_errors["tpl-result"] = code
    rid = plan_reminder(db, "outside", "result_ready")
    await send_due(db, settings)
    row = reminder(db, rid)
    assert row.state == state and words in row.reason, row.reason


async def test_zalo_oa_announcement_goes_only_inside_the_window(db, database_url, fake):
    settings = oa_settings(database_url, fake)
    sender = ZaloOASender(settings, db)
    with db() as session:
        store.user_wrote(session, "inside", datetime.now(UTC))
    inside = await sender.send("inside", "Thông báo: tuần này mở cửa thứ Bảy.",
                               [[Button("Chi tiết", url="https://example.gov.vn/tb")]])
    outside = await sender.send("outside", "Thông báo: tuần này mở cửa thứ Bảy.")
    await sender.aclose()
    assert inside.outcome is Outcome.SENT and buttons_of(fake.messages["inside"][0])[0]["type"] == "oa.open.url"
    assert outside.outcome is Outcome.REJECTED and "ngoài khung" in outside.detail


# --------------------------------------------------------------------------- rendering

def test_zalo_oa_too_many_choices_become_numbered_lines():
    settings = make_settings()
    many = Reply("Chọn một thủ tục:", [[Button(f"Thủ tục {i}", f"a:{i}")] for i in range(1, 13)])
    rendered = render(many, settings)
    assert "12. Thủ tục 12" in rendered.messages[0]["text"] and not buttons_of(rendered.messages[0])
    assert rendered.offered["12"] == "a:12"
    long = Reply("x " * 3000, [[Button("Lệ phí", "a:1:fee")]])
    parts = render(long, settings).messages
    assert len(parts) >= 3 and all(len(p["text"]) <= 2000 for p in parts) and buttons_of(parts[-1])


async def test_zalo_oa_start_needs_its_settings_and_serves_the_webhook(catalog, db, database_url, fake):
    from channels.runner import ChannelError
    from channels.zalo_oa import start_zalo_oa

    with pytest.raises(ChannelError, match="ZALO_OA_SECRET_KEY"):
        await start_zalo_oa(build_router(catalog, make_settings(database_url)), oa_settings(database_url, fake, zalo_oa_secret_key=None))
    settings = oa_settings(database_url, fake)
    router = build_router(catalog, settings)
    router.context.db = db
    stop = await start_zalo_oa(router, settings, listen="127.0.0.1", port=0)
    await stop()


def test_zalo_oa_forget_step_deletes_only_that_citizen(db):
    with db() as session:
        for user in ("gone", "stays"):
            store.user_wrote(session, user, datetime.now(UTC))
    with db.begin() as session:
        assert store.forget(session, "zalo_oa", "gone") == 1
        assert store.forget(session, "telegram", "stays") == 0
    with db() as session:
        assert session.get(store.ZaloOAUserRow, "gone") is None and session.get(store.ZaloOAUserRow, "stays") is not None
