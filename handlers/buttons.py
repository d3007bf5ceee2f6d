"""Button data as typed classes (modelled on aiogram's CallbackData): one class per kind of button.

A button's data is "<prefix>:<field>:<field>..." and must fit Telegram's 64 bytes of callback data, so
`pack()` refuses anything longer, and `unpack()` refuses data of another prefix or with a bad field
(`ButtonDataError`: the router answers a stale or forged button politely instead of failing). The last
field may hold the separator; trailing fields left at their defaults are not written and read back as the
defaults, so the buttons chats already have ("sub:areas", "g:ho-tich") still work.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import typing
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Literal, Self

from nlp.aspects import Aspect

SEPARATOR = ":"
MAX_BYTES = 64  # Telegram's limit on callback data


class ButtonDataError(ValueError):
    """Button data that is not of the expected kind, or a field that does not read."""


def prefix_of(data: str) -> str:
    """The prefix naming the kind of a button's data ("a" of "a:1.001193:fee")."""
    return data.partition(SEPARATOR)[0]


def short_key(text: str) -> str:
    """A 10-character stable key for a long value (a group slug runs to ~190 characters) in button data."""
    return hashlib.blake2s(text.encode("utf-8"), digest_size=5).hexdigest()


@dataclass(frozen=True)
class ButtonData:
    """Base of every button's data: subclasses are frozen dataclasses with a `prefix`."""

    prefix: ClassVar[str]

    def pack(self) -> str:
        """The data string; raises ButtonDataError if a field holds the separator or the whole is over 64 bytes."""
        layout = _layout(type(self))
        raw = [getattr(self, name) for name, _ in layout]
        while raw and _is_default(layout[len(raw) - 1][1], raw[-1]):
            raw.pop()
        values = [_write(value) for value in raw]
        for value in values[:-1]:
            if SEPARATOR in value:
                raise ButtonDataError(f"{type(self).__name__}: a field holds {SEPARATOR!r}: {value!r}")
        data = SEPARATOR.join([self.prefix, *values])
        if len(data.encode("utf-8")) > MAX_BYTES:
            raise ButtonDataError(f"{type(self).__name__}: {len(data.encode('utf-8'))} bytes, over Telegram's {MAX_BYTES}")
        return data

    def fits(self) -> bool:
        """Whether this data can be packed (e.g. an area key short enough for Telegram)."""
        try:
            self.pack()
        except ButtonDataError:
            return False
        return True

    @classmethod
    def unpack(cls, data: str | None) -> Self:
        """The typed data of `data`; ButtonDataError if it is not this kind's, or a field does not read."""
        if not data or prefix_of(data) != cls.prefix:
            raise ButtonDataError(f"not {cls.__name__} data: {data!r}")
        fields = dataclasses.fields(cls)
        rest = data[len(cls.prefix) + 1:] if len(data) > len(cls.prefix) else None
        parts = rest.split(SEPARATOR, len(fields) - 1) if rest is not None and fields else ([] if rest is None else [rest])
        if len(parts) > len(fields):
            raise ButtonDataError(f"{cls.__name__}: too many fields in {data!r}")
        hints = typing.get_type_hints(cls)
        values = {}
        for number, field in enumerate(fields):
            if number < len(parts):
                values[field.name] = _read(hints[field.name], parts[number], cls.__name__, field.name)
            elif field.default is dataclasses.MISSING:
                raise ButtonDataError(f"{cls.__name__}: {field.name} missing in {data!r}")
        return cls(**values)


@functools.cache
def _layout(cls: type[ButtonData]) -> tuple[tuple[str, object], ...]:
    """Each field's name and default, read once per class: an answer packs a dozen buttons, and reading
    the dataclass's fields for each cost more than the packing."""
    return tuple((f.name, f.default) for f in dataclasses.fields(cls))


def _is_default(default: object, value: object) -> bool:
    """A field at the end left at its default is not written ("sub:areas", not "sub:areas:")."""
    return default is not dataclasses.MISSING and value == default


def _write(value: object) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _read(kind: object, text: str, owner: str, name: str) -> object:
    """One field's value from its text, by the field's type (str, int, an Enum or a Literal of strings)."""
    try:
        if kind is int:
            if not text.isdigit():
                raise ValueError(text)
            return int(text)
        if isinstance(kind, type) and issubclass(kind, Enum):
            return kind(text)
        if typing.get_origin(kind) is Literal:
            if text not in typing.get_args(kind):
                raise ValueError(text)
            return text
        if not text:
            raise ValueError("empty")
        return text
    except ValueError:
        raise ButtonDataError(f"{owner}.{name}: {text!r} does not read") from None


# --------------------------------------------------------------------------- the bot's buttons

@dataclass(frozen=True)
class AspectButton(ButtonData):
    """An entry's aspect (or a choice offered): answer about it."""

    prefix: ClassVar[str] = "a"
    entry_id: str
    aspect: Aspect


@dataclass(frozen=True)
class FeedbackButton(ButtonData):
    """👍 / 👎 under an answer."""

    prefix: ClassVar[str] = "fb"
    entry_id: str
    vote: Literal["up", "down"]


@dataclass(frozen=True)
class GroupListButton(ButtonData):
    """A page of /thutuc's list of groups."""

    prefix: ClassVar[str] = "gl"
    page: int = 0


@dataclass(frozen=True)
class GroupButton(ButtonData):
    """A group of procedures (its slug, or a short key of a slug too long for the data), at one page of it."""

    prefix: ClassVar[str] = "g"
    group: str
    page: int = 0


@dataclass(frozen=True)
class ImportButton(ButtonData):
    """"Nhập" / "Hủy" under a validated staff file."""

    prefix: ClassVar[str] = "imp"
    answer: Literal["yes", "no"]


@dataclass(frozen=True)
class AttachButton(ButtonData):
    """Attach an unanswered question to the entry the bot guessed."""

    prefix: ClassVar[str] = "ua"
    question_id: int
    entry_id: str


@dataclass(frozen=True)
class SubscribeButton(ButtonData):
    """The choices under /dangky: list areas or topics (a page of them), pick one, or finish."""

    prefix: ClassVar[str] = "sub"
    action: Literal["areas", "topics", "done", "a", "t"]
    value: str = ""  # an area key, a topic's short key (or slug), "*" for all, or a page number


@dataclass(frozen=True)
class BroadcastButton(ButtonData):
    """Composing an announcement: audience, time, confirm, cancel (`value` may hold "area:<key>")."""

    prefix: ClassVar[str] = "bc"
    action: Literal["aud", "areas", "topics", "at", "ok", "no"]
    value: str = ""
