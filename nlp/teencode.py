"""Chat abbreviations and teencode citizens use, mapped to standard Vietnamese.

Our own list: the administrative abbreviations of ../shared/kb/terms.yaml plus the everyday teencode
that is frequent in ViLexNorm (measured by `python bot.py eval`, which reports token accuracy on it).
Only unambiguous keys live here; a key that depends on its neighbours is in CONTEXT_SENSITIVE.
"""

from __future__ import annotations

from collections.abc import Callable

TEENCODE: dict[str, str] = {
    # negation / yes-no
    "ko": "không", "k": "không", "kh": "không", "khg": "không", "hok": "không",
    "khum": "không", "kg": "không", "khong": "không", "khom": "không", "hông": "không",
    "hổng": "không", "hem": "không", "hăm": "không", "kô": "không", "k0": "không",
    "dc": "được", "đc": "được", "duoc": "được", "đươc": "được", "dk": "được", "đk": "được", "đuợc": "được",
    "chx": "chưa", "ki": "ký", "kí": "ký", "chua": "chưa",
    # question words
    "j": "gì", "zì": "gì", "ji": "gì", "bn": "bao nhiêu", "bnh": "bao nhiêu", "bnhiu": "bao nhiêu",
    "nhiu": "nhiêu", "ntn": "như thế nào", "ntnao": "như thế nào", "s": "sao",
    "bg": "bao giờ", "o": "ở",
    # pronouns and address
    "t": "tôi", "tui": "tôi", "toi": "tôi", "mk": "mình", "mik": "mình", "mh": "mình", "mjk": "mình",
    "e": "em", "a": "anh", "c": "chị", "ng": "người", "ngta": "người ta", "ngừi": "người",
    "ad": "admin", "ck": "chồng", "vk": "vợ", "bme": "bố mẹ", "bm": "bố mẹ", "ông bà": "ông bà",
    # particles and frequent words
    "r": "rồi", "rùi": "rồi", "roi": "rồi", "gòi": "rồi", "òi": "rồi", "v": "vậy", "z": "vậy",
    "zậy": "vậy", "zị": "vậy", "dị": "vậy", "vay": "vậy", "zay": "vậy", "vs": "với", "voi": "với",
    "cx": "cũng", "cug": "cũng", "lm": "làm", "lun": "luôn", "nx": "nữa", "ms": "mới", "trc": "trước",
    "bt": "biết", "bik": "biết", "bít": "biết", "h": "giờ", "thui": "thôi", "mún": "muốn", "mog": "mong",
    "xog": "xong", "dùm": "giùm", "nhìu": "nhiều", "đt": "điện thoại", "dt": "điện thoại",
    "sdt": "số điện thoại", "sđt": "số điện thoại", "onl": "online", "tks": "cảm ơn", "thanks": "cảm ơn",
    "thank": "cảm ơn", "camon": "cảm ơn", "nc": "nước", "trg": "trường", "nhg": "những",
    "mn": "mọi người", "mng": "mọi người", "ah": "ạ", "ak": "ạ", "nhé": "nhé", "hnay": "hôm nay",
    "hqua": "hôm qua", "ks": "khai sinh", "sk": "sức khỏe", "hs": "hồ sơ", "hđ": "hợp đồng", "hd": "hợp đồng",
    "vp": "văn phòng", "ny": "người yêu", "cty": "công ty", "gđ": "gia đình", "gd": "gia đình", "tk": "tài khoản",
    "sdd": "sổ đỏ", "bl": "bằng lái", "gt": "giấy tờ", "gxn": "giấy xác nhận", "gcks": "giấy chứng sinh",
    # administrative abbreviations (terms.yaml)
    "cccd": "căn cước công dân", "cc": "căn cước", "ccđt": "căn cước điện tử", "ccdt": "căn cước điện tử",
    "cmnd": "chứng minh nhân dân", "cmt": "chứng minh thư", "cmtnd": "chứng minh nhân dân",
    "gplx": "giấy phép lái xe", "bhyt": "bảo hiểm y tế", "bhxh": "bảo hiểm xã hội", "bh": "bảo hiểm",
    "hkd": "hộ kinh doanh", "gpkd": "giấy phép kinh doanh", "đkkd": "đăng ký kinh doanh",
    "dkkd": "đăng ký kinh doanh", "gpxd": "giấy phép xây dựng", "lltp": "lý lịch tư pháp",
    "dkkh": "đăng ký kết hôn", "đkkh": "đăng ký kết hôn", "dkks": "đăng ký khai sinh",
    "đkks": "đăng ký khai sinh", "gks": "giấy khai sinh", "tlks": "trích lục khai sinh",
    "gcn": "giấy chứng nhận", "qsdđ": "quyền sử dụng đất", "qsdd": "quyền sử dụng đất",
    "xntthn": "xác nhận tình trạng hôn nhân", "ubnd": "ủy ban nhân dân", "ub": "ủy ban",
    "tthc": "thủ tục hành chính", "dvc": "dịch vụ công", "dvcqg": "dịch vụ công quốc gia",
    "dvctt": "dịch vụ công trực tuyến", "bpmc": "bộ phận một cửa", "shk": "sổ hộ khẩu",
    "pasport": "hộ chiếu", "passport": "hộ chiếu", "passpord": "hộ chiếu",
    "vneid": "vneid", "vnid": "vneid", "vneld": "vneid", "vssid": "vssid", "bđ": "bưu điện",
    "vnpost": "bưu điện", "cax": "công an xã", "csdl": "cơ sở dữ liệu", "csdlqg": "cơ sở dữ liệu quốc gia",
    "đdđt": "định danh điện tử", "đddt": "định danh điện tử", "dddt": "định danh điện tử", "cks": "chữ ký số",
    "cmnd9": "chứng minh nhân dân 9 số", "ctv": "cộng tác viên", "tp": "thành phố",
    # abbreviations in citizens' questions about insurance, land, business, security, trade
    "antt": "an ninh trật tự", "bhtn": "bảo hiểm thất nghiệp", "bhtnlđ": "bảo hiểm tai nạn lao động",
    "bhtnld": "bảo hiểm tai nạn lao động", "bnn": "bệnh nghề nghiệp", "tnlđ": "tai nạn lao động",
    "tnld": "tai nạn lao động", "c/o": "giấy chứng nhận xuất xứ", "gcnqsdđ": "giấy chứng nhận quyền sử dụng đất",
    "gcnqsdd": "giấy chứng nhận quyền sử dụng đất", "qsd": "quyền sử dụng", "qsh": "quyền sở hữu",
    "gcnkh": "giấy chứng nhận kết hôn", "gcnđkdn": "giấy chứng nhận đăng ký doanh nghiệp",
    "gcndkdn": "giấy chứng nhận đăng ký doanh nghiệp", "đkdn": "đăng ký doanh nghiệp", "dkdn": "đăng ký doanh nghiệp",
    "dn": "doanh nghiệp", "dnnvv": "doanh nghiệp nhỏ và vừa", "htx": "hợp tác xã", "tnhh": "trách nhiệm hữu hạn",
    "ctcp": "công ty cổ phần", "vpđd": "văn phòng đại diện", "vpdd": "văn phòng đại diện", "mst": "mã số thuế",
    "tncn": "thu nhập cá nhân", "tndn": "thu nhập doanh nghiệp", "gtgt": "giá trị gia tăng", "pccc": "phòng cháy chữa cháy",
    "attp": "an toàn thực phẩm", "vsattp": "vệ sinh an toàn thực phẩm", "nlđ": "người lao động", "nld": "người lao động",
    "nsdlđ": "người sử dụng lao động", "nsdld": "người sử dụng lao động", "hđlđ": "hợp đồng lao động",
    "hdld": "hợp đồng lao động", "gplđ": "giấy phép lao động", "gpld": "giấy phép lao động", "xklđ": "xuất khẩu lao động",
    "xkld": "xuất khẩu lao động", "lđtbxh": "lao động thương binh và xã hội", "ldtbxh": "lao động thương binh và xã hội",
    "gpmb": "giải phóng mặt bằng", "tđc": "tái định cư", "tnmt": "tài nguyên và môi trường", "hđnd": "hội đồng nhân dân",
    "hdnd": "hội đồng nhân dân", "xnk": "xuất nhập khẩu", "xnc": "xuất nhập cảnh", "gtvt": "giao thông vận tải",
    "csgt": "cảnh sát giao thông", "atgt": "an toàn giao thông", "vpđkđđ": "văn phòng đăng ký đất đai",
    "vpdkdd": "văn phòng đăng ký đất đai", "bđs": "bất động sản", "bds": "bất động sản", "kcn": "khu công nghiệp",
    "nvqs": "nghĩa vụ quân sự", "hgđ": "hộ gia đình", "hgd": "hộ gia đình", "bv": "bệnh viện", "ttyt": "trung tâm y tế",
    "xm": "xe máy", "oto": "ô tô", "kt3": "sổ tạm trú", "cbcc": "cán bộ công chức", "ccvc": "công chức viên chức",
    "tphcm": "thành phố hồ chí minh", "hcm": "hồ chí minh",
    # seen unexpanded in the project's own and the real questions
    "đki": "đăng ký", "dki": "đăng ký", "kq": "kết quả", "sv": "sinh viên", "nv": "nhân viên", "cq": "cơ quan",
    "lđ": "lao động", "ktra": "kiểm tra", "noxh": "nhà ở xã hội", "hđđt": "hóa đơn điện tử", "hddt": "hóa đơn điện tử",
    "cchn": "chứng chỉ hành nghề", "thpt": "trung học phổ thông", "thcs": "trung học cơ sở",
    "shcn": "sở hữu công nghiệp", "gp": "giấy phép",
    # Kept as typed: Trung tâm Hành chính công, no slip of TTHC ("bhxhh" is one of BHXH).
    "tthcc": "tthcc",
    # frequent typos of procedure words (terms.yaml, loi_go_thuong_gap)
    "căng": "căn", "cướt": "cước", "cuot": "cuoc", "khaisinh": "khai sinh", "hokhau": "hộ khẩu",
    "khầu": "khẩu", "chíu": "chiếu", "chiu": "chiếu", "sin": "sinh", "xinh": "sinh",
}

def _dk(previous: str | None, following: str | None) -> str:
    """"đk" is "được" at the end of a clause ("làm online đk ko") and "đăng ký" before a noun."""
    if following is None or following in _CLAUSE_END:
        return "được"
    if previous in {"có", "co", "không", "ko", "k", "chưa", "chua", "mới", "moi"} and following in _VERBS:
        return "được"
    return "đăng ký"


def _a(previous: str | None, following: str | None) -> str:
    """A lone "a" ends a polite sentence ("ạ") far more often than it means "anh" in our questions."""
    if following is None or previous is not None and following in _CLAUSE_END:
        return "ạ"
    return "anh"


def _tam_chu(previous: str | None, following: str | None) -> str:
    return "trú" if previous in {"tạm", "tam", "thường", "thuong", "cư", "cu", "lưu", "luu"} else "chú"


_CLAUSE_END = {
    "không", "ko", "k", "kh", "khong", "hok", "khum", "hông", "chưa", "chua", "rồi", "r", "ạ", "a", "ah",
    "nha", "nhé", "nhe", "vậy", "v", "z", "hả", "ha", "hem", "đâu", "dau", "chứ", "chu", "thì", "thi",
    "?", ",", ".", "!", ";", ":", "…",
}
_VERBS = {"làm", "lam", "nộp", "nop", "nhận", "nhan", "đổi", "doi", "cấp", "cap", "gửi", "gui"}

def _hk(previous: str | None, following: str | None) -> str:
    """"hk" is "hộ khẩu" after a residence verb ("nhập hk", "xóa hk"), else the chat "không"."""
    return "hộ khẩu" if previous in _RESIDENCE_VERBS or following in {"cho", "ve", "về", "vao", "vào"} else "không"


def _hc(previous: str | None, following: str | None) -> str:
    """"hc" is "hộ chiếu" in our questions ("mất hc", "làm hc"), "học" only after "đi"/"việc"."""
    return "học" if previous in {"đi", "di", "việc", "viec", "đang", "dang"} else "hộ chiếu"


_RESIDENCE_VERBS = {"nhập", "nhap", "xóa", "xoá", "xoa", "cắt", "cat", "chuyển", "chuyen", "sổ", "so", "tách", "tach", "làm", "lam"}

_POLICE_OF = {"xã", "xa", "phường", "phuong", "huyện", "huyen", "tỉnh", "tinh", "quận", "quan", "thị", "thi"}


def _ca(previous: str | None, following: str | None) -> str:
    """"ca" is the police only before its level ("ca phường"); unaccented it is "cá nhân", "ca sĩ"..."""
    return "công an" if following in _POLICE_OF else "ca"


def _hong(previous: str | None, following: str | None) -> str:
    """"hong" is the chat "không", except after "bị" where it is an unaccented "hỏng" ("thẻ bị hong")."""
    return "hong" if previous in {"bị", "bi", "hư", "hu"} else "không"


def _antt(previous: str | None, following: str | None) -> str:
    """"giấy ANTT" is what everyone calls the certificate of meeting security and order conditions."""
    return "chứng nhận đủ điều kiện về an ninh trật tự" if previous in {"giấy", "giay"} else "an ninh trật tự"


CONTEXT_SENSITIVE: dict[str, Callable[[str | None, str | None], str]] = {
    "ca": _ca, "hong": _hong, "antt": _antt,
    "dk": _dk, "đk": _dk, "a": _a, "chú": _tam_chu, "chu": _tam_chu, "hk": _hk, "hc": _hc,
}


# Abbreviations are typed fast and often slip: two letters swapped ("bhhx"), a letter doubled ("bhxhh"), "d" for
# "đ" ("cccđ"). Only these slips are read back, only of abbreviations without a vowel (a slip of a word with
# vowels may be another word: "chui" is no "chiu"), and only where one abbreviation alone gives the slip: a word
# one letter off in any other way is as likely another abbreviation the list lacks (TTLT is no TTYT).
_MIN_TYPO_LENGTH = 4
_VOWELS = frozenset("aeiouàáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữự")  # "y" of BHYT is no vowel here


def _slips(key: str) -> set[str]:
    """The ways one abbreviation is mistyped that are read back (the abbreviation itself among them)."""
    swapped = {key[:i] + key[i + 1] + key[i] + key[i + 2:] for i in range(len(key) - 1) if key[i] != key[i + 1]}
    doubled = {key[:i] + key[i] + key[i:] for i in range(len(key))}
    return swapped | doubled | {key.replace("đ", "d"), key.replace("d", "đ")}


def _slip_table() -> dict[str, str]:
    """Each slip that only one vowel-less abbreviation of four letters or more can give, and that abbreviation."""
    owners: dict[str, set[str]] = {}
    for key in TEENCODE:
        if len(key) >= _MIN_TYPO_LENGTH and key.isalpha() and not _VOWELS.intersection(key):
            for slip in _slips(key) - {key}:
                owners.setdefault(slip, set()).add(key)
    return {slip: next(iter(keys)) for slip, keys in owners.items()
            if len(keys) == 1 and slip not in TEENCODE and slip not in CONTEXT_SENSITIVE}


_SLIPS = _slip_table()


def mistyped_abbreviation(token: str) -> str | None:
    """The abbreviation a word is a slip of ("bhhx" -> "bhxh"), if exactly one."""
    return _SLIPS.get(token)
