"""Staff management in the web console: only admins, every change recorded, never without an admin."""

from __future__ import annotations

import pytest

from knowledge.models import StaffActionRow, StaffRow
from knowledge.staff import Role
from tests.web_support import signed_in, web_app


@pytest.fixture
def bot(database_url):
    with web_app(database_url) as bot:
        yield bot


def test_an_admin_adds_changes_and_removes_a_member(bot) -> None:
    admin = signed_in(bot, Role.ADMIN, "1")
    page = admin.post("/canbo", data={"member": "zalo:abc", "role": "editor"})
    assert page.status_code == 200 and "Đã thêm zalo:abc" in page.text
    assert admin.post("/canbo/zalo/abc/vaitro", data={"role": "broadcaster"}).status_code == 200
    with bot.db() as session:
        assert session.get(StaffRow, ("zalo", "abc")).role == "broadcaster"
    assert admin.post("/canbo/zalo/abc/xoa").status_code == 200
    with bot.db() as session:
        assert session.get(StaffRow, ("zalo", "abc")) is None
        actions = [(a.actor, a.action) for a in session.query(StaffActionRow).order_by(StaffActionRow.id)]
    assert [a for a in actions if a[1].startswith("staff.")] == [
        ("telegram:1", "staff.add"), ("telegram:1", "staff.role"), ("telegram:1", "staff.remove")]


def test_bad_input_is_refused_politely_and_changes_nothing(bot) -> None:
    admin = signed_in(bot, Role.ADMIN, "1")
    response = admin.post("/canbo", data={"member": "khong-dung-dang", "role": "editor"})
    assert response.status_code == 400 and "không đúng dạng" in response.text
    assert admin.post("/canbo", data={"member": "telegram:5", "role": "vua"}).status_code == 400
    with bot.db() as session:
        assert session.query(StaffRow).count() == 1


def test_the_last_admin_cannot_be_removed_or_demoted(bot) -> None:
    admin = signed_in(bot, Role.ADMIN, "1")
    assert admin.post("/canbo/telegram/1/vaitro", data={"role": "editor"}).status_code == 409
    assert admin.post("/canbo/telegram/1/xoa").status_code == 409
    with bot.db() as session:
        assert session.get(StaffRow, ("telegram", "1")).role == "admin"


@pytest.mark.parametrize("role", [Role.EDITOR, Role.BROADCASTER])
def test_other_roles_cannot_see_or_change_staff(bot, role) -> None:
    member = signed_in(bot, role, "2")
    assert member.get("/canbo").status_code == 403
    assert member.post("/canbo", data={"member": "telegram:9", "role": "admin"}).status_code == 403
    assert member.post("/canbo/telegram/2/vaitro", data={"role": "admin"}).status_code == 403
    with bot.db() as session:
        assert session.get(StaffRow, ("telegram", "9")) is None
        assert session.get(StaffRow, ("telegram", "2")).role == role.value
