"""Where an answer is written: an entry's facts turned into a short, polite Vietnamese message.

The aspect asked comes first (a fee question starts with the fee), then an offer of the other aspects.

An entry imported from the national catalogue (it carries a provenance note, see knowledge.dvcqg) is
answered with what makes a raw record readable: a text shared by several channels said once, documents
needed only in some cases listed apart from those always required, a caveat where the record still
names bodies abolished on 01/07/2025, and one line saying where the answer comes from. Curated entries
(starter data, staff) are answered exactly as before.
"""

from __future__ import annotations

from handlers.buttons import AspectButton, ButtonDataError
from knowledge.dvcqg import (
    OUTDATED_CAVEAT,
    is_conditional,
    is_provenance_note,
    national_code,
    outdated_mentions,
    sentence_key,
)
from knowledge.schema import Channel, Document, DocumentForm, Entry, OnlineLevel
from nlp.aspects import Aspect

ASPECT_LABELS: dict[Aspect, str] = {
    Aspect.OVERVIEW: "Tổng quan",
    Aspect.DOCUMENTS: "Giấy tờ cần nộp",
    Aspect.FEE: "Lệ phí",
    Aspect.DURATION: "Thời gian giải quyết",
    Aspect.PLACE: "Nơi nộp",
    Aspect.ONLINE: "Nộp trực tuyến",
    Aspect.POSTAL: "Qua bưu điện",
    Aspect.STEPS: "Các bước",
    Aspect.CONDITIONS: "Điều kiện, lưu ý",
    Aspect.LEGAL: "Căn cứ pháp lý",
}
# The order aspects are offered in after an answer: what citizens ask most first.
OFFER_ORDER = [Aspect.DOCUMENTS, Aspect.FEE, Aspect.DURATION, Aspect.PLACE, Aspect.ONLINE, Aspect.POSTAL,
               Aspect.STEPS, Aspect.CONDITIONS, Aspect.LEGAL, Aspect.OVERVIEW]

_FORM_LABELS = {
    DocumentForm.ORIGINAL: "bản chính",
    DocumentForm.COPY: "bản sao",
    DocumentForm.CERTIFIED_COPY: "bản sao có chứng thực",
    DocumentForm.PRESENT: "xuất trình, không phải nộp",
    DocumentForm.FORM: "theo mẫu",
    DocumentForm.ELECTRONIC: "bản điện tử",
}
_CHANNEL_LABELS = {Channel.IN_PERSON: "Nộp trực tiếp", Channel.ONLINE: "Nộp trực tuyến", Channel.POSTAL: "Qua bưu điện"}
_CHANNEL_WORDS = {Channel.IN_PERSON: "trực tiếp", Channel.ONLINE: "trực tuyến", Channel.POSTAL: "bưu"}
_MAX_ITEMS = 8
_MAX_CONDITIONAL_ITEMS = 5
CONDITIONAL_DOCUMENTS_HEAD = "Nộp thêm nếu thuộc trường hợp:"
PROVENANCE_LINE = ("ℹ️ Theo Cơ sở dữ liệu quốc gia về TTHC, mã {code}. Để chắc chắn, bạn hỏi Bộ phận Một cửa "
                   "(gõ /lienhe để xem cách liên hệ).")


def display_name(entry: Entry) -> str:
    return entry.short_name or entry.name


def money(amount: int) -> str:
    return "miễn phí" if amount == 0 else f"{amount:,}".replace(",", ".") + " đồng"


def _bullets(items: list[str], numbered: bool = False) -> str:
    shown = items[:_MAX_ITEMS]
    lines = [f"{i}. {item}" if numbered else f"• {item}" for i, item in enumerate(shown, 1)]
    if len(items) > len(shown):
        lines.append(f"… và {len(items) - len(shown)} mục khác (hỏi cán bộ Một cửa để biết đủ).")
    return "\n".join(lines)


def _with_channel(channel: Channel, text: str) -> str:
    """Prefix the channel unless the text already names it ("Nộp trực tuyến: 7.000 đồng")."""
    label = _CHANNEL_LABELS.get(channel)
    if not label or _CHANNEL_WORDS[channel] in text.lower():
        return text
    return f"{label}: {text}"


def _by_channel(items: list[tuple[Channel, str]]) -> list[str]:
    """One line per distinct text, naming the channels that share it; none when every channel shares one
    (a national record repeats the same fee or time for each channel)."""
    channels_of: dict[str, list[Channel]] = {}
    texts: dict[str, str] = {}
    for channel, text in items:
        key = sentence_key(text)  # the same text in another case, spacing or punctuation is the same text
        texts.setdefault(key, text)
        channels_of.setdefault(key, []).append(channel)
    if len(channels_of) == 1 and len(items) > 1:
        return list(texts.values())
    lines = []
    for key, channels in channels_of.items():
        text = texts[key]
        labels = [_CHANNEL_LABELS[c] for c in channels if c in _CHANNEL_LABELS]
        if len(channels) == 1 or len(labels) < len(channels):
            lines.extend(_with_channel(channel, text) for channel in channels[:1])
        else:
            lines.append(", ".join([labels[0], *(label.lower() for label in labels[1:])]) + f": {text}")
    return lines


def fee_section(entry: Entry) -> str:
    if not entry.fees:
        return "Hiện tôi chưa có thông tin chắc chắn về lệ phí của thủ tục này. Bạn vui lòng hỏi Bộ phận Một cửa để được báo đúng mức."
    if national_code(entry):
        lines = _by_channel([(f.channel, f.text) for f in entry.fees])
    else:
        lines = [_with_channel(f.channel, f.text) for f in entry.fees]
    online = [f.amount_vnd for f in entry.fees if f.channel == Channel.ONLINE and f.amount_vnd is not None]
    direct = [f.amount_vnd for f in entry.fees if f.channel in (Channel.IN_PERSON, Channel.ANY) and f.amount_vnd is not None]
    if online and direct and min(online) < min(direct):
        lines.append(f"👉 Nộp trực tuyến rẻ hơn: {money(min(online))} thay vì {money(min(direct))}.")
    exemptions = {f.exemptions for f in entry.fees if f.exemptions}
    if national_code(entry):  # one exemption, whatever its case, spacing or brackets in each channel's copy
        exemptions = set({sentence_key(e): e for e in sorted(exemptions, reverse=True)}.values())
    lines.extend(f"Miễn, giảm: {e}" for e in sorted(exemptions))
    if any(f.set_by_province for f in entry.fees) and not any("tỉnh" in f.text for f in entry.fees):
        lines.append("Mức thu cụ thể do Hội đồng nhân dân tỉnh quy định; bạn xem trên Cổng Dịch vụ công của tỉnh hoặc hỏi Bộ phận Một cửa.")
    return "\n".join(lines)


def _document_line(doc: Document) -> str:
    details = [d for d in (_FORM_LABELS.get(doc.form) if doc.form else None, f"{doc.count} bản" if doc.count and doc.count > 1 else None) if d]
    text = doc.name + (f" ({', '.join(details)})" if details else "")
    if doc.note:
        text += f" – {doc.note}"
    return text


def documents_section(entry: Entry) -> str:
    if not entry.documents:
        return "Việc này không cần nộp giấy tờ riêng." if entry.kind == "topic" else "Hiện tôi chưa có danh sách giấy tờ của thủ tục này; bạn vui lòng hỏi Bộ phận Một cửa."
    if not national_code(entry):
        return _bullets([_document_line(doc) for doc in entry.documents], numbered=True)
    # a national record's documents needed only in some cases ("nếu ...") come apart, after those always required
    required = [_document_line(doc) for doc in entry.documents if not is_conditional(doc)]
    conditional = [_document_line(doc) for doc in entry.documents if is_conditional(doc)]
    blocks = [_bullets(required, numbered=True)] if required else []
    if conditional:
        shown = conditional[:_MAX_CONDITIONAL_ITEMS]
        more = [f"… và {len(conditional) - len(shown)} trường hợp khác (hỏi cán bộ Một cửa để biết đủ)."] if len(conditional) > len(shown) else []
        blocks.append("\n".join([CONDITIONAL_DOCUMENTS_HEAD, *(f"• {line}" for line in shown), *more]))
    return "\n".join(blocks)


def duration_section(entry: Entry) -> str:
    if not entry.durations:
        return "Hiện tôi chưa có thông tin về thời gian giải quyết; Bộ phận Một cửa sẽ ghi ngày hẹn trả trên giấy biên nhận."
    if national_code(entry):
        return "\n".join(_by_channel([(d.channel, d.text) for d in entry.durations]))
    return "\n".join(_with_channel(d.channel, d.text) for d in entry.durations)


def place_section(entry: Entry) -> str:
    if not entry.places:
        return "Bạn liên hệ Bộ phận Một cửa (Trung tâm Phục vụ hành chính công) cấp xã nơi bạn cư trú để được hướng dẫn."
    lines = []
    for place in entry.places:
        line = place.agency + (f" ({place.level})" if place.level and place.level.lower() not in place.agency.lower() else "")
        if place.note:
            line += f". {place.note}"
        lines.append(line)
    return _bullets(lines) if len(lines) > 1 else lines[0]


def online_section(entry: Entry) -> str:
    online = entry.online
    portals = ", ".join(online.portals)
    where = f" tại {portals}" if portals else ""
    lead = {
        OnlineLevel.FULL: f"Có thể nộp trực tuyến toàn trình (làm hết trên mạng, không phải đến nộp){where}.",
        OnlineLevel.PARTIAL: f"Có thể nộp trực tuyến một phần{where}: nộp hồ sơ trên mạng nhưng vẫn phải đến cơ quan ở một bước (nộp bản giấy, đối chiếu hoặc nhận kết quả).",
        OnlineLevel.NONE: "Thủ tục này hiện chưa nộp trực tuyến được; bạn nộp trực tiếp hoặc qua bưu điện (nếu được phép).",
        OnlineLevel.UNKNOWN: f"Hiện tôi chưa có thông tin chắc chắn về việc nộp trực tuyến{(' (có thể xem' + where + ')') if portals else ''}.",
    }[online.level]
    return lead + (f"\n{online.note}" if online.note else "")


def postal_section(entry: Entry) -> str:
    postal = entry.postal
    parts = []
    if postal.submit is True:
        parts.append("Được gửi hồ sơ qua bưu điện (bưu chính công ích).")
    elif postal.submit is False:
        parts.append("Không gửi hồ sơ qua bưu điện được; bạn phải đến nộp trực tiếp.")
    if postal.receive_result is True:
        parts.append("Có thể đăng ký nhận kết quả tại nhà qua bưu điện (trả cước theo giá của bưu điện).")
    elif postal.receive_result is False:
        parts.append("Kết quả không gửi qua bưu điện; bạn nhận trực tiếp.")
    if not parts:
        parts.append("Hiện tôi chưa có thông tin chắc chắn về việc nộp hoặc nhận kết quả qua bưu điện cho việc này; bạn vui lòng hỏi Bộ phận Một cửa.")
    if postal.note:
        parts.append(postal.note)
    return "\n".join(parts)


def steps_section(entry: Entry) -> str:
    return _bullets(entry.steps, numbered=True) if entry.steps else "Hiện tôi chưa có hướng dẫn từng bước cho việc này; bạn vui lòng hỏi Bộ phận Một cửa."


def conditions_section(entry: Entry) -> str:
    items = entry.conditions or [note for note in entry.notes if not is_provenance_note(note)]
    return _bullets(items) if items else "Không có điều kiện gì đặc biệt ngoài giấy tờ cần nộp."


def legal_section(entry: Entry) -> str:
    return _bullets(entry.legal_basis) if entry.legal_basis else "Hiện tôi chưa có danh sách văn bản pháp lý cho việc này."


def _national_summary(entry: Entry) -> str:
    """A national record's summary ("<name>. Cơ quan thực hiện: X. Lĩnh vực: Y.") without what the overview
    already says: the name (the title) and the agency (the place line)."""
    summary = entry.summary
    agency, field = summary.find("Cơ quan thực hiện: "), summary.find("Lĩnh vực: ")
    parts = [i for i in (agency, field) if i >= 0]
    name_end = min(parts) if parts else len(summary)
    if summary[:name_end].strip().rstrip(".")[:40] == display_name(entry).strip().rstrip(".")[:40]:  # the name, maybe shortened
        summary = summary[name_end:]
        agency, field = summary.find("Cơ quan thực hiện: "), summary.find("Lĩnh vực: ")
    if entry.places and agency == 0:
        summary = summary[field:] if field >= 0 else ""
    return summary.strip()


def overview_section(entry: Entry) -> str:
    lines = [_national_summary(entry) if national_code(entry) else entry.summary]
    lines = [line for line in lines if line]
    if entry.kind == "topic":
        if entry.steps:
            lines.append(_bullets(entry.steps, numbered=True))
        if entry.notes:
            lines.append(entry.notes[0])
        return "\n".join(lines)
    documents = entry.documents
    if national_code(entry):  # the main documents are those always required
        documents = [d for d in documents if not is_conditional(d)] or documents
    if documents:
        names = [d.name for d in documents[:3]]
        more = f" (và {len(entry.documents) - 3} giấy tờ khác)" if len(entry.documents) > 3 else ""
        lines.append("📄 Giấy tờ chính: " + "; ".join(names) + more + ".")
    if entry.fees:
        lines.append("💰 Lệ phí: " + entry.fees[0].text)
    if entry.durations:
        lines.append("⏱ Thời gian: " + entry.durations[0].text)
    if entry.places:
        lines.append("📍 Nơi nộp: " + entry.places[0].agency)
    if entry.online.level in (OnlineLevel.FULL, OnlineLevel.PARTIAL):
        lines.append("🌐 " + online_section(entry).split("\n")[0])
    return "\n".join(lines)


SECTIONS = {
    Aspect.OVERVIEW: overview_section,
    Aspect.DOCUMENTS: documents_section,
    Aspect.FEE: fee_section,
    Aspect.DURATION: duration_section,
    Aspect.PLACE: place_section,
    Aspect.ONLINE: online_section,
    Aspect.POSTAL: postal_section,
    Aspect.STEPS: steps_section,
    Aspect.CONDITIONS: conditions_section,
    Aspect.LEGAL: legal_section,
}


def _topic_tells(entry: Entry, aspect: Aspect) -> bool:
    """Whether a topic (an explainer: paying fees online, postal filing) has something of its own on an aspect;
    its steps are in its overview."""
    return {
        Aspect.DOCUMENTS: bool(entry.documents), Aspect.FEE: bool(entry.fees), Aspect.DURATION: bool(entry.durations),
        Aspect.PLACE: bool(entry.places), Aspect.ONLINE: entry.online.level != OnlineLevel.UNKNOWN,
        Aspect.POSTAL: entry.postal.submit is not None or entry.postal.receive_result is not None,
        Aspect.CONDITIONS: bool(entry.conditions), Aspect.LEGAL: bool(entry.legal_basis),
    }.get(aspect, False)


def write_answer(entry: Entry, aspects: tuple[Aspect, ...]) -> str:
    """The answer text: title, the asked aspects in order, then what else can be asked."""
    aspects = aspects or (Aspect.OVERVIEW,)
    if entry.kind == "topic":
        # A topic is itself the answer: "thanh toán lệ phí online bằng cách nào" asks the online-payment topic
        # about "online", which all of it explains; its empty online-filing field said "no information".
        aspects = tuple(dict.fromkeys(a if _topic_tells(entry, a) else Aspect.OVERVIEW for a in aspects))
    blocks = [f"📋 {display_name(entry)}"]
    for aspect in aspects:
        title = "" if aspect == Aspect.OVERVIEW else f"{ASPECT_LABELS[aspect]}:\n"
        blocks.append(title + SECTIONS[aspect](entry))
    code = national_code(entry)
    if code:  # a raw record's answer: a caveat where it predates 01/07/2025, and where it comes from
        if outdated_mentions("\n".join(blocks)):
            blocks.append(OUTDATED_CAVEAT)
        blocks.append(PROVENANCE_LINE.format(code=code))
    others = [ASPECT_LABELS[a].lower() for a in OFFER_ORDER
              if a not in aspects and a != Aspect.OVERVIEW and (entry.kind != "topic" or _topic_tells(entry, a))][:6]
    if others:
        blocks.append("Bạn có thể hỏi thêm về: " + ", ".join(others) + ".")
    return "\n\n".join(blocks)


def aspect_buttons_data(entry_id: str, aspects: tuple[Aspect, ...], limit: int | None = None) -> list[tuple[str, str]]:
    """(label, button data) for the aspects not yet answered, to offer as buttons; the first `limit` of them
    (only those shown are packed: every answer offers some, and packing is most of what the buttons cost)."""
    out: list[tuple[str, str]] = []
    for aspect in OFFER_ORDER:
        if limit is not None and len(out) >= limit:
            break
        if aspect not in aspects:
            try:
                out.append((ASPECT_LABELS[aspect], AspectButton(entry_id, aspect).pack()))
            except ButtonDataError:
                pass  # an over-long id gets no buttons
    return out
