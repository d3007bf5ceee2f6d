"""Button data as typed classes: packed and read back alike, never over Telegram's 64 bytes, the buttons
chats already have still read, and bad or forged data answered politely (never a traceback)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, Chat
from hypothesis import given
from hypothesis import strategies as st

from handlers.buttons import (
    MAX_BYTES,
    AspectButton,
    AttachButton,
    BroadcastButton,
    ButtonDataError,
    FeedbackButton,
    GroupButton,
    GroupListButton,
    ImportButton,
    SubscribeButton,
    short_key,
)
from handlers.core import STALE
from nlp.aspects import Aspect

# Buttons as the bot sent them before the typed classes: still in chats' histories, still pressed.
EARLIER = {
    "a:1.001193:fee": AspectButton("1.001193", Aspect.FEE),
    "fb:1.001193:down": FeedbackButton("1.001193", "down"),
    "g:ho-tich": GroupButton("ho-tich"),
    "imp:yes": ImportButton("yes"),
    "ua:12:1.001193": AttachButton(12, "1.001193"),
    "sub:areas": SubscribeButton("areas"),
    "sub:t:*": SubscribeButton("t", "*"),
    "bc:aud:area:phuong-ben-nghe": BroadcastButton("aud", "area:phuong-ben-nghe"),
    "bc:at:tomorrow": BroadcastButton("at", "tomorrow"),
    "bc:ok": BroadcastButton("ok"),
}


@pytest.mark.parametrize("data", list(EARLIER))
def test_the_buttons_chats_already_have_read_the_same_and_pack_back_unchanged(data):
    typed = EARLIER[data]
    assert type(typed).unpack(data) == typed
    assert typed.pack() == data


@pytest.mark.parametrize("data, kind", [
    ("a:1.001193:nonsense", AspectButton), ("fb:1.001193:sideways", FeedbackButton), ("ua:x:1.001193", AttachButton),
    ("imp:maybe", ImportButton), ("gl:-1", GroupListButton), ("g:", GroupButton), ("fb:1.001193", FeedbackButton),
    ("a:1.001193:fee", FeedbackButton), ("", AspectButton), (None, AspectButton), ("imp:yes:extra", ImportButton),
])
def test_bad_data_is_refused_with_a_clear_error(data, kind):
    with pytest.raises(ButtonDataError):
        kind.unpack(data)


def test_data_over_64_bytes_or_with_the_separator_inside_is_never_packed():
    long_id = "x" * 70
    with pytest.raises(ButtonDataError, match="64"):
        AspectButton(long_id, Aspect.OVERVIEW).pack()
    assert not FeedbackButton(long_id, "down").fits()
    with pytest.raises(ButtonDataError, match="':'"):
        AttachButton(1, "a:b").pack() and AspectButton("a:b", Aspect.FEE).pack()


@given(entry_id=st.text(st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), min_size=1, max_size=70),
       aspect=st.sampled_from(list(Aspect)))
def test_what_packs_fits_telegram_and_reads_back(entry_id, aspect):
    button = AspectButton(entry_id, aspect)
    if button.fits():
        data = button.pack()
        assert len(data.encode("utf-8")) <= MAX_BYTES
        assert AspectButton.unpack(data) == button
    else:
        assert len(f"a:{entry_id}:{aspect.value}".encode()) > MAX_BYTES


def test_a_long_group_name_gets_a_short_stable_key():
    slug = "quan-ly-" * 25
    assert short_key(slug) == short_key(slug) and len(short_key(slug)) == 10
    assert len(GroupButton(short_key(slug), 12).pack().encode()) <= MAX_BYTES


@pytest.mark.parametrize("data", ["a:1.001193:nonsense", "fb:1.001193:sideways", "g:", "gl:x", "zz:whatever", "a"])
def test_a_forged_or_stale_button_gets_a_polite_reply(chat: Chat, data):
    [reply] = chat.press(data)
    assert reply.text == STALE


def test_handlers_read_button_data_only_through_the_typed_classes():
    """The manual parsing the classes replaced must not come back (split(":") of button data in a handler)."""
    pattern = re.compile(r"(incoming\.button|\.button\b)[^\n]*\.(split|partition|rsplit)\(")
    offenders = [f"{path.name}:{n}" for path in sorted(Path(PROJECT_DIR, "handlers").glob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
