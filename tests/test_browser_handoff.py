"""Issue 15 end to end in a real browser: a citizen on the fake Telegram server asks for an officer, the officer sees
the conversation appear in the console's inbox without reloading, answers there, the citizen receives the answer
while the bot stays silent, and the officer's close brings the rating request."""
# ruff: noqa: F811 - the fixtures come from tests.browser_support, and tests name them as arguments

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from knowledge.staff import Role
from tests.browser_support import (  # noqa: F401 - fixtures
    STAFF_CHAT,
    RunningBot,
    chromium,
    page,
    requires_chromium,
    screenshot,
    sign_in,
)

pytestmark = requires_chromium

CITIZEN = 1001
OUT_OF_SCOPE = "xin giay phep ban hang rong"  # the bot does not know: it offers "🙋 Hỏi cán bộ"
FOLLOW_UP = "Tôi bán trái cây bằng xe đẩy ở chợ phường thì cần giấy gì ạ?"
OFFICER_REPLY = "Chào bạn, bán hàng rong không cần đăng ký hộ kinh doanh. Bạn mang CCCD đến Bộ phận Một cửa để được hướng dẫn."


@pytest.fixture
def running(database_url):
    # Every day, all day: what the citizen is told does not depend on when the test runs (a minute before midnight
    # it is told when officers answer instead; both carry the queue position).
    with RunningBot(database_url, handoff_hours="T2-CN 00:00-23:59") as bot:
        bot.add_staff(Role.EDITOR)
        yield bot


def test_browser_an_officer_answers_a_citizen_from_the_console_inbox(running, page, screenshot) -> None:
    sign_in(page, running)
    page.get_by_role("link", name="Hộp thư").click()
    expect(page.locator("#hopthu-no-waiting")).to_be_visible()

    # The citizen asks something the bot cannot answer, and taps "🙋 Hỏi cán bộ" under the answer.
    unknown = running.say(CITIZEN, OUT_OF_SCOPE)
    assert "🙋 Hỏi cán bộ" in unknown.labels, unknown.labels
    told = running.press(CITIZEN, unknown.buttons[unknown.labels.index("🙋 Hỏi cán bộ")])
    assert told.text.startswith("Tôi đã chuyển cuộc trò chuyện cho cán bộ") and "vị trí số 1" in told.text, told.text

    # The inbox shows it without reloading; the officer opens it and sees what was already said.
    waiting = page.locator("#hopthu-waiting tbody tr")
    expect(waiting).to_have_count(1)
    expect(page.locator("#hopthu-waiting-count")).to_have_text("1")
    screenshot(page, "hopthu")
    waiting.get_by_role("link").click()
    expect(page.locator("#hopthu-status")).to_contain_text("vị trí số 1")
    expect(page.locator("#hopthu-history")).to_contain_text(OUT_OF_SCOPE)

    # Meanwhile the bot stays silent: the citizen's message goes to the officer, who sees it without reloading.
    silent_from = len(running.messages(CITIZEN))
    running.send(CITIZEN, FOLLOW_UP)
    expect(page.locator("#hopthu-messages")).to_contain_text(FOLLOW_UP)

    page.get_by_label("Trả lời người dân").fill(OFFICER_REPLY)
    page.get_by_role("button", name="Gửi", exact=True).click()
    expect(page.locator("#hopthu-status")).to_contain_text(f"telegram:{STAFF_CHAT}")  # answering claims it
    expect(page.locator("#hopthu-messages")).to_contain_text(OFFICER_REPLY)
    reply = running.wait_message(CITIZEN, silent_from, lambda m: OFFICER_REPLY in m.text, "the officer's reply")
    assert running.messages(CITIZEN)[silent_from] == reply, "the bot answered the message meant for the officer"
    expect(page.locator("#hopthu-messages .delivery").last).to_have_text("đã gửi")  # followed without reloading
    screenshot(page, "hopthu-traloi")

    # The officer ends it: the citizen is told and asked to rate; the bot answers questions again.
    page.get_by_role("button", name="Kết thúc cuộc trò chuyện").click()
    expect(page.locator("#hopthu-status")).to_contain_text("Đã kết thúc")
    closed = running.wait_message(CITIZEN, silent_from + 1, lambda m: m.text.startswith("Cán bộ đã kết thúc"), "the close")
    rate = running.wait_message(CITIZEN, silent_from + 1, lambda m: "5 ⭐" in m.labels, "the rating request")
    assert running.messages(CITIZEN).index(closed) < running.messages(CITIZEN).index(rate)
    thanks = running.press(CITIZEN, rate.buttons[rate.labels.index("5 ⭐")])
    assert thanks.text.startswith("Cảm ơn bạn đã đánh giá 5/5"), thanks.text
    assert "Lệ phí" in running.say(CITIZEN, "cấp lại căn cước mất bao nhiêu tiền").text

    page.get_by_role("link", name="← Hộp thư").click()
    page.get_by_role("link", name="Số liệu: đánh giá, thời gian phản hồi").click()
    expect(page.locator("#solieu-ratings tbody tr")).to_have_count(1)
    expect(page.locator("#solieu-ratings tbody tr td.num").nth(1)).to_have_text("5")
