"""The question log: every question a citizen asks is recorded with what the bot did, never with who asked;
👍/👎 land on the answer they were given under; /xoadulieu deletes the chat's rows (only those); old rows go."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from conftest import Chat, make_settings
from sqlalchemy import select, text

from handlers import build_router
from handlers.buttons import FeedbackButton
from knowledge import question_log
from knowledge.question_log import QuestionLogRow, RetentionService

CHANNEL = "telegram"
CHAT_ID = "5550001234"


@pytest.fixture
def wired(catalog, db, database_url):
    return build_router(catalog, make_settings(database_url), db)


def rows(db) -> list[QuestionLogRow]:
    with db() as session:
        return list(session.scalars(select(QuestionLogRow).order_by(QuestionLogRow.id)))


def test_each_question_is_logged_with_what_the_bot_did_and_nothing_that_names_the_chat(wired, db, database_url):
    chat = Chat(wired, chat_id=CHAT_ID, channel=CHANNEL)
    assert chat.ask("lệ phí làm căn cước bao nhiêu").outcome == "answered"
    assert chat.ask("thủ tục đăng ký nuôi khủng long cảnh").outcome == "not_understood"
    chat.ask("/help")  # a command is not a question
    chat.ask("chào bạn")  # neither is small talk

    logged = rows(db)
    assert [r.outcome for r in logged] == ["answered", "not_understood"]
    assert logged[0].entry_id and "fee" in logged[0].aspects and logged[0].typed
    assert all(r.channel == CHANNEL for r in logged)
    assert logged[0].citizen == logged[1].citizen  # one citizen, counted once
    # The chat id appears nowhere in the table, in any column, as text.
    with db() as session:
        dump = " ".join(str(value) for row in session.execute(text("SELECT * FROM question_log")) for value in row)
    assert CHAT_ID not in dump
    assert len(logged[0].citizen) == 64


def test_the_hash_is_keyed_per_installation_so_a_guessed_id_cannot_be_checked_without_the_database(db):
    import hashlib

    with db.begin() as session:
        digest = question_log.citizen_hash(session, CHANNEL, CHAT_ID)
    assert digest != hashlib.sha256(f"{CHANNEL}:{CHAT_ID}".encode()).hexdigest()
    with db() as session:  # the key is stored once and used again
        assert question_log.citizen_hash(session, CHANNEL, CHAT_ID) == digest
        assert question_log.citizen_hash(session, CHANNEL, "other") != digest


def test_a_chosen_choice_is_logged_as_a_tap_not_as_another_question(wired, db):
    chat = Chat(wired, chat_id=CHAT_ID, channel=CHANNEL, buttonless=True)
    assert chat.ask("giấy phép lái xe").outcome == "clarified"
    assert chat.ask("1").outcome == "answered"
    logged = rows(db)
    assert [(r.outcome, r.typed) for r in logged] == [("clarified", True), ("answered", False)]


def test_thumbs_up_and_down_land_on_the_answer_they_were_under(wired, db):
    chat = Chat(wired, chat_id=CHAT_ID, channel=CHANNEL)
    fee = chat.ask("lệ phí làm căn cước bao nhiêu")
    other = Chat(wired, chat_id="777", channel=CHANNEL)
    other.ask("lệ phí làm căn cước bao nhiêu")
    chat.press(FeedbackButton(fee.entry_id, "up").pack())
    assert [r.vote for r in rows(db)] == ["up", None]
    chat.press(FeedbackButton(fee.entry_id, "down").pack())  # a change of mind replaces the vote
    assert [r.vote for r in rows(db)] == ["down", None]
    # A vote for an entry this chat was never answered about changes nothing.
    chat.press(FeedbackButton("no-such-entry", "up").pack())
    assert [r.vote for r in rows(db)] == ["down", None]


def test_xoadulieu_deletes_this_chats_questions_and_no_one_elses(wired, db):
    mine, theirs = Chat(wired, chat_id=CHAT_ID, channel=CHANNEL), Chat(wired, chat_id="777", channel=CHANNEL)
    mine.ask("lệ phí làm căn cước bao nhiêu")
    mine.ask("thủ tục đăng ký nuôi khủng long cảnh")
    theirs.ask("lệ phí làm căn cước bao nhiêu")
    assert len(rows(db)) == 3
    reply = mine.ask("/xoadulieu")
    assert "thống kê các câu hỏi bạn đã hỏi" in reply.text
    left = rows(db)
    assert len(left) == 1
    with db.begin() as session:
        assert left[0].citizen == question_log.citizen_hash(session, CHANNEL, "777")


def test_nothing_is_logged_when_recording_is_off(catalog, db, database_url):
    router = build_router(catalog, make_settings(database_url, record_questions=False), db)
    Chat(router, chat_id=CHAT_ID, channel=CHANNEL).ask("lệ phí làm căn cước bao nhiêu")
    assert rows(db) == []


def test_a_broken_log_never_costs_the_citizen_the_answer(wired, db):
    with db.begin() as session:
        session.execute(text("DROP TABLE question_log"))
    reply = Chat(wired, chat_id=CHAT_ID, channel=CHANNEL).ask("lệ phí làm căn cước bao nhiêu")
    assert reply.outcome == "answered" and reply.entry_id


def test_retention_deletes_only_questions_older_than_the_setting(db, database_url):
    now = datetime.now(UTC)
    with db.begin() as session:
        question_log.record(session, CHANNEL, "1", "answered", "x", at=now - timedelta(days=400))
        question_log.record(session, CHANNEL, "1", "answered", "y", at=now - timedelta(days=10))
    service = RetentionService(make_settings(database_url, question_log_days=365), db)

    async def run_once() -> None:
        scheduler = AsyncIOScheduler()
        scheduler.start()
        try:
            await service.start(scheduler, {})
            assert scheduler.get_job(RetentionService.JOB_ID) is not None  # the running bot prunes daily
            await service.prune()  # as the daily job does (its first run may also have happened already)
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(run_once())
    assert [r.entry_id for r in rows(db)] == ["y"]
    with db.begin() as session:
        assert question_log.prune(session, now) == 1
    assert rows(db) == []
