"""Deep links that open one entry in the bot, and printable QR codes of them for the office's walls
(the inspections ask for "mã QR tra cứu nhanh hồ sơ mẫu và niêm yết TTHC")."""

from __future__ import annotations

import re
from pathlib import Path

import qrcode
from fpdf import FPDF

# Telegram's start parameter allows only A-Z, a-z, 0-9, "_" and "-" (up to 64 characters), so the
# dot of a national code travels as "_" and comes back in `entry_id_from_payload`.
_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CODE_PAYLOAD = re.compile(r"^(\d)_(\d{6})$")
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/Library/Fonts/Arial Unicode.ttf"),
    Path("C:/Windows/Fonts/arial.ttf"),
)


class LinkError(ValueError):
    """A link or sheet that cannot be made; the message says why."""


def payload_for(entry_id: str) -> str:
    payload = entry_id.replace(".", "_")
    if not _PAYLOAD.match(payload):
        raise LinkError(f"Mã {entry_id} không dùng được trong đường dẫn Telegram.")
    return payload


def entry_id_from_payload(payload: str) -> str:
    """The entry id a /start payload stands for ("1_001193" -> "1.001193"; slugs unchanged)."""
    match = _CODE_PAYLOAD.match(payload.strip())
    return f"{match.group(1)}.{match.group(2)}" if match else payload.strip()


def deep_link(bot_username: str, entry_id: str) -> str:
    if not bot_username:
        raise LinkError("Chưa đặt TELEGRAM_BOT_USERNAME (tên bot, vd motcua_xa_bot) nên chưa tạo được đường dẫn.")
    return f"https://t.me/{bot_username.lstrip('@')}?start={payload_for(entry_id)}"


def qr_png(link: str, path: Path) -> Path:
    image = qrcode.make(link, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=2)
    image.save(path)
    return path


def _font() -> Path:
    for candidate in FONT_CANDIDATES:
        if candidate.exists():
            return candidate
    raise LinkError("Không tìm thấy phông chữ có dấu tiếng Việt (DejaVuSans); cài gói fonts-dejavu-core rồi chạy lại.")


def a4_sheet(items: list[tuple[str, str, Path]], path: Path, office: str) -> Path:
    """An A4 PDF with one QR code per item (its name, then its note in brackets: "mã 1.001193"), six to a
    page, for printing."""
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(_font()))
    pdf.set_auto_page_break(False)
    columns, rows, cell_w, cell_h, margin_x, margin_y = 2, 3, 95.0, 90.0, 10.0, 12.0
    for index, (note, name, png) in enumerate(items):
        if index % (columns * rows) == 0:
            pdf.add_page()
            pdf.set_font("DejaVu", size=10)
            pdf.set_xy(margin_x, 4)
            pdf.cell(190, 6, f"{office} – quét mã để tra cứu thủ tục", align="C")
        slot = index % (columns * rows)
        x = margin_x + (slot % columns) * cell_w
        y = margin_y + (slot // columns) * cell_h
        pdf.image(str(png), x=x + (cell_w - 55) / 2, y=y, w=55, h=55)
        pdf.set_font("DejaVu", size=9)
        pdf.set_xy(x + 5, y + 57)
        pdf.multi_cell(cell_w - 10, 4.5, f"{name}\n({note})", align="C")
    pdf.output(str(path))
    return path
