"""The shape of a knowledge-base entry as staff and the starter data write it (YAML, and later CSV/XLSX).

These pydantic models validate every file before anything touches the database, so an error can be
reported with its place and a plain reason instead of surfacing as a database exception.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

EntryId = Annotated[str, Field(pattern=r"^(\d\.\d{6}|[a-z0-9]+(-[a-z0-9]+)*)$")]


class Channel(StrEnum):
    """How a citizen files; fees and processing times may differ by channel."""

    ANY = "any"
    IN_PERSON = "in_person"
    ONLINE = "online"
    POSTAL = "postal"


class DocumentForm(StrEnum):
    ORIGINAL = "original"  # bản chính
    COPY = "copy"  # bản sao (chụp)
    CERTIFIED_COPY = "certified_copy"  # bản sao có chứng thực / trích từ sổ gốc
    PRESENT = "present"  # xuất trình để đối chiếu, không nộp
    FORM = "form"  # tờ khai / mẫu đơn
    ELECTRONIC = "electronic"  # bản điện tử / dữ liệu khai thác trên hệ thống


class OnlineLevel(StrEnum):
    FULL = "full"  # toàn trình
    PARTIAL = "partial"  # một phần
    NONE = "none"
    UNKNOWN = "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Document(_Strict):
    name: str
    form: DocumentForm | None = None
    count: int | None = Field(default=None, ge=1, le=20)
    note: str | None = None


class Fee(_Strict):
    channel: Channel = Channel.ANY
    amount_vnd: int | None = Field(default=None, ge=0, description="Fixed amount; None when not fixed nationally")
    set_by_province: bool = False
    text: str = Field(description="The fee as a citizen should read it, in Vietnamese")
    exemptions: str | None = None
    basis: str | None = None

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("fee text must not be empty")
        return value


class Duration(_Strict):
    channel: Channel = Channel.ANY
    text: str
    working_days: float | None = Field(default=None, ge=0)


class Place(_Strict):
    agency: str
    level: str | None = None
    note: str | None = None


class Online(_Strict):
    level: OnlineLevel = OnlineLevel.UNKNOWN
    portals: list[str] = Field(default_factory=list)
    note: str | None = None


class Postal(_Strict):
    submit: bool | None = None
    receive_result: bool | None = None
    note: str | None = None


class Entry(_Strict):
    """One procedure (keyed by its national code) or one topic (keyed by a slug)."""

    id: EntryId
    kind: str = Field(pattern=r"^(procedure|topic)$")
    name: str
    short_name: str | None = Field(default=None, description="How citizens call it, used in answers")
    group: str
    level: str | None = None
    equivalents: list[str] = Field(default_factory=list)
    summary: str
    aliases: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    documents: list[Document] = Field(default_factory=list)
    fees: list[Fee] = Field(default_factory=list)
    durations: list[Duration] = Field(default_factory=list)
    places: list[Place] = Field(default_factory=list)
    online: Online = Field(default_factory=Online)
    postal: Postal = Field(default_factory=Postal)
    steps: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    legal_basis: list[str] = Field(default_factory=list)
    result: str | None = None
    notes: list[str] = Field(default_factory=list)


    @field_validator("equivalents")
    @classmethod
    def _equivalents_as_a_set(cls, value: list[str]) -> list[str]:
        # Stored as a set: keep them sorted and unique so a round trip compares equal.
        return sorted(set(value))


class EntryFile(BaseModel):
    entries: list[Entry]


if __name__ == "__main__":  # `python -m knowledge.schema FILE...` checks starter files while writing them
    import sys

    import yaml
    from pydantic import ValidationError

    failed = False
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
        try:
            parsed = EntryFile.model_validate({"entries": raw})
        except ValidationError as error:
            failed = True
            print(f"{path}: {error}")
        else:
            print(f"{path}: {len(parsed.entries)} entries OK")
    sys.exit(1 if failed else 0)
