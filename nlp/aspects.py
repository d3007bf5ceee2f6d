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
_PATTERNS: dict[Aspect, str] = {
    Aspect.FEE: r"le phi|\bphi\b|bao nhieu tien|het bao nhieu|mat bao nhieu|ton bao nhieu|bao nhieu\b(?! (ngay|lau|thang|tuoi|nam|buoi|lan))"
    r"|\btien\b(?! hanh)|\bgia\b(?! han| dinh| tri| yeu| lai| hoan)|chi phi|mien phi|nop phi|tra phi|ton kem|\bton\b|giam phi|cuoc",
    Aspect.DURATION: r"bao lau|may ngay|bao nhieu ngay|may hom|bao gio (thi )?(co|xong|lay|nhan)|khi nao (thi )?(co|xong|lay|nhan)"
    r"|thoi gian|thoi han|lay (ngay|luon)|trong ngay|cho (may|bao)|mat may|ngay lam viec|bao lau|nhanh khong|lau khong|han giai quyet",
    Aspect.DOCUMENTS: r"giay to|ho so gom|ho so can|thanh phan|can (nhung )?gi|can mang|mang (theo )?(nhung )?gi|chuan bi|can nhung|nop (nhung )?gi"
    r"|nhung gi|to khai|ban sao|ban chinh|cong chung|giay gi|mau don|don gi",
    Aspect.PLACE: r"o dau|\bdau\b|cho nao|noi nao|co quan nao|chỗ nao|nop tai|lam tai|den dau|len (xa|phuong|tinh|huyen)|ve que|noi (lam|nop|cap)"
    r"|ben nao|phong nao|co quan gi|tai dau|dia chi|xa nao|phuong nao|cap nao",
    Aspect.ONLINE: r"online|onl\b|truc tuyen|qua mang|tren mang|dich vu cong|vneid|\bapp\b|ung dung|dien thoai|may tinh|toan trinh|mot phan|tai khoan"
    r"|dang nhap|internet|website|web\b|cong dvc",
    Aspect.POSTAL: r"buu dien|buu chinh|gui ve nha|ve nha|tai nha|gui (qua|ve)|ship|chuyen phat|giao (ve|tan)|nhan (o|tai) nha|qua buu|vnpost",
    Aspect.STEPS: r"cac buoc|nhung buoc|buoc nao|quy trinh|trinh tu|tien hanh|lam (nhu )?the nao|lam sao|lam ntn|cach lam|huong dan|nhu nao|the nao",
    Aspect.CONDITIONS: r"dieu kien|truong hop nao|co (duoc|phai|can|bat buoc)|duoc khong|duoc ko|phai khong|bat buoc|ai duoc|ai (phai|co the)|co the|bao nhieu tuoi"
    r"|du tuoi|co bi|bi phat|qua han|het han|co can|khong can|co kip|duoc phep|thi lai|co mat",
    Aspect.LEGAL: r"can cu|luat|nghi dinh|thong tu|quyet dinh|van ban|quy dinh (nao|o dau|cua)|dieu may|phap ly|\bnd\b|\btt\b",
}
_COMPILED = {aspect: re.compile(pattern) for aspect, pattern in _PATTERNS.items()}

# Phrases in which an aspect word is really part of the procedure ("gia hạn tạm trú" is not a price).
_MASKS = re.compile(r"gia han|phi cong|le phi truoc ba")

# "làm thế nào", "có được không" are said of everything; they only count when nothing specific is asked.
_WEAK = {Aspect.STEPS, Aspect.CONDITIONS}
# When a question names two strong aspects, keep both; this order breaks ties for the first.
_PRIORITY = [Aspect.FEE, Aspect.DURATION, Aspect.POSTAL, Aspect.ONLINE, Aspect.DOCUMENTS, Aspect.PLACE, Aspect.LEGAL, Aspect.STEPS, Aspect.CONDITIONS]


def detect_aspects(folded: str) -> list[Aspect]:
    """Aspects asked, most important first; empty when the question asks about the procedure as a whole."""
    text = _MASKS.sub(" ", folded)
    found = {aspect: m.start() for aspect, pattern in _COMPILED.items() if (m := pattern.search(text))}
    strong = [a for a in _PRIORITY if a in found and a not in _WEAK]
    if strong:
        return strong
    weak = [a for a in _PRIORITY if a in found]
    return weak
