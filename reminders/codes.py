"""Dossier codes as the one-stop software prints them on the receipt: 000.00.12.H12-240506-0001.

The parts are the receiving agency's code (digits and a province code such as H12), the day of receipt
as yymmdd and a number; the day must be a real date.
"""

from __future__ import annotations

import re
from datetime import date

# Strict: what a code must look like to be followed or stored.
_CODE = re.compile(r"(\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})-(\d{2})(\d{2})(\d{2})-(\d{4,5})")
# Loose: what looks like someone tried to type a code (found in free text, then checked strictly).
LOOSE = re.compile(r"(?<![\w.])\d{2,4}\.\d{1,3}\.\d{1,3}\.[A-Za-z]?\d{1,3}\s*-\s*\d{3,8}\s*-\s*\d{1,6}(?![\w-])")
EXAMPLE = "000.00.12.H12-240506-0001"


def normalize_code(text: str) -> str | None:
    """The code in its canonical form (upper case, no spaces), or None when it is not a dossier code."""
    candidate = re.sub(r"\s+", "", text or "").upper()
    match = _CODE.fullmatch(candidate)
    if not match:
        return None
    year, month, day = (int(match.group(i)) for i in (2, 3, 4))
    try:
        date(2000 + year, month, day)
    except ValueError:
        return None
    return candidate


def find_code(text: str) -> tuple[str | None, str | None]:
    """(canonical code, None) for a well-formed code in `text`; (None, what was typed) for a malformed one."""
    match = LOOSE.search(text or "")
    if match is None:
        return None, None
    typed = match.group(0)
    code = normalize_code(typed)
    return (code, None) if code else (None, re.sub(r"\s+", "", typed))


def mask_code(code: str) -> str:
    """The code with the day and most of the number hidden, for logs: 000.00.12.H12-******-**01."""
    match = re.fullmatch(r"(.*?)-(\d{6})-(\d+)", code or "")
    if match is None:
        return "***"
    number = match.group(3)
    return f"{match.group(1)}-******-{'*' * (len(number) - 2)}{number[-2:]}"


MIN_DIGITS = 4
MAX_DIGITS = 15  # a phone number with its country code, an ID number (12), a passport's digits


def last_four(value: object) -> str:
    """The last 4 digits of a phone or ID number as a source gives it ("0901 234 567", 901234567, "C1234567").

    Raises ValueError with a plain reason, never repeating the number (it is personal data: it must not
    reach an error list or a log)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("phải là số điện thoại hoặc số giấy tờ (chuỗi hoặc số).")  # noqa: TRY004 - a bad record's reason
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("không phải số điện thoại hoặc số giấy tờ.")
        value = int(value)  # a spreadsheet cell holding the number as a number
    digits = re.sub(r"\D", "", str(value))
    if len(digits) < MIN_DIGITS:
        raise ValueError(f"cần ít nhất {MIN_DIGITS} chữ số (số điện thoại, số CCCD, hoặc 4 số cuối của một trong hai).")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"quá {MAX_DIGITS} chữ số: không phải số điện thoại hay số giấy tờ.")
    return digits[-MIN_DIGITS:]
