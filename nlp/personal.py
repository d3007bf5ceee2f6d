"""Personal data in a citizen's text replaced by placeholders, before the text is kept for staff.

The bot keeps questions it could not answer "without your name or account"; citizens still type their
phone number, ID number, dossier code, e-mail, their own or a relative's name and their address into a
question. `mask()` replaces those with [SĐT], [SỐ GIẤY TỜ], [MÃ HỒ SƠ], [EMAIL], [TÊN], [ĐỊA CHỈ] and leaves
the procedure words staff need: relations ("ông bà", "anh chị em", "chị gái"), places named after a
title ("Bà Rịa"), fees, years and legal references stay as they are. Pure text in, text out.
"""

from __future__ import annotations

import re

PHONE = "[SĐT]"
ID_NUMBER = "[SỐ GIẤY TỜ]"
DOSSIER = "[MÃ HỒ SƠ]"
EMAIL = "[EMAIL]"
NAME = "[TÊN]"
ADDRESS = "[ĐỊA CHỈ]"

_I = re.IGNORECASE
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# The receipt's code (000.00.12.H12-240506-0001), typed loosely, as reminders.codes finds it.
_DOSSIER = re.compile(r"(?<![\w.])\d{2,4}\.\d{1,3}\.\d{1,3}\.[A-Za-z]?\d{1,3}\s*-\s*\d{3,8}\s*-\s*\d{1,6}(?![\w-])")
# A number right after the name of an identity paper: even a short or partly typed one is someone's.
_ID_AFTER_WORD = re.compile(
    r"(\b(?:cccd|cmnd|cmtnd|căn cước(?: công dân)?|chứng minh(?: nhân dân| thư)?|định danh(?: cá nhân)?|mã số thuế|mst"
    r"|bhxh|bhyt|bảo hiểm(?: xã hội| y tế)?|hộ chiếu|passport|gplx|bằng lái(?: xe)?)"
    r"(?:\s+(?:của\s+\w+|số|là|cũ|mới))*\s*[:.]?\s*)"
    r"([A-Za-z]{0,2}\d[\d .-]{4,}\d)(?![\w])", _I)
# Mobile (0 + 9 digits) and landline (0 + 10) numbers, with +84 and the usual spaces, dots and dashes.
_PHONE = re.compile(r"(?<![\w+])(?:\(?\+84\)?|0)[\s.-]?(?:\d[\s.-]?){8,9}\d(?![\s.-]?\d)")
# CCCD (12 digits) and old CMND (9), typed in groups of three; then any run of 9 digits or more
# (social insurance, tax and ID numbers): no fee, year or procedure code is that long without separators.
_ID_GROUPED = re.compile(r"(?<![\w.])\d{3}(?:[ .]\d{3}){2,3}(?![\w]|[ .]\d)")
_LONG_NUMBER = re.compile(r"(?<!\w)\d{9,}(?!\w)")

_LETTERS = r"[^\W\d_]+"
_HOUSE = re.compile(r"\b(?:số\s+nhà|nhà\s+số|số\s+nha|nha\s+so)\s*:?\s*\d+[\w/-]*", _I)
_ALLEY = re.compile(r"\b(?:ngõ|ngách|hẻm|kiệt|ngo|hem)\s+\d+[\w/-]*", _I)
_HAMLET = re.compile(r"\b(?:tổ|ấp|xóm|khu phố|kp)\s+\d+\b", _I)
# "(số 12) đường Lê Lợi", "phố Hàng Bạc", "đường số 7", "đường 3/2" -- not "thành phố Hồ Chí Minh", nor
# "đường bộ", "đường dây nóng": the street's name must be capitalised or a number, unless a house number
# comes first ("số 12 đường lê lợi").
_STREET = re.compile(r"(?:\b(?:số\s+)?(\d+[a-zA-Z]?(?:/\d+)*)\s*,?\s*)?(?<!thành )(?<!THÀNH )\b(?:đường|phố|duong|pho)\s+", _I)
_STREET_NUMBER = re.compile(r"(?:số\s+)?\d+(?:/\d+)?\w*(?:\s+tháng\s+\d+)?", _I)
_ADDRESS_RUN = re.compile(r"\[ĐỊA CHỈ\](?:\s*,?\s*\[ĐỊA CHỈ\])+")

# Titles before a name ("ông Nguyễn Văn A"); "tôi tên là", "họ tên:" before one, with or without a title.
# Without diacritics too ("ong Nguyen Van A"): then only a capitalised name or an unmistakable surname follows.
_TITLE = re.compile(r"(?<![^\W\d_])(ông|bà|anh|chị|cô|chú|bác|em|cháu|cụ|thím|dì|cậu|mợ|ong|ba|chi|co|chu|bac)\s+", _I)
_STRONG_CUE = re.compile(
    r"(?<![^\W\d_])(?:(?:tôi|em|mình|tui|tớ|cháu)\s+tên(?:\s+là)?|tên\s+(?:tôi|em|mình|con|cháu|bé|của\s+\w+)\s*(?:là|:)"
    r"|(?:họ\s+(?:và\s+)?)?tên(?:\s+khai\s+sinh)?\s*(?:là|:))\s*", _I)
_WEAK_CUE = re.compile(r"(?<![^\W\d_])(?:họ\s+(?:và\s+)?tên|tên|(?:tôi|em|mình|cháu)\s+là|ho\s+ten|toi\s+ten(?:\s+la)?)\s+", _I)
_WORD_AT = re.compile(rf"[ \t]*({_LETTERS})")

# Words after a title that make a relation or another title, not a name: "ông bà", "anh chị em", "chị gái".
_RELATIONS = frozenset(
    "ông bà anh chị em cô chú bác cháu cụ thím dì cậu mợ con cha mẹ bố má ba vợ chồng trai gái nội ngoại ruột họ rể dâu "
    "cả hai ba út kế nuôi đỡ đầu giám hộ ấy này kia đó tôi mình nó họ các những "
    "ong chi co chu bac chau me bo vo chong gai noi ngoai ruot".split())
# Places named with a title: "Bà Rịa", "Bà Chiểu", "Cô Tô", "Anh Sơn"...
_PLACES = frozenset({("bà", "rịa"), ("bà", "chiểu"), ("bà", "điểm"), ("bà", "đen"), ("bà", "quẹo"), ("bà", "triệu"),
                     ("ông", "lãnh"), ("ông", "ích"), ("cô", "tô"), ("anh", "sơn"), ("bà", "thước"), ("bà", "tơ"),
                     ("cô", "giang"), ("cô", "bắc"), ("bà", "hom"), ("ba", "ria"), ("ba", "chieu"), ("ba", "diem"),
                     ("ba", "den"), ("ong", "lanh"), ("co", "to"), ("anh", "son")})
_ACRONYMS = frozenset("cccd cmnd cmtnd ubnd hđnd bhxh bhyt gplx vneid mst sđt sdt ttp tthc dvc dvcqg cv qr otp pin atm".split())
# Common surnames, with their diacritics: a lower-case name after a title is recognised by them. Surnames
# that are also everyday words ("hồ" sơ, "mai" = tomorrow, "cao", "hà", "lâm" thời) are left out.
_SURNAMES = frozenset(
    "nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ ngô dương lý đinh trương lương trịnh đoàn quách kiều "
    "thân triệu vương nguyen tran pham hoang huynh phan bui trinh truong".split())
# Words that end a name typed in lower case: verbs, question and function words, procedure words.
_NOT_NAME = frozenset(
    "gì nào sao thế vậy bao nhiêu là thì mà có không ko k được bị và với của cho để ở tại trên dưới trong theo về từ đến "
    "khi nếu nhưng thủ tục giấy tờ hồ sơ đơn mẫu khai sinh tử đăng ký cần muốn xin hỏi làm đổi sửa cấp lại mới cũ sai "
    "đúng ạ ơi nhé nha à năm ngày tháng tuổi số mã đã đang sẽ mất chết qua đời đi nộp nhận rồi còn hay hoặc cũng vẫn "
    "chưa phải nên thường trú tạm vắng kết hôn ly nhà đất ạh vâng dạ xã phường huyện tỉnh thành phố quận "
    "gi nao the vay la thi ma co khong duoc bi va voi cua cho de o tai tren duoi trong ve tu den khi neu nhung thu tuc "
    "giay to ho so don mau khai dang ky can muon xin hoi lam doi sua cap lai moi cu dung oi nhe nha ngay thang tuoi "
    "ma da dang se mat chet di nop nhan roi con hay hoac cung chua phai nen xa phuong huyen tinh thanh pho quan".split())
_MAX_NAME_WORDS = 5


def mask(text: str) -> str:
    """`text` with phone and ID numbers, dossier codes, e-mails, names and street addresses replaced."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _DOSSIER.sub(DOSSIER, text)
    text = _ID_AFTER_WORD.sub(lambda m: m.group(1) + ID_NUMBER, text)
    text = _PHONE.sub(PHONE, text)
    text = _ID_GROUPED.sub(ID_NUMBER, text)
    text = _LONG_NUMBER.sub(ID_NUMBER, text)
    text = _mask_addresses(text)
    return _mask_names(text)


def _mask_addresses(text: str) -> str:
    """House numbers, alleys, hamlets and streets; neighbouring parts become one [ĐỊA CHỈ]."""
    for pattern in (_HOUSE, _ALLEY, _HAMLET):
        text = pattern.sub(ADDRESS, text)
    spans = []
    for street in _STREET.finditer(text):
        if street.start() > 0 and text[:street.start()].rstrip().lower().endswith("thành"):
            continue  # "Thành phố Hồ Chí Minh" with an odd space or case
        number = _STREET_NUMBER.match(text, street.end())
        end = number.end() if number else _name_end(text, street.end(), lower_ok=bool(street.group(1)), any_word=True)
        if end:
            spans.append((street.start(), end))
    for start, end in sorted(_merge(spans), reverse=True):
        text = text[:start] + ADDRESS + text[end:]
    return _ADDRESS_RUN.sub(ADDRESS, text)


def _mask_names(text: str) -> str:
    """Names after "tên là"/"họ tên" and after titles ("ông", "chị"...), relations and places excepted."""
    spans: list[tuple[int, int]] = []
    for cue in _STRONG_CUE.finditer(text):
        end = _name_end(text, cue.end(), lower_ok=True)
        if end:
            spans.append((cue.end(), end))
    for cue in _WEAK_CUE.finditer(text):
        end = _name_end(text, cue.end(), lower_ok=False)
        if end:
            spans.append((cue.end(), end))
    for title in _TITLE.finditer(text):
        first = _WORD_AT.match(text, title.end())
        if first and (title.group(1).lower(), first.group(1).lower()) in _PLACES:
            continue
        end = _name_end(text, title.end(), lower_ok=False)
        if end:
            spans.append((title.end(), end))
    for start, end in sorted(_merge(spans), reverse=True):
        text = text[:start] + NAME + text[end:]
    return text


def _name_end(text: str, position: int, lower_ok: bool, any_word: bool = False) -> int | None:
    """Where the name starting at `position` ends, or None when no name starts there.

    A name is a run of capitalised words; in lower case it is taken only after an explicit "tên là"
    (`lower_ok`) or when it starts with a common surname, and it stops at a word no name is made of.
    `any_word`: a street's name, where relation words are names too ("Bà Triệu", "Ông Ích Khiêm").
    """
    first = _WORD_AT.match(text, position)
    if first is None:
        return None
    word = first.group(1)
    if word.lower() in _ACRONYMS or word.lower() in _RELATIONS and not (lower_ok or any_word):
        return None
    capitalised = word[0].isupper()
    if not capitalised and not lower_ok and word.lower() not in _SURNAMES:
        return None
    if not capitalised and word.lower() in _NOT_NAME:
        return None
    end, count = first.end(), 1
    while count < _MAX_NAME_WORDS:
        following = _WORD_AT.match(text, end)
        if following is None:
            break
        nxt = following.group(1)
        if nxt.lower() in _ACRONYMS or (capitalised and not nxt[0].isupper()) or (not capitalised and nxt.lower() in _NOT_NAME):
            break
        if not capitalised and count >= 4:  # a lower-case name is at most surname, two middle names, given name
            break
        end, count = following.end(), count + 1
    return end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping (start, end) spans joined, so each stretch of text is replaced once."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
