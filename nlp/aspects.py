"""What a question asks about a procedure: its fee, its papers, how long, where, online, by post..."""

from __future__ import annotations

import re
from enum import StrEnum


class Aspect(StrEnum):
    OVERVIEW = "overview"
    DOCUMENTS = "documents"
    FEE = "fee"
    DURATION = "duration"
    PLACE = "place"
    ONLINE = "online"
    POSTAL = "postal"
    STEPS = "steps"
    CONDITIONS = "conditions"
    LEGAL = "legal"


# Patterns run on folded text (no diacritics), so each covers both ways of typing.
_NOT_MONEY = r"(?! (ngay|lau|thang|tuoi|nam|buoi|lan|tieng|gio|ban\b|nguoi|cai))"
_PATTERNS: dict[Aspect, str] = {
    Aspect.FEE: r"le phi|\bphi\b|bao nhieu tien|(het|mat|ton) (bao nhieu|bn)" + _NOT_MONEY + r"|\bbao nhieu\b" + _NOT_MONEY + r"\s*$"
    r"|(mat|het|ton) tien|gia (bao nhieu|ca|tien)|bang gia|chi phi|mien phi|nop phi|tra phi|ton kem|giam phi|(tien|gia) cuoc|cuoc (phi|gui|buu)|bao nhieu tien|re hon|dat hon|giam (gia|phi|tien|le phi)|duoc giam",
    Aspect.DURATION: r"((mat|het|ton) )?bao lau|(mat )?may ngay|may ngay|bao nhieu ngay|may hom|may thang|(?<!chua )bao gio (thi )?(co|xong|lay|nhan|duoc)|khi nao (thi )?(co|xong|lay|nhan|duoc)"
    r"|thoi gian|thoi han|lay (ngay|luon)|trong ngay|cho (may|bao)|mat may|ngay lam viec|han giai quyet|bao nhieu ngay|bao nhieu lau|nhanh khong|lau khong",
    Aspect.DOCUMENTS: r"giay to|ho so gom|ho so can|thanh phan|can (nhung )?gi\b|can mang|mang (theo )?(nhung )?gi\b|chuan bi|can nhung|nop (nhung )?gi\b"
    r"|(gom|can|mang|nop|chuan bi) nhung gi\b|giay gi\b|mang gi\b|ban goc|ban photo|can (co )?nhung|co can (co )?(giay|ban|anh|mang|nop)|giay kham|ho so (gi|nhung gi)\b|can (nhung )?ho so",
    Aspect.PLACE: r"o dau|(di|ra|den|len|toi|nop|lam) dau\b|bao cho ai|cho nao|noi nao|co quan nao|nop tai|lam tai|den dau|tai dau|ben nao|phong nao|co quan gi|dia chi|xa nao|phuong nao|cap nao"
    r"|noi (nguoi|minh|con|dang|o|co|sinh|thuong tru|tam tru)|hay noi|ve que|ra (xa|phuong)|o xa",
    Aspect.ONLINE: r"online|onl\b|truc tuyen|(tren|qua|bang|tai) (vneid|dvc|app)|vneid (duoc|dc)|dvc|qua mang|tren mang|dich vu cong|\bapp\b|ung dung|toan trinh|tai khoan|dang nhap|internet|website|\bweb\b|cong dvc",
    Aspect.POSTAL: r"buu dien|buu chinh|(nhan|giao|tra|gui|ship)\b.{0,25}\b(tai|ve|den) nha|gui (qua|ve)|ship|chuyen phat|giao (ve|tan)|nhan (o|tai) nha|qua buu|vnpost",
    Aspect.STEPS: r"cac buoc|nhung buoc|buoc nao|quy trinh|trinh tu|tien hanh|cach (lam|khai|dang)|the nao\b.*\bbuoc|lam gi tiep|nop tiep",
    Aspect.CONDITIONS: r"dieu kien|truong hop nao|co phai|bat buoc|ai duoc|ai (phai|co the)|bao nhieu tuoi|du tuoi|co bi|bi phat"
    r"|co can|khong can|co kip|duoc phep|thi lai|co duoc|duoc khong|phai khong|co the|moi (duoc|lam)",
    Aspect.LEGAL: r"can cu|\bluat\b|nghi dinh|thong tu|quyet dinh so|van ban|quy dinh (nao|o dau|cua)|dieu may|phap ly|nam o",
}
_COMPILED = {aspect: re.compile(rf"\b(?:{pattern})\b") for aspect, pattern in _PATTERNS.items()}

# Phrases in which an aspect word is really part of the procedure ("gia hạn tạm trú" is not a price).
_MASKS = re.compile(r"gia han|gia dinh")

# "làm thế nào", "có được không" are said of everything; they only count when nothing specific is asked.
_WEAK = {Aspect.CONDITIONS}
_WHAT_IS = re.compile(r"\bla (gi|sao)\b")
# When a question names two strong aspects, keep both; this order breaks ties for the first.
_PRIORITY = [Aspect.STEPS, Aspect.FEE, Aspect.DURATION, Aspect.POSTAL, Aspect.ONLINE, Aspect.DOCUMENTS, Aspect.PLACE, Aspect.LEGAL, Aspect.CONDITIONS]


def detect_aspects(folded: str) -> list[Aspect]:
    """Aspects asked, most important first; empty when the question asks about the procedure as a whole."""
    text = _MASKS.sub(" ", folded)
    found = {aspect: m.start() for aspect, pattern in _COMPILED.items() if (m := pattern.search(text))}
    if _WHAT_IS.search(text) and not any(a in found for a in (Aspect.FEE, Aspect.DURATION, Aspect.DOCUMENTS)) \
            and "dieu kien" not in text:
        return [Aspect.OVERVIEW]  # "tạm vắng là gì": what the procedure is
    strong = [a for a in _PRIORITY if a in found and a not in _WEAK]
    if set(strong) == {Aspect.DOCUMENTS, Aspect.PLACE}:
        return [Aspect.OVERVIEW, *strong]  # "ở đâu và cần những gì": the whole procedure is wanted
    if strong:
        return strong
    weak = [a for a in _PRIORITY if a in found]
    return weak


def strip_aspect_phrases(folded: str) -> str:
    """The question without its aspect phrases: what is left names the procedure, if anything does."""
    text = folded
    for pattern in _COMPILED.values():
        text = pattern.sub(" ", text)
    return text
