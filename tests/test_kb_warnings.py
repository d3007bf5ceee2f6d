"""Staff are warned when a file changes a fee's amount but not the text citizens read."""

from knowledge.editing import fee_warnings
from knowledge.starter import read_starter


def _entry_with_fee():
    return next(e for e in read_starter() if any(f.amount_vnd for f in e.fees))


def test_an_amount_changed_without_its_text_is_flagged():
    before = _entry_with_fee()
    fees = [f.model_copy(update={"amount_vnd": (f.amount_vnd or 0) + 1000}) for f in before.fees]
    warnings = fee_warnings(before, before.model_copy(update={"fees": fees}))
    assert warnings and "nội dung" in warnings[0]


def test_an_amount_changed_with_its_text_is_not_flagged():
    before = _entry_with_fee()
    fees = [f.model_copy(update={"amount_vnd": (f.amount_vnd or 0) + 1000, "text": f.text + " (mức mới)"}) for f in before.fees]
    assert fee_warnings(before, before.model_copy(update={"fees": fees})) == []
