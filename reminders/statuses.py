"""The status vocabulary: what offices write in their exports, mapped to the few statuses reminders know."""

from __future__ import annotations

import re
from enum import StrEnum

from nlp.normalize import fold


class Status(StrEnum):
    RECEIVED = "received"  # Đã tiếp nhận
    PROCESSING = "processing"  # Đang xử lý
    NEEDS_DOCUMENTS = "needs_documents"  # Yêu cầu bổ sung
    RESULT_READY = "result_ready"  # Đã có kết quả
    RETURNED = "returned"  # Đã trả kết quả
    REJECTED = "rejected"  # Từ chối


LABELS: dict[Status, str] = {
    Status.RECEIVED: "Đã tiếp nhận",
    Status.PROCESSING: "Đang xử lý",
    Status.NEEDS_DOCUMENTS: "Yêu cầu bổ sung",
    Status.RESULT_READY: "Đã có kết quả",
    Status.RETURNED: "Đã trả kết quả",
    Status.REJECTED: "Từ chối",
}

# Folded (no diacritics, lower case, single spaces) spellings seen in one-stop software exports.
_VARIANTS: dict[Status, tuple[str, ...]] = {
    Status.RECEIVED: ("da tiep nhan", "tiep nhan", "moi tiep nhan", "da nhan ho so", "da tiep nhan ho so",
                      "cho tiep nhan xu ly", "received"),
    Status.PROCESSING: ("dang xu ly", "dang giai quyet", "dang thu ly", "dang tham dinh", "dang trinh ky",
                        "cho phe duyet", "cho ky duyet", "dang xu ly ho so", "processing", "in progress"),
    Status.NEEDS_DOCUMENTS: ("yeu cau bo sung", "yeu cau bo sung ho so", "bo sung ho so", "cho bo sung",
                             "cho bo sung ho so", "can bo sung", "da yeu cau bo sung", "needs documents",
                             "needs_documents"),
    Status.RESULT_READY: ("da co ket qua", "co ket qua", "cho tra ket qua", "da giai quyet xong", "da xu ly xong",
                          "result ready", "result_ready"),
    Status.RETURNED: ("da tra ket qua", "tra ket qua", "da tra", "da nhan ket qua", "cong dan da nhan ket qua",
                      "returned"),
    Status.REJECTED: ("tu choi", "da tu choi", "tu choi giai quyet", "khong giai quyet", "khong tiep nhan",
                      "rejected"),
}
_LOOKUP: dict[str, Status] = {variant: status for status, variants in _VARIANTS.items() for variant in variants}
_LOOKUP.update({fold(label): status for status, label in LABELS.items()})
_PUNCT = re.compile(r"[^\w]+", re.UNICODE)

# Statuses after which nothing more happens to a dossier.
FINISHED = frozenset({Status.RETURNED, Status.REJECTED})
# Statuses the office is still working on: past the appointment in one of them, a dossier is late.
# Waiting for the citizen's documents is not the office's delay.
IN_PROGRESS = frozenset({Status.RECEIVED, Status.PROCESSING})


def parse_status(text: object) -> Status | None:
    """The status an office wrote ("ĐÃ CÓ KẾT QUẢ", "da co ket qua", "Đã có kết quả."), or None if unknown."""
    if not isinstance(text, str):
        return None
    key = " ".join(_PUNCT.sub(" ", fold(text)).replace("_", " ").split())
    return _LOOKUP.get(key) or _LOOKUP.get(key.replace(" ", "_"))


def label(status: str) -> str:
    try:
        return LABELS[Status(status)]
    except ValueError:
        return status


def known_statuses() -> str:
    return ", ".join(LABELS.values())
