"""Long lists come in pages: with the national sample imported, /thutuc, the topics of /dangky and of an
announcement never carry more than MAX_BUTTONS buttons (Telegram refused the 139 of /thutuc), every
button's data fits Telegram's 64 bytes, and every group and entry is reachable by paging, with buttons
and, on a platform without them, by typing the numbers shown."""

from __future__ import annotations

import re
from collections import deque

import pytest
from conftest import NATIONAL_SAMPLE, Chat, make_settings

from broadcasts import audience
from handlers import build_router
from handlers.buttons import MAX_BYTES, AspectButton
from handlers.messages import Incoming
from handlers.paging import MAX_BUTTONS, NEXT, PAGE_SIZE
from knowledge import staff
from knowledge.catalog import Catalog
from knowledge.db import session_factory
from knowledge.dvcqg import load_catalogue
from knowledge.editing import apply
from knowledge.groups import ordered_groups
from quality.train_decision import build_catalog


@pytest.fixture(scope="module")
def national():
    """The starter entries plus the committed national sample, imported as `kb import` would."""
    return build_catalog(NATIONAL_SAMPLE)


@pytest.fixture
def wired(national, db, database_url):
    return build_router(national, make_settings(database_url), db)


def data_of(reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row]


def check_limits(reply) -> None:
    data = data_of(reply)
    assert len(data) <= MAX_BUTTONS, f"{len(data)} buttons: {reply.text[:80]}"
    too_long = [d for d in data if len(d.encode("utf-8")) > MAX_BYTES]
    assert not too_long, f"over Telegram's 64 bytes: {too_long}"


def walk(chat: Chat, first, follow: re.Pattern) -> tuple[set[str], int]:
    """Press every button whose data matches `follow`, from the reply `first`, checking each reply; the data of
    every button seen, and how many replies were checked."""
    seen, queue, pressed, replies = set(), deque([first]), set(), 0
    while queue:
        reply = queue.popleft()
        check_limits(reply)
        replies += 1
        for data in data_of(reply):
            seen.add(data)
            if follow.match(data) and data not in pressed:
                pressed.add(data)
                queue.extend(chat.press(data))
    return seen, replies


def test_the_national_sample_needs_pages(national):
    assert len(national.groups()) > MAX_BUTTONS, "otherwise this file tests nothing"


def test_thutuc_pages_reach_every_group_and_every_entry(wired, national):
    chat = Chat(wired, "p1", "telegram")
    seen, replies = walk(chat, chat.ask("/thutuc"), re.compile(r"^(gl|g)(:|$)"))
    reached = {AspectButton.unpack(d).entry_id for d in seen if d.startswith("a:")}
    assert reached == set(national.entries), f"{len(set(national.entries) - reached)} entries cannot be reached"
    assert replies > len(national.groups()), "every group was opened"


def test_a_page_turns_by_typing_its_number_where_there_are_no_buttons(wired, national):
    chat = Chat(wired, "p2", "zalo", buttonless=True)
    first = chat.ask("/thutuc")
    turn = re.search(rf"^(\d+)\. {re.escape(NEXT)}$", first.text, re.MULTILINE)
    assert turn and "trang 1/" in first.text
    second = chat.ask(turn.group(1))
    assert "trang 2/" in second.text
    group = ordered_groups(national.groups())[PAGE_SIZE]  # the first group of page 2
    opened = chat.ask("1")
    assert opened.text.startswith(group) or opened.text.split(" (")[0] in second.text, opened.text
    assert {AspectButton.unpack(d).entry_id for d in data_of(opened) if d.startswith("a:")} <= {e.id for e in national.groups()[group]}
    entry = chat.ask("1")
    assert entry.entry_id in {e.id for e in national.groups()[group]}


def test_every_topic_can_be_chosen_for_subscriptions_even_with_a_long_name(wired, national, db):
    chat = Chat(wired, "p3", "telegram")
    chat.send("/dangky")
    seen, _ = walk(chat, chat.press("sub:topics")[0], re.compile(r"^sub:topics:"))
    topics = [d for d in seen if d.startswith("sub:t:") and d != "sub:t:*"]
    assert len(topics) == len(national.groups())
    longest = max(national.groups(), key=len)
    assert len(longest) > 64
    label_press = next(d for d in topics if chat.press(d) and longest in _topics(db, "p3"))
    assert label_press, "the topic with the longest name was subscribed to"


def _topics(db, chat_id: str) -> list[str]:
    with db() as session:
        return audience.subscription(session, "telegram", chat_id).topics


def test_an_announcement_can_go_to_any_topic(open_kb):
    """On a database holding the national sample (an announcement's topics are checked against it)."""
    engine = open_kb()
    db = session_factory(engine)
    with db.begin() as session:
        apply(session, load_catalogue(NATIONAL_SAMPLE), "test", "file:sample", origin="dvcqg", keep_curated=True)
        staff.add(session, "telegram", "900", staff.Role.BROADCASTER)
    national = Catalog.load(engine)
    wired = build_router(national, make_settings(), db)
    longest = max(national.groups(), key=len)
    with db.begin() as session:
        row, _ = audience.subscribe(session, "telegram", "11")
        row.topics = [longest]

    def press(data):
        return wired.handle(Incoming("telegram", "chat-900", "900", "", button=data))

    wired.handle(Incoming("telegram", "chat-900", "900", "/thongbao Lịch tiếp dân tháng này."))
    seen, _ = walk(type("StaffChat", (), {"press": staticmethod(press)})(), press("bc:topics")[0],
                   re.compile(r"^bc:topics:"))
    topics = [d for d in seen if d.startswith("bc:aud:topic:")]
    assert len(topics) == len(national.groups())
    for data in topics:
        press("bc:topics")
        [when] = press(data)
        assert "Gửi lúc nào" in when.text
        [preview] = press("bc:at:now")
        if "tới 1 người" in preview.text:
            break
    else:
        pytest.fail("no topic button reaches the subscriber of the topic with the longest name")
