"""The knowledge-base audit (`bot.py kb audit`): what the answers of every entry say, checked against the
standard the curated entries meet.

Every entry is answered for every aspect exactly as a citizen would get it (handlers.answers), and each
answer is checked for:

- `outdated`: it names "cấp huyện", "thị trấn" or "Sổ hộ khẩu" without the current rule on the same line
  or the caveat that the record predates 01/07/2025 (legal titles are names, not claims: not checked);
- `repeated`: a sentence said twice in one answer;
- `fee`: a procedure's fee text with no amount (a figure, or free), no word on who sets it (the province),
  and no pointer to who tells the amount;
- `conditional`: a document needed only in some cases ("Trường hợp X thì nộp Y", "Y trong trường hợp X")
  listed among those always required, without its condition set apart ("nếu ...", "Khi X: Y");
- `unsourced`: a figure (money, percentage, time) that appears nowhere in the entry's facts (for national
  records read from their file: nowhere in the record itself);
- `provenance`: an entry imported from the national catalogue that does not say so (imported by an older
  version: importing the file again adds it).

Pure functions of the entries; the command reads them from the database or a file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from handlers.answers import PROVENANCE_LINE, write_answer
from knowledge.dvcqg import (
    OUTDATED_CAVEAT,
    national_code,
    outdated_mentions,
    sentence_key,
    split_condition,
    split_sentences,
)
from knowledge.schema import Document, Entry
from nlp.aspects import Aspect

KINDS: dict[str, str] = {
    "outdated": "nhắc cấp huyện / thị trấn / Sổ hộ khẩu mà không có quy định hiện hành hay lưu ý",
    "repeated": "câu lặp lại trong một câu trả lời",
    "fee": "lệ phí không có số tiền, không nói ai quy định mức thu",
    "conditional": "giấy tờ có điều kiện bị liệt kê như luôn phải nộp",
    "unsourced": "con số không có nguồn trong dữ liệu của mục",
    "provenance": "mục nhập từ CSDL quốc gia không ghi nguồn (nhập lại tệp để cập nhật)",
}
OUTDATED_TERMS = ("cấp huyện", "thị trấn", "sổ hộ khẩu")
MIN_REPEATED_CHARS = 20  # "Miễn lệ phí" or "7 ngày làm việc" may rightly recur, once per channel

_MONEY_OR_PERCENT = re.compile(
    r"(?<![\d/.,])(?P<num>\d{1,3}(?:[.,]\d{3})+|\d+(?:,\d+)?)\s*(?:triệu|tỷ|nghìn|ngàn)?\s*(?:đồng|VNĐ|VND|đ(?![^\W\d_])|USD|%)"
    r"|(?<![\d/.,])(?P<grouped>\d{1,3}(?:\.\d{3})+)(?![\d.,])",
    re.IGNORECASE,
)
_TIME = re.compile(r"(?<![\d/.,])(?P<num>\d+(?:[.,]\d+)?)\s*(?:ngày làm việc|ngày|giờ|tháng|năm|phút|tuần)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SAYS_FREE = re.compile(r"\bmiễn\b|không thu|không mất|chưa (?:có )?quy định|không có lệ phí|0 đồng", re.IGNORECASE)
_SAYS_WHO = re.compile(r"HĐND|Hội đồng nhân dân|tỉnh (?:quyết định|quy định)|do tỉnh|hỏi |xem trên|liên hệ", re.IGNORECASE)
# a leading label a line may carry ("Nộp trực tuyến: ", "💰 Lệ phí: ", "3. ", "• "): the sentence is what follows
_LABEL = re.compile(
    r"^(?:[•\-+*]\s*|\d{1,2}\.\s+|[^\w\s]{1,3}\s*)?(?:(?:Nộp trực tuyến|Nộp trực tiếp|Qua bưu điện|Lệ phí|Phí, lệ phí|Phí|"
    r"Thời gian|Nơi nộp|Giấy tờ chính)(?:,\s*[^:]{1,40})?\s*:\s*)*",
    re.IGNORECASE,
)
_CONDITION_COLON = re.compile(r"^(?:Trong trường hợp|Đối với trường hợp|Trường hợp|Nếu|Khi|Đối với)\b[^:]{1,200}:\s*\S", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    entry_id: str
    kind: str
    detail: str
    aspects: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" [{', '.join(self.aspects)}]" if self.aspects else ""
        return f"{self.entry_id}{where}: {self.detail}"


@dataclass
class AuditReport:
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)

    def by_kind(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {kind: [] for kind in KINDS}
        for finding in self.findings:
            grouped[finding.kind].append(finding)
        return grouped

    def counts(self) -> dict[str, int]:
        """Findings per kind, and per outdated term ("outdated:cấp huyện", ...)."""
        counts = {kind: len(found) for kind, found in self.by_kind().items()}
        for term in OUTDATED_TERMS:
            counts[f"outdated:{term}"] = sum(f.kind == "outdated" and f.detail.startswith(f'"{term}"') for f in self.findings)
        return counts

    def entries_with(self, kind: str) -> int:
        return len({f.entry_id for f in self.findings if f.kind == kind})

    @property
    def clean(self) -> bool:
        return not self.findings


# -- the checks ---------------------------------------------------------------------------------


def _answers(entry: Entry) -> dict[Aspect, str]:
    return {aspect: write_answer(entry, (aspect,)) for aspect in Aspect}


def _claims(entry: Entry, aspect: Aspect, answer: str) -> str:
    """The answer without the lines that name legal documents (a title is a name, not a claim)."""
    if aspect is not Aspect.LEGAL:
        return answer
    titles = {f"• {title}" for title in entry.legal_basis}
    return "\n".join(line for line in answer.split("\n") if line not in titles)


def _term(mention: str) -> str:
    mention = " ".join(mention.casefold().split())
    return next((term for term in OUTDATED_TERMS if term in mention), "cấp huyện")


def check_outdated(entry: Entry, answers: dict[Aspect, str]) -> list[Finding]:
    found: dict[str, list[str]] = defaultdict(list)
    for aspect, answer in answers.items():
        if OUTDATED_CAVEAT in answer:
            continue
        for term in dict.fromkeys(_term(m) for m in outdated_mentions(_claims(entry, aspect, answer))):
            found[term].append(aspect.value)
    return [Finding(entry.id, "outdated", f'"{term}" không kèm quy định hiện hành hay lưu ý', tuple(aspects))
            for term, aspects in found.items()]


_DECORATION = re.compile(r"^\((?:bản |theo mẫu|xuất trình)")  # "(bản chính) – 1 bản chính, 1 bản sao": the answer's own


def _sentence_keys(answer: str, skip: set[str]) -> list[tuple[str, str, bool]]:
    """(key, sentence, whether it leads in a longer line) of each sentence of `answer` long enough to count."""
    keys = []
    for line in answer.split("\n"):
        if not line.strip() or line in skip or line.startswith("📋 "):  # the title heads the answer, the text may name it
            continue
        sentences = split_sentences(_LABEL.sub("", line, count=1))
        for index, sentence in enumerate(sentences):
            key = sentence_key(_LABEL.sub("", sentence, count=1))
            if len(key) >= MIN_REPEATED_CHARS and not _DECORATION.match(sentence):
                keys.append((key, sentence, index == 0 and len(sentences) > 1))
    return keys


def check_repeated(entry: Entry, answers: dict[Aspect, str]) -> list[Finding]:
    """A sentence said twice in one answer. Items of a list that open with the same lead-in ("Giấy tờ chứng
    minh ...: + A", "...: + B") differ by what follows: the shared lead-in is not a repeat."""
    code = national_code(entry)
    skip = {OUTDATED_CAVEAT, PROVENANCE_LINE.format(code=code) if code else ""}
    found: dict[str, list[str]] = defaultdict(list)
    for aspect, answer in answers.items():
        body = answer.rsplit("\n\n", 1)[0]  # without the offer of other aspects
        seen: dict[str, bool] = {}
        for key, sentence, leads in _sentence_keys(body, skip):
            if key in seen and not (leads and seen[key]):
                found[sentence[:80]].append(aspect.value)
            seen[key] = seen.get(key, True) and leads
    return [Finding(entry.id, "repeated", f'lặp: "{sentence}"', tuple(dict.fromkeys(aspects))) for sentence, aspects in found.items()]


def fee_says_enough(text: str) -> bool:
    """Whether a fee text gives an amount (a figure, or free), who sets it, or whom to ask."""
    return bool(_MONEY_OR_PERCENT.search(text) or _SAYS_FREE.search(text) or _SAYS_WHO.search(text))


def check_fees(entry: Entry) -> list[Finding]:
    if entry.kind != "procedure":  # a topic's "fees" explain, they are not a procedure's fee
        return []
    texts = dict.fromkeys(fee.text for fee in entry.fees if not fee_says_enough(fee.text))  # once, not once per channel
    return [Finding(entry.id, "fee", f'"{text[:100]}"', (Aspect.FEE.value,)) for text in texts]


def unmarked_condition(document: Document) -> bool:
    """A document whose name says it is needed only in some cases, listed without that set apart."""
    if document.note and re.match(r"^(?:nếu|khi|đối với|chỉ)\b", document.note, re.IGNORECASE):
        return False
    split = split_condition(document.name)
    if split is None or split[1] == "nếu có":
        return False  # "Y (nếu có)" says it in the line
    return not _CONDITION_COLON.match(document.name) and not re.search(r"\((?:nếu|khi|chỉ|đối với|trường hợp)\b[^()]*\)\s*[.;]?$",
                                                                            document.name, re.IGNORECASE)


def check_conditional(entry: Entry) -> list[Finding]:
    return [Finding(entry.id, "conditional", f'"{document.name[:100]}"', (Aspect.DOCUMENTS.value,))
            for document in entry.documents if unmarked_condition(document)]


def _numbers(text: str) -> set[str]:
    """Every number in `text`, without thousands separators or leading zeros ("20.000" -> "20000", "05" -> "5")."""
    return {re.sub(r"[.,]", "", number).lstrip("0") or "0" for number in _NUMBER.findall(text)}


def _facts_text(entry: Entry) -> str:
    """All the entry's facts as words (the structured numbers, e.g. a fee's amount, are not a source)."""
    parts = [entry.name, entry.short_name or "", entry.summary, entry.result or "", entry.online.note or "", entry.postal.note or ""]
    parts += entry.aliases + entry.steps + entry.conditions + entry.legal_basis + entry.notes
    parts += [f"{d.name} {d.note or ''}" for d in entry.documents]
    parts += [f"{f.text} {f.exemptions or ''} {f.basis or ''}" for f in entry.fees]
    parts += [d.text for d in entry.durations] + [f"{p.agency} {p.note or ''}" for p in entry.places]
    return "\n".join(parts)


def _figures(answer: str) -> list[str]:
    figures = [m.group(0) for m in _MONEY_OR_PERCENT.finditer(answer)] + [m.group(0) for m in _TIME.finditer(answer)]
    return [figure for figure in figures if _numbers(figure) - {"0"}]


_GLUED_COUNT = re.compile(r"(\d)(\d\s*bản\s*(?:chính|sao))")  # "tỷ lệ 1:10.0001 bản chính": the portal's count column


def check_sources(entry: Entry, answers: dict[Aspect, str], source: str | None = None) -> list[Finding]:
    known = _numbers(_facts_text(entry) if source is None else _GLUED_COUNT.sub(r"\1 \2", source))
    code = national_code(entry)
    found: dict[str, list[str]] = defaultdict(list)
    for aspect, answer in answers.items():
        body = answer.replace(PROVENANCE_LINE.format(code=code), "") if code else answer
        for figure in _figures(body):
            if not _numbers(figure) <= known:
                found[figure].append(aspect.value)
    return [Finding(entry.id, "unsourced", f'"{figure}" không có trong dữ liệu nguồn', tuple(dict.fromkeys(aspects)))
            for figure, aspects in found.items()]


def audit_entry(entry: Entry, source: str | None = None, imported: bool = False) -> list[Finding]:
    """Every finding about one entry. `source`: the national record's own text, where figures must come
    from; `imported`: the entry came from the national catalogue (it must then say so)."""
    answers = _answers(entry)
    findings = check_outdated(entry, answers) + check_repeated(entry, answers) + check_fees(entry)
    findings += check_conditional(entry) + check_sources(entry, answers, source)
    if imported and not national_code(entry):
        findings.append(Finding(entry.id, "provenance", "không ghi nguồn CSDL quốc gia trong câu trả lời"))
    return findings


def audit(entries: Iterable[Entry], sources: dict[str, str] | None = None, imported: set[str] | None = None) -> AuditReport:
    report = AuditReport()
    sources, imported = sources or {}, imported or set()
    for entry in entries:
        report.entries += 1
        report.findings.extend(audit_entry(entry, sources.get(entry.id), entry.id in imported))
    return report


def needs_review(entry: Entry) -> list[str]:
    """Why an imported entry should be looked at by staff: its answers carry the pre-2025 caveat, a fee
    has no figure, or a sentence too long to keep whole was cut. Empty for curated entries and for
    national ones that read cleanly."""
    if not national_code(entry):
        return []
    reasons = []
    if any(OUTDATED_CAVEAT in answer for answer in _answers(entry).values()):
        reasons.append("còn nhắc cấp huyện/thị trấn (câu trả lời kèm lưu ý)")
    if any(not _MONEY_OR_PERCENT.search(fee.text) and not _SAYS_FREE.search(fee.text) for fee in entry.fees):
        reasons.append("lệ phí không có số tiền")
    texts = [*entry.steps, *entry.conditions, *(d.name for d in entry.documents), *(f.text for f in entry.fees)]
    if any(text.endswith("…") for text in texts):
        reasons.append("có câu quá dài đã phải cắt (…)")
    return reasons
