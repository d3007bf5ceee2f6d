"""The officers' inbox (/hopthu) with a real session: new conversations listed, claim (once), reply (delivered by
the bot's service), the citizen's earlier questions and verified dossiers, close, figures; refused without a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers.messages import Incoming
from handoff.service import HandoffService
from knowledge import handoff_store as store
from knowledge.staff import Role
from reminders.models import FollowRow, VerificationRow
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates
from tests.test_handoff import ALWAYS, Recorder
from tests.web_support import anonymous, signed_in, web_app

CODE = "000.00.12.H12-240506-0009"


@pytest.fixture
def bot(database_url):
    with web_app(database_url, handoff_hours=ALWAYS) as app:
        yield app


def say(bot, text: str, chat: str = "c1"):
    return bot.router.handle(Incoming("console", chat, chat, text))


def open_id(bot, chat: str = "c1") -> int:
    with bot.db() as session:
        return store.open_handoff(session, "console", chat).id


async def test_an_officer_sees_the_request_claims_it_replies_and_closes(bot):
    officer = signed_in(bot, Role.BROADCASTER, user_id="501")
    assert 'id="hopthu-no-waiting"' in officer.get("/hopthu").text
    say(bot, "lệ phí làm căn cước bao nhiêu")
    say(bot, "gặp cán bộ")
    handoff_id = open_id(bot)
    listed = officer.get("/hopthu/danhsach", headers={"HX-Request": "true"})
    assert f'id="hopthu-row-{handoff_id}"' in listed.text and "<html" not in listed.text, "the polled list, as a fragment"
    page = officer.get(f"/hopthu/{handoff_id}")
    assert 'id="hopthu-history"' in page.text and "lệ phí làm căn cước bao nhiêu" in page.text, "the earlier question"
    assert 'hx-trigger="every 3s"' in page.text

    claimed = officer.post(f"/hopthu/{handoff_id}/nhan")
    assert claimed.status_code == 303
    assert say(bot, "Tôi muốn hỏi thêm về giấy tờ") == []
    talk = officer.get(f"/hopthu/{handoff_id}/tinnhan").text
    assert "Tôi muốn hỏi thêm về giấy tờ" in talk and "telegram:501" in talk

    sent = officer.post(f"/hopthu/{handoff_id}/traloi", data={"noidung": "Chị mang theo CCCD bản gốc nhé."})
    assert sent.status_code == 303 and sent.headers["location"] == f"/hopthu/{handoff_id}?xong=gui"
    sender = Recorder()
    service = HandoffService(bot.settings, bot.db)
    service.senders = {"console": sender}
    await service.deliver()
    assert sender.sent == [("c1", "👤 Cán bộ trả lời:\nChị mang theo CCCD bản gốc nhé.")]
    assert "đã gửi" in officer.get(f"/hopthu/{handoff_id}/tinnhan").text

    closed = officer.post(f"/hopthu/{handoff_id}/dong")
    assert closed.headers["location"].endswith("xong=danhgia")
    await service.deliver()
    assert "Cán bộ đã kết thúc" in sender.sent[1][1] and "1 (rất không hài lòng)" in sender.sent[2][1]
    assert say(bot, "5") and say(bot, "góp ý Rất tốt")
    figures = officer.get("/hopthu/solieu").text
    assert 'id="solieu-ratings"' in figures and "Trao đổi với cán bộ" in figures and "Rất tốt" in figures
    assert 'id="solieu-times"' in figures


def test_a_second_officer_can_neither_claim_nor_answer_a_taken_conversation(bot):
    first, second = signed_in(bot, Role.EDITOR, user_id="601"), signed_in(bot, Role.ADMIN, user_id="602")
    say(bot, "gặp cán bộ")
    handoff_id = open_id(bot)
    assert first.post(f"/hopthu/{handoff_id}/nhan").status_code == 303
    refused = second.post(f"/hopthu/{handoff_id}/nhan")
    assert refused.status_code == 409 and "telegram:601" in refused.text
    assert second.post(f"/hopthu/{handoff_id}/traloi", data={"noidung": "Tôi trả lời"}).status_code == 409
    assert second.post(f"/hopthu/{handoff_id}/dong").status_code == 409
    with bot.db() as session:
        row = session.get(store.HandoffRow, handoff_id)
        assert row.claimed_by == "telegram:601" and row.status == store.ACTIVE
        assert not [m for m in store.messages_of(session, handoff_id) if m.kind == store.OFFICER]


def test_an_empty_reply_is_refused_and_nothing_is_sent(bot):
    officer = signed_in(bot, Role.EDITOR, user_id="701")
    say(bot, "gặp cán bộ")
    handoff_id = open_id(bot)
    refused = officer.post(f"/hopthu/{handoff_id}/traloi", data={"noidung": "   "})
    assert refused.status_code == 400 and 'id="hopthu-error"' in refused.text
    with bot.db() as session:
        assert session.query(store.OutboxRow).count() == 0 and session.get(store.HandoffRow, handoff_id).status == store.WAITING
    assert officer.get("/hopthu/99999").status_code == 404


def test_the_officer_sees_only_the_dossiers_the_citizen_proved_they_filed(bot):
    with bot.db.begin() as session:
        apply_updates(session, [DossierUpdate(code=CODE, status=Status.PROCESSING, procedure="Đăng ký khai sinh",
                                              due_at=datetime.now(UTC) + timedelta(days=3),
                                              given=frozenset({"procedure", "due_at"}))], "import:test")
        apply_updates(session, [DossierUpdate(code=CODE + "X", status=Status.PROCESSING, procedure="Cấp sổ đỏ",
                                              given=frozenset({"procedure"}))], "import:test")
        session.add_all([FollowRow(channel="console", chat_id="c1", dossier_code=CODE),
                         VerificationRow(channel="console", chat_id="c1", dossier_code=CODE),
                         FollowRow(channel="console", chat_id="c1", dossier_code=CODE + "X")])
    say(bot, "gặp cán bộ")
    page = signed_in(bot, Role.EDITOR).get(f"/hopthu/{open_id(bot)}").text
    assert 'id="hopthu-dossiers"' in page and CODE in page and "Đăng ký khai sinh" in page
    assert "Cấp sổ đỏ" not in page, "a dossier followed without the 4 digits is not shown"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.BROADCASTER])
def test_every_staff_role_may_use_the_inbox(bot, role):
    assert signed_in(bot, role, user_id="801").get("/hopthu").status_code == 200


def test_without_a_session_nothing_is_shown_or_changed(bot):
    say(bot, "gặp cán bộ")
    handoff_id = open_id(bot)
    browser = anonymous(bot)
    assert browser.get("/hopthu").status_code == 303
    assert browser.get("/hopthu/danhsach", headers={"HX-Request": "true"}).status_code == 401
    assert browser.get(f"/hopthu/{handoff_id}").status_code == 303
    assert browser.get("/hopthu/solieu").status_code == 303
    for action in ("nhan", "dong"):
        assert browser.post(f"/hopthu/{handoff_id}/{action}").status_code in (303, 401, 403)
    assert browser.post(f"/hopthu/{handoff_id}/traloi", data={"noidung": "x"}).status_code in (303, 401, 403)
    with bot.db() as session:
        row = session.get(store.HandoffRow, handoff_id)
        assert row.status == store.WAITING and row.claimed_by is None
        assert session.query(store.OutboxRow).count() == 0


def test_a_forged_form_without_the_csrf_token_changes_nothing(bot):
    officer = signed_in(bot, Role.ADMIN, user_id="901")
    del officer.headers["X-CSRF-Token"]
    say(bot, "gặp cán bộ")
    handoff_id = open_id(bot)
    assert officer.post(f"/hopthu/{handoff_id}/nhan").status_code == 403
    with bot.db() as session:
        assert session.get(store.HandoffRow, handoff_id).claimed_by is None


def test_the_month_s_thumbs_up_share_stands_beside_the_ratings(bot):
    answer = say(bot, "lệ phí làm căn cước bao nhiêu")[0]
    up = next(b.data for row in answer.buttons for b in row if b.label.startswith("👍"))
    bot.router.handle(Incoming("console", "c1", "c1", "", button=up))
    figures = signed_in(bot, Role.EDITOR, user_id="502").get("/hopthu/solieu").text
    assert "👍 câu trả lời của trợ lý" in figures and "100% (1/1)" in figures
