"""Signing in to the web console: a one-time link from the chat, sessions, passwords, CSRF, roles."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from handlers.messages import Incoming
from knowledge import web_access
from knowledge.models import SignInLinkRow, StaffActionRow, WebSessionRow, utc_now
from knowledge.staff import Role
from tests.web_support import add_staff, anonymous, signed_in, web_app

LINK = re.compile(r"http://[^\s]+/dangnhap/([A-Za-z0-9_-]+)")


@pytest.fixture
def bot(database_url):
    with web_app(database_url) as bot:
        yield bot


def ask_link(bot, user_id: str, group: bool = False) -> str:
    replies = bot.router.handle(Incoming("telegram", user_id, user_id, "/dangnhap", group=group))
    return replies[0].text


def test_a_staff_member_gets_a_link_in_chat_that_signs_in_once(bot) -> None:
    add_staff(bot, Role.EDITOR, "501")
    found = LINK.search(ask_link(bot, "501"))
    assert found, "no link in the reply"
    browser = anonymous(bot)
    # Opening the link (as a chat app's preview does) does not use it up.
    assert "Đăng nhập" in browser.get(f"/dangnhap/{found.group(1)}").text
    assert browser.get(f"/dangnhap/{found.group(1)}").status_code == 200
    response = browser.post(f"/dangnhap/{found.group(1)}")
    assert response.status_code == 303 and response.headers["location"] == "/tongquan"
    assert "telegram:501" in browser.get("/matkhau").text
    # Once only.
    again = anonymous(bot).post(f"/dangnhap/{found.group(1)}")
    assert again.status_code == 410 and "không còn dùng được" in again.text
    with bot.db() as session:
        assert session.query(SignInLinkRow).filter_by(token_hash=found.group(1)).count() == 0, "a token stored in clear"
        assert session.query(StaffActionRow).filter_by(actor="telegram:501", action="web.signin").count() == 1


def test_a_citizen_gets_no_link_and_a_group_chat_gets_no_link(bot) -> None:
    assert not LINK.search(ask_link(bot, "999"))
    add_staff(bot, Role.ADMIN, "502")
    reply = ask_link(bot, "502", group=True)
    assert not LINK.search(reply) and "tin nhắn riêng" in reply


def test_an_expired_link_does_not_sign_in(bot) -> None:
    add_staff(bot, Role.ADMIN, "503")
    with bot.db.begin() as session:
        token = web_access.issue_link(session, "telegram", "503", now=utc_now() - timedelta(minutes=11))
    response = anonymous(bot).post(f"/dangnhap/{token}")
    assert response.status_code == 410
    assert "motcua_session" not in response.cookies


def test_a_link_used_by_two_browsers_at_once_signs_in_only_one(bot) -> None:
    add_staff(bot, Role.ADMIN, "504")
    with bot.db.begin() as session:
        token = web_access.issue_link(session, "telegram", "504")
    codes: list[int] = []
    barrier = threading.Barrier(4)

    def use() -> None:
        client = anonymous(bot)
        barrier.wait()
        codes.append(client.post(f"/dangnhap/{token}").status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [303, 410, 410, 410]


def test_no_session_gets_nothing(bot) -> None:
    browser = anonymous(bot)
    for path in ("/canbo", "/matkhau"):
        response = browser.get(path, headers={"accept": "text/html"})
        assert response.status_code == 303 and response.headers["location"].startswith("/dangnhap")
    assert browser.get("/canbo", headers={"HX-Request": "true"}).status_code == 401
    assert browser.post("/canbo", data={"member": "telegram:7", "role": "admin"}).status_code in (303, 401)
    with bot.db() as session:
        assert session.get(__import__("knowledge.models", fromlist=["StaffRow"]).StaffRow, ("telegram", "7")) is None


def test_a_change_without_the_csrf_token_is_refused(bot) -> None:
    browser = signed_in(bot, Role.ADMIN, "505")
    del browser.headers["X-CSRF-Token"]
    response = browser.post("/canbo", data={"member": "telegram:8", "role": "editor"})
    assert response.status_code == 403 and "tải lại trang" in response.text
    forged = browser.post("/canbo", data={"member": "telegram:8", "role": "editor", "csrf_token": "0" * 64})
    assert forged.status_code == 403
    with bot.db() as session:
        assert session.get(__import__("knowledge.models", fromlist=["StaffRow"]).StaffRow, ("telegram", "8")) is None


def test_sign_out_ends_the_session_and_a_removed_member_is_out_at_once(bot) -> None:
    browser = signed_in(bot, Role.EDITOR, "506")
    assert browser.get("/matkhau").status_code == 200
    assert browser.post("/dangxuat").status_code == 303
    assert browser.get("/matkhau").status_code == 303
    other = signed_in(bot, Role.EDITOR, "507")
    admin = signed_in(bot, Role.ADMIN, "508")
    assert admin.post("/canbo/telegram/507/xoa").status_code == 200
    assert other.get("/matkhau").status_code == 303
    with bot.db() as session:
        assert session.query(WebSessionRow).filter_by(user_id="507").count() == 0


def test_a_password_signs_in_and_a_wrong_one_does_not(bot) -> None:
    browser = signed_in(bot, Role.BROADCASTER, "509")
    assert "ít nhất" in browser.post("/matkhau", data={"password": "ngan", "again": "ngan"}).text
    assert "Đã lưu" in browser.post("/matkhau", data={"password": "mot-mat-khau-dai", "again": "mot-mat-khau-dai"}).text
    fresh = anonymous(bot)
    page = fresh.get("/dangnhap")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    wrong = fresh.post("/dangnhap", data={"member": "telegram:509", "password": "sai-mat-khau-roi", "form_token": form_token})
    assert wrong.status_code == 401 and "không đúng" in wrong.text
    right = fresh.post("/dangnhap", data={"member": "telegram:509", "password": "mot-mat-khau-dai", "form_token": form_token,
                                           "tiep": "https://evil.example/"})
    assert right.status_code == 303 and right.headers["location"] == "/tongquan"
    with bot.db() as session:
        stored = session.get(__import__("knowledge.models", fromlist=["StaffRow"]).StaffRow, ("telegram", "509")).password_hash
    assert stored.startswith("$argon2") and "mot-mat-khau-dai" not in stored


def test_guessing_a_password_is_stopped_after_five_tries_and_the_chat_link_still_works(bot) -> None:
    browser = signed_in(bot, Role.EDITOR, "510")
    browser.post("/matkhau", data={"password": "mat-khau-that-dai", "again": "mat-khau-that-dai"})
    guesser = anonymous(bot)
    form_token = re.search(r'name="form_token" value="([^"]+)"', guesser.get("/dangnhap").text).group(1)

    def attempt(password: str):
        return guesser.post("/dangnhap", data={"member": "telegram:510", "password": password, "form_token": form_token})

    assert [attempt(f"doan-sai-lan-{n}").status_code for n in range(5)] == [401] * 5
    locked = attempt("mat-khau-that-dai")
    assert locked.status_code == 429 and "15 phút" in locked.text and "motcua_session" not in locked.cookies
    # The one-time link from the chat is not blocked.
    found = LINK.search(ask_link(bot, "510"))
    assert anonymous(bot).post(f"/dangnhap/{found.group(1)}").status_code == 303
