"""The console's "Questions to teach" (/cauhoi): the queue of questions the bot could not answer, attach one to an
entry (the bot then answers it), dismiss one (recorded), start a new entry from one; editors and admins only."""

from __future__ import annotations

import re

import pytest

from handlers.messages import Incoming
from knowledge.models import RevisionRow, StaffActionRow, UnansweredRow
from knowledge.staff import Role
from tests.conftest import wait_until
from tests.web_support import anonymous, signed_in, web_app

OUT_OF_SCOPE = "xin giay phep ban hang rong"  # nothing in the starter data answers it
HAWKER_ENTRY = "1.001612"  # đăng ký hộ kinh doanh: where staff would send street vendors
HTMX = {"HX-Request": "true"}
EDITORS = [Role.EDITOR, Role.ADMIN]


@pytest.fixture
def bot(database_url):
    # A running bot's live knowledge base, checking often: an attached question is answered soon after.
    with web_app(database_url, live=True, reload_seconds=0.1) as bot:
        yield bot


def ask(bot, text: str, user: str = "77"):
    (reply,) = bot.router.handle(Incoming("telegram", f"chat-{user}", user, text))
    return reply


def asked_unanswered(bot, text: str = OUT_OF_SCOPE) -> int:
    assert ask(bot, text).entry_id is None, "the starter data must not answer it yet"
    with bot.db() as session:
        row = session.query(UnansweredRow).filter(UnansweredRow.resolved_entry_id.is_(None)).one()
        return row.id


def state(bot) -> tuple:
    """What a refused action must leave as it was."""
    with bot.db() as session:
        return (sorted((r.id, r.resolved_entry_id, r.count) for r in session.query(UnansweredRow)),
                session.query(RevisionRow).count(), session.query(StaffActionRow).count())


@pytest.mark.parametrize("role", EDITORS)
def test_attaching_a_question_makes_the_bot_answer_it(bot, role) -> None:
    question = asked_unanswered(bot)
    member = signed_in(bot, role, "501")
    page = member.get("/cauhoi")
    assert page.status_code == 200
    assert OUT_OF_SCOPE in page.text and f'id="attach-{question}"' in page.text
    # The bot's best guess is pre-selected in the row's entry picker.
    picker = re.search(rf'<select id="entry-{question}".*?</select>', page.text, re.DOTALL).group(0)
    assert re.search(r'<option value="[^"]+" selected>', picker)

    row = member.post(f"/cauhoi/{question}/gan", data={"entry_id": HAWKER_ENTRY}, headers=HTMX)
    assert row.status_code == 200
    assert f'<tr id="q-{question}"' in row.text and "Đã gắn vào 1.001612" in row.text, row.text
    assert 'id="cauhoi-counts" hx-swap-oob="true"' in row.text

    with bot.db() as session:
        revision = session.query(RevisionRow).one()
        assert (revision.entry_id, revision.actor, revision.source) == (HAWKER_ENTRY, "telegram:501", "web")
        assert OUT_OF_SCOPE in revision.after["aliases"]
        assert session.get(UnansweredRow, question).resolved_entry_id == HAWKER_ENTRY
    wait_until(lambda: OUT_OF_SCOPE in bot.source.current.entries[HAWKER_ENTRY].aliases, what="the bot to reload")
    assert ask(bot, OUT_OF_SCOPE, "78").entry_id == HAWKER_ENTRY
    assert OUT_OF_SCOPE not in member.get("/cauhoi").text, "an attached question leaves the queue"


def test_the_entry_picker_searches_entries(bot) -> None:
    question = asked_unanswered(bot)
    member = signed_in(bot, Role.EDITOR, "502")
    found = member.get(f"/cauhoi/{question}/timmuc", params={"q": "hộ kinh doanh"}, headers=HTMX)
    assert found.status_code == 200 and f'<option value="{HAWKER_ENTRY}"' in found.text
    by_id = member.get(f"/cauhoi/{question}/timmuc", params={"q": "1.014064"}, headers=HTMX)
    assert re.search(r'<option value="1\.014064" selected>', by_id.text)
    nothing = member.get(f"/cauhoi/{question}/timmuc", params={"q": "zzzqqq"}, headers=HTMX)
    assert "không tìm thấy mục nào" in nothing.text


def test_attaching_to_a_missing_entry_or_twice_is_refused_in_place(bot) -> None:
    question = asked_unanswered(bot)
    member = signed_in(bot, Role.EDITOR, "503")
    before = state(bot)
    row = member.post(f"/cauhoi/{question}/gan", data={"entry_id": "9.999999"}, headers=HTMX)
    assert row.status_code == 200 and f'id="error-{question}"' in row.text and "Không có mục 9.999999" in row.text
    assert state(bot) == before, "a refused attach changes nothing"
    plain = member.post(f"/cauhoi/{question}/gan", data={"entry_id": ""})
    assert plain.status_code == 409 and "Chọn mục" in plain.text
    assert member.post(f"/cauhoi/{question}/gan", data={"entry_id": HAWKER_ENTRY}).status_code == 200
    again = member.post(f"/cauhoi/{question}/gan", data={"entry_id": HAWKER_ENTRY})
    assert again.status_code == 409 and "đã được xử lý" in again.text
    with bot.db() as session:
        assert session.query(RevisionRow).count() == 1


@pytest.mark.parametrize("role", EDITORS)
def test_dismissing_a_question_is_recorded_and_takes_it_out_of_the_queue(bot, role) -> None:
    question = asked_unanswered(bot)
    member = signed_in(bot, role, "504")
    row = member.post(f"/cauhoi/{question}/boqua", headers=HTMX)
    assert row.status_code == 200 and "Đã bỏ qua" in row.text
    with bot.db() as session:
        action = session.query(StaffActionRow).filter(StaffActionRow.action == "question.dismiss").one()
        assert action.actor == "telegram:504" and OUT_OF_SCOPE in action.detail
        assert session.query(RevisionRow).count() == 0, "dismissing teaches the bot nothing"
    page = member.get("/cauhoi")
    assert OUT_OF_SCOPE not in page.text and 'id="cauhoi-empty"' in page.text
    ask(bot, OUT_OF_SCOPE, "79")  # asked again: it stays dismissed, counted
    assert OUT_OF_SCOPE not in member.get("/cauhoi").text


def test_a_new_entry_started_from_a_question_answers_it(bot) -> None:
    question = asked_unanswered(bot)
    member = signed_in(bot, Role.EDITOR, "505")
    form = member.get(f"/kienthuc/moi?cauhoi={question}")
    assert form.status_code == 200
    assert re.search(r'<textarea id="f-examples"[^>]*>\s*' + re.escape(OUT_OF_SCOPE), form.text), "the question prefills the form"
    cells = {"id": "ban-hang-rong", "kind": "topic", "name": "Bán hàng rong", "group": "kinh-doanh",
             "summary": "Người bán hàng rong không phải đăng ký kinh doanh; hỏi UBND xã về nơi được bán.",
             "aliases": "giấy phép bán hàng rong", "examples": OUT_OF_SCOPE, "cauhoi": str(question)}
    created = member.post("/kienthuc/moi", data=cells)
    assert created.status_code == 303 and created.headers["location"].startswith("/kienthuc/muc/ban-hang-rong")
    with bot.db() as session:
        assert session.get(UnansweredRow, question).resolved_entry_id == "ban-hang-rong"
        revision = session.query(RevisionRow).one()
        assert (revision.action, revision.actor, revision.before) == ("create", "telegram:505", None)
    wait_until(lambda: "ban-hang-rong" in bot.source.current.entries, what="the bot to reload")
    assert ask(bot, OUT_OF_SCOPE, "80").entry_id == "ban-hang-rong"


@pytest.mark.parametrize("role", [Role.BROADCASTER, None])
def test_others_can_neither_see_nor_change_the_queue(bot, role) -> None:
    question = asked_unanswered(bot)
    client = signed_in(bot, role, "506") if role else anonymous(bot)
    before = state(bot)
    page = client.get("/cauhoi")
    assert page.status_code == (403 if role else 303)
    if role is None:
        assert page.headers["location"].startswith("/dangnhap")
    refused = {403} if role else {303, 401, 403}
    assert client.get(f"/cauhoi/{question}/timmuc", params={"q": "hộ kinh doanh"}).status_code in refused | {303}
    assert client.post(f"/cauhoi/{question}/gan", data={"entry_id": HAWKER_ENTRY}).status_code in refused
    assert client.post(f"/cauhoi/{question}/gan", data={"entry_id": HAWKER_ENTRY}, headers=HTMX).status_code in refused
    assert client.post(f"/cauhoi/{question}/boqua").status_code in refused
    assert OUT_OF_SCOPE not in page.text
    assert state(bot) == before, "nothing changed"
