"""The national catalogue (Cổng Dịch vụ công quốc gia records) turned into knowledge-base entries by
knowledge.dvcqg: channels with their time and fee out of the flattened tables, documents with counts,
legal codes, level variants grouped as equivalents, every record a valid Entry, and bad files refused
with the line at fault.

The tests read the project's sample of the real records (tests/data/national_sample.jsonl.gz). Those
named `..._full_catalogue_from_shared` read the whole file in ../shared/data/dvcqg and are skipped
where it is absent (a fresh clone)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from conftest import NATIONAL_RECORDS, NATIONAL_SAMPLE, requires_shared

from knowledge.dvcqg import (
    ITEM_HARD_CHARS,
    OUTDATED_CAVEAT,
    CatalogueError,
    convert_record,
    equivalence_groups,
    is_conditional,
    iter_records,
    load_catalogue,
    national_code,
    outdated_mentions,
    parse_legal_basis,
    provenance_note,
    record_to_entry,
    slugify,
    split_condition,
)
from knowledge.schema import Channel, DocumentForm, Entry, OnlineLevel
from knowledge.starter import read_starter

RECORDS = NATIONAL_SAMPLE
TOTAL = 2642  # records in the full catalogue
SOURCE_EXAMPLE = (
    "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến7 Ngày làm việc10,000 Việt Nam Đồng(",
    "Trực tiếp7 Ngày làm việc20,000 Việt Nam Đồng(",
)


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {record["ma_thu_tuc"]: record for _, record in iter_records(RECORDS)}


@pytest.fixture(scope="module")
def catalogue() -> list[Entry]:
    return load_catalogue(RECORDS)


@pytest.fixture(scope="module")
def by_id(catalogue) -> dict[str, Entry]:
    return {entry.id: entry for entry in catalogue}


@pytest.fixture(scope="module")
def full_catalogue() -> list[Entry]:
    return load_catalogue(NATIONAL_RECORDS)


# -- the sample -----------------------------------------------------------------------------------


def test_the_sample_holds_the_starter_procedures_their_variants_and_the_long_group_slugs(catalogue, by_id):
    starter = [entry for entry in read_starter() if entry.kind == "procedure"]
    assert len(starter) == 47
    assert {entry.id for entry in starter} <= set(by_id), "the record of every starter procedure"
    for entry in starter:  # and the records of its other levels, so equivalents are as in the full catalogue
        assert set(entry.equivalents) <= set(by_id), entry.id
    assert sum(len(entry.group) > 64 for entry in catalogue) == 45, "every record whose slug outgrew 64 characters"
    assert 200 <= len(catalogue) <= 400 and RECORDS.stat().st_size < 400_000


@requires_shared(NATIONAL_RECORDS)
def test_the_sample_is_taken_unchanged_from_the_full_catalogue_from_shared(records, full_catalogue):
    full = {record["ma_thu_tuc"]: record for _, record in iter_records(NATIONAL_RECORDS)}
    assert all(full[code] == record for code, record in records.items()), "records copied as they are"
    long = {entry.id for entry in full_catalogue if len(entry.group) > 64}
    assert len(long) == 45 and long <= set(records)
    sample = set(records)
    for group in equivalence_groups(full_catalogue):  # a level variant comes with all its others
        assert not sample & set(group) or set(group) <= sample, group


# -- the flattened tables ------------------------------------------------------------------------


def test_source_example_gives_two_channels_with_time_and_fee(records):
    matching = [
        record for record in records.values()
        if record["cach_thuc_thuc_hien"].startswith(SOURCE_EXAMPLE[0]) and SOURCE_EXAMPLE[1] in record["cach_thuc_thuc_hien"]
    ]
    assert matching, "the example of SOURCE.md is in the records"
    entry = record_to_entry(matching[0])
    assert entry.id == "1.004222" and entry.name == "Đăng ký thường trú"
    assert [(d.channel, d.text, d.working_days) for d in entry.durations] == [
        (Channel.ONLINE, "7 Ngày làm việc", 7.0),
        (Channel.IN_PERSON, "7 Ngày làm việc", 7.0),
    ]
    assert [(f.channel, f.amount_vnd, f.set_by_province) for f in entry.fees] == [
        (Channel.ONLINE, 10_000, False),
        (Channel.IN_PERSON, 20_000, False),
    ]
    assert entry.fees[0].text.startswith("Lệ phí: 10.000 đồng (")
    assert entry.fees[1].text.startswith("Lệ phí: 20.000 đồng (")
    assert all(len(f.text) <= 200 for f in entry.fees)
    assert entry.online.level is OnlineLevel.PARTIAL and entry.online.portals == ["Cổng Dịch vụ công quốc gia"]
    assert entry.postal.submit is None  # no "Dịch vụ bưu chính" row


def test_free_fee_province_fee_and_postal_row(records):
    free = record_to_entry(records["6.003636"])  # "Trực tiếp15 NgàyMiễn phíTrực tuyến15 NgàyMiễn phí..."
    assert {(f.channel, f.amount_vnd, f.text) for f in free.fees} == {
        (channel, 0, "Miễn lệ phí") for channel in (Channel.IN_PERSON, Channel.ONLINE, Channel.POSTAL)
    }
    assert {(d.channel, d.working_days) for d in free.durations} == {
        (channel, 15.0) for channel in (Channel.IN_PERSON, Channel.ONLINE, Channel.POSTAL)
    }
    assert free.postal.submit is True

    province = record_to_entry(records["1.000689"])  # "Miễn phí((Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ...))"
    assert province.fees and all(f.set_by_province and f.amount_vnd is None for f in province.fees)

    hours = record_to_entry(records["3.000141"])  # "Trực tuyến8 GiờMiễn phí"
    assert [(d.text, d.working_days) for d in hours.durations] == [("8 Giờ", None)]


def test_several_fee_items_after_one_channel(records):
    entry = record_to_entry(records["1.003135"])  # "- Lệ phí : 20.000 Đồng (...); - Lệ phí : 50.000 Đồng (...)"
    online = [f.amount_vnd for f in entry.fees if f.channel is Channel.ONLINE]
    assert online == [20_000, 50_000]
    assert all(f.text.startswith("Lệ phí: ") for f in entry.fees)


def test_documents_with_counts(records):
    entry = record_to_entry(records["2.002322"])
    documents = {d.name: d for d in entry.documents}
    assert documents["Đơn đề nghị cấp sổ ATA"].count == 1
    assert documents["Đơn đề nghị cấp sổ ATA"].form is DocumentForm.ORIGINAL
    copy_only = documents["Văn bản xác nhận của cơ quan có thẩm quyền về tổ chức hoặc tham dự sự kiện"]  # 0 bản chính,1 bản sao
    assert (copy_only.form, copy_only.count) == (DocumentForm.COPY, 1)
    both = next(d for d in entry.documents if d.name.startswith("Mẫu sổ ATA"))  # 1 bản chính,1 bản sao
    assert (both.form, both.count, both.note) == (DocumentForm.ORIGINAL, 1, "1 bản chính, 1 bản sao")

    complaint = record_to_entry(records["1.000178"])
    assert len(complaint.documents) == 8
    assert all(d.count == 1 and d.form is DocumentForm.ORIGINAL for d in complaint.documents)
    assert "Đơn khiếu nại hoặc bản ghi nội dung khiếu nại" in {d.name for d in complaint.documents}

    # "... doanh nghiệp nộp 02 bản chính tờ khai ..." is inside a name, not the count column
    export = record_to_entry(records["1.007646"])
    assert [d.count for d in export.documents] == [1, 1]


def test_legal_basis_codes(records):
    entry = record_to_entry(records["1.001570"])
    assert entry.legal_basis[0].endswith("(85/2019/TT-BTC)")
    assert "Luật Doanh nghiệp (59/2020/QH14)" in entry.legal_basis
    assert "Luật sửa đổi, bổ sung một số điều của Luật Doanh nghiệp 2020 (76/2025/QH15)" in entry.legal_basis

    complaint = record_to_entry(records["1.000178"])
    assert complaint.legal_basis == [
        "Hướng dẫn xử lý khiếu nại, kiến nghị, phản ánh; giải quyết khiếu nại và quản lý công tác giải quyết "
        "khiếu nại trong công an nhân dân (68/2013/TT-BCA)",
        "Luật Khiếu nại năm 2011 (02/2011/QH13)",  # "năm 201102/2011/QH13" in the record
        "Quy định quy trình giải quyết khiếu nại trong công an nhân dân (11/2015/TT-BCA)",
        "Nghị định 05/2012/NĐ-CP",  # "Nghị định 05/2012/NĐ-CP05/2012/NĐ-CP"
    ]

    residence = record_to_entry(records["1.004222"])  # "...TT-BCAngày 01/7/2025..." and "...NĐ-CPThông tư"
    codes = " ".join(residence.legal_basis)
    for code in ("66.7/2025/NQ-CP", "53/2025/TT-BCA", "68/2020/QH14", "154/2024/NĐ-CP", "58/2026/NĐ-CP"):
        assert code in codes
    assert "TT-BCAngày" not in codes and "TT-BC)" not in codes


def test_fields_of_one_record(records):
    entry = record_to_entry(records["2.000200"])
    assert entry.kind == "procedure" and entry.short_name is None and entry.examples == []
    assert entry.name == "Cấp thẻ căn cước cho người từ đủ 14 tuổi trở lên (thực hiện tại cấp tỉnh)"
    assert entry.aliases == ["Cấp thẻ căn cước cho người từ đủ 14 tuổi trở lên"]
    assert entry.group == "cap-quan-ly-can-cuoc" and entry.level == "Cấp tỉnh"
    assert entry.summary.startswith(entry.name + ".") and "\n" not in entry.summary and len(entry.summary) < 400
    assert entry.places and entry.places[0].level == "Cấp tỉnh"
    assert 1 <= len(entry.steps) <= 10

    complaint = record_to_entry(records["1.000178"])
    assert complaint.result == "Quyết định giải quyết khiếu nại lần 1, lần 2"
    assert complaint.steps[0].startswith("Thụ lý giải quyết khiếu nại")
    assert 1 <= len(complaint.conditions) <= 8
    assert complaint.places[0].agency == "Thanh tra Bộ"


def test_slugs():
    assert slugify("Hộ tịch") == "ho-tich"
    assert slugify("Đất đai") == "dat-dai"
    assert slugify("Thi đua – Khen thưởng") == "thi-dua-khen-thuong"
    assert slugify("") == "khac"


# -- level variants ------------------------------------------------------------------------------


def test_the_identity_card_records_are_equivalents(catalogue, by_id):
    groups = {frozenset(group) for group in equivalence_groups(catalogue)}
    assert frozenset({"1.014061", "2.000200", "1.001247"}) in groups  # cấp thẻ căn cước, từ đủ 14 tuổi
    assert frozenset({"1.014062", "1.012549", "1.012543"}) in groups  # dưới 14 tuổi
    assert frozenset({"1.014063", "2.001195", "1.000889"}) in groups  # cấp đổi
    assert frozenset({"1.014064", "2.001194", "1.000757"}) in groups  # cấp lại
    assert "1.014060" in by_id and not any("1.014060" in group for group in groups)  # "Tích hợp, cập nhật ...": one level only
    assert sorted(by_id["1.014061"].equivalents) == ["1.001247", "2.000200"]
    assert sorted(by_id["2.000200"].equivalents) == ["1.001247", "1.014061"]
    levels = {by_id[i].level for i in ("1.014061", "2.000200", "1.001247")}
    assert levels == {"Cấp xã", "Cấp tỉnh", "Cấp bộ"}


def test_a_remark_after_the_level_keeps_the_variants_together():
    """The complaint procedure at the commune level adds who may handle it, in brackets, after its level:
    it was a separate procedure, a rival of its own provincial variant in every answer about complaints."""
    from knowledge.dvcqg import equivalence_key

    provincial = "Giải quyết khiếu nại về quyết định hành chính của công dân đối với lực lượng Công an nhân dân (thực hiện tại cấp tỉnh)"
    commune = ("Giải quyết khiếu nại về quyết định hành chính của công dân đối với lực lượng Công an nhân dân thực hiện tại cấp xã"
               " (phải là cán bộ thuộc biên chế của lực lượng Công an)")
    assert equivalence_key(commune) == equivalence_key(provincial)
    assert equivalence_key("Cấp giấy phép môi trường (cấp Bộ) (1.010719)") == equivalence_key("Cấp giấy phép môi trường (cấp Tỉnh)")
    # A bracket that is not after a level still tells procedures apart.
    assert equivalence_key("Đăng ký xe (đối với xe nhập khẩu)") != equivalence_key("Đăng ký xe (đối với xe sản xuất trong nước)")


def test_same_name_at_one_level_is_not_a_variant(catalogue):
    for group in equivalence_groups(catalogue):
        assert len(group) == len(set(group)) >= 2
    same = [e.id for e in catalogue if e.name == "Hỗ trợ phát triển sản xuất cộng đồng."]
    assert len(same) > 2
    assert not any(set(same) & set(group) for group in equivalence_groups(catalogue))


# -- every record --------------------------------------------------------------------------------


def _assert_well_formed(entries: list[Entry]) -> None:
    """What every converted record must be: a valid entry whose texts are clean and bounded."""
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries:
        again = Entry.model_validate(entry.model_dump())  # survives a round trip through the schema
        assert again == entry
        assert entry.kind == "procedure" and entry.summary and "\n" not in entry.summary
        texts = [*entry.aliases, *entry.steps, *entry.conditions, *entry.legal_basis, *entry.equivalents]
        texts += [d.name for d in entry.documents] + [f.text for f in entry.fees] + [d.text for d in entry.durations]
        assert all(t and t == t.strip() for t in texts), entry.id
        assert len(entry.steps) <= 10 and len(entry.conditions) <= 8 and len(entry.documents) <= 25
        # whole sentences: several within 300 characters, or one alone up to 600 (issue 16: not cut mid-sentence)
        assert all(len(t) <= ITEM_HARD_CHARS for t in (*entry.steps, *entry.conditions)), entry.id
        assert all(len(t) <= 300 for t in entry.legal_basis), entry.id
        assert len({d.name.casefold() for d in entry.documents}) == len(entry.documents)
        assert entry.id not in entry.equivalents


def _with_at_least_one(entries: list[Entry]) -> dict[str, int]:
    return {
        "fees": sum(bool(e.fees) for e in entries),
        "durations": sum(bool(e.durations) for e in entries),
        "documents": sum(bool(e.documents) for e in entries),
        "legal_basis": sum(bool(e.legal_basis) for e in entries),
        "equivalents": sum(bool(e.equivalents) for e in entries),
    }


def test_every_record_of_the_sample_converts_to_a_valid_entry(catalogue, records):
    assert len(catalogue) == len(records)
    _assert_well_formed(catalogue)
    stats = _with_at_least_one(catalogue)
    assert all(count >= 0.75 * len(catalogue) for name, count in stats.items() if name != "equivalents"), stats


@requires_shared(NATIONAL_RECORDS)
def test_every_record_of_the_full_catalogue_from_shared_converts_to_a_valid_entry(full_catalogue):
    assert len(full_catalogue) == TOTAL
    _assert_well_formed(full_catalogue)
    stats = _with_at_least_one(full_catalogue)
    assert stats["fees"] >= 2200 and stats["durations"] >= 2100
    assert stats["documents"] >= 2500 and stats["legal_basis"] >= 2500


# -- bad input -----------------------------------------------------------------------------------


def _good_lines(records: dict[str, dict], count: int = 3) -> list[str]:
    return [json.dumps(record, ensure_ascii=False) for record in list(records.values())[:count]]


def _raises_at(path: Path, line: int | None) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    error = caught.value
    assert error.line == line and error.path == path
    if line is not None:
        assert f"line {line}" in str(error)
    assert "Traceback" not in str(error)
    return error


def test_truncated_gzip(tmp_path, records):
    whole = gzip.compress(("\n".join(_good_lines(records, 40)) + "\n").encode("utf-8"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert "truncated" in caught.value.reason
    assert caught.value.line is not None and caught.value.line >= 1
    assert f"line {caught.value.line}" in str(caught.value)


def test_line_that_is_not_json(tmp_path, records):
    path = tmp_path / "bad.jsonl"
    lines = [*_good_lines(records, 2), "{ma_thu_tuc: 1.000178,", _good_lines(records)[2]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "not JSON" in _raises_at(path, 3).reason


def test_line_that_is_a_json_array(tmp_path, records):
    path = tmp_path / "array.jsonl.gz"
    lines = _good_lines(records, 1) + [json.dumps([1, 2, 3])]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    assert "not an object" in _raises_at(path, 2).reason


def test_record_without_code_or_name(tmp_path, records):
    first, second = list(records.values())[:2]
    path = tmp_path / "nocode.jsonl"
    no_code = {k: v for k, v in second.items() if k != "ma_thu_tuc"}
    path.write_text(f"{json.dumps(first, ensure_ascii=False)}\n\n{json.dumps(no_code, ensure_ascii=False)}\n", encoding="utf-8")
    assert "missing ma_thu_tuc" in _raises_at(path, 3).reason  # blank line 2 is skipped but counted

    path = tmp_path / "noname.jsonl"
    path.write_text(json.dumps({**first, "ten_thu_tuc": "  "}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "missing ten_thu_tuc" in _raises_at(path, 1).reason

    path = tmp_path / "badcode.jsonl"
    path.write_text(json.dumps({**first, "ma_thu_tuc": 1.001193}) + "\n", encoding="utf-8")
    assert "not a national code" in _raises_at(path, 1).reason


def test_duplicate_code(tmp_path, records):
    line = _good_lines(records, 1)[0]
    path = tmp_path / "twice.jsonl"
    path.write_text(f"{line}\n{line}\n", encoding="utf-8")
    assert "already given on line 1" in _raises_at(path, 2).reason


@pytest.mark.parametrize("name", ["junk.jsonl.gz", "junk.jsonl"])
def test_a_megabyte_of_random_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(random.Random(7).randbytes(1024 * 1024))
    error = _raises_at(path, 1)
    assert "gzip" in error.reason if name.endswith(".gz") else "not UTF-8" in error.reason


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert "empty" in _raises_at(empty, None).reason
    assert "does not exist" in _raises_at(tmp_path / "none.jsonl.gz", None).reason


def test_gzip_content_is_recognised_whatever_the_name(tmp_path, records):
    path = tmp_path / "catalogue.jsonl"  # gzip data without the .gz suffix
    path.write_bytes(gzip.compress(("\n".join(_good_lines(records, 3)) + "\n").encode("utf-8")))
    assert [line for line, _ in iter_records(path)] == [1, 2, 3]
    assert len(load_catalogue(path)) == 3


def test_sparse_or_oddly_typed_records_still_convert():
    bare = record_to_entry({"ma_thu_tuc": "1.000001", "ten_thu_tuc": "Thủ tục cấp  giấy phép (cấp tỉnh)"})
    assert bare.name == "Thủ tục cấp giấy phép (cấp tỉnh)"
    assert bare.aliases == ["Cấp giấy phép"] and bare.group == "khac"
    assert bare.summary == "Thủ tục cấp giấy phép (cấp tỉnh)."
    assert (bare.fees, bare.durations, bare.documents, bare.legal_basis, bare.places) == ([], [], [], [], [])
    assert bare.online.level is OnlineLevel.UNKNOWN

    odd = record_to_entry({
        "ma_thu_tuc": "1.000002", "ten_thu_tuc": "X", "linh_vuc": None, "cach_thuc_thuc_hien": 5,
        "thanh_phan_ho_so": ["a"], "can_cu_phap_ly": {"a": 1}, "co_quan_thuc_hien": [1], "ket_qua_xu_ly": 7,
        "yeu_cau_dieu_kien": "Không có thông tin", "trinh_tu_thuc_hien": None,
    })
    assert odd.places == [] and odd.conditions == [] and odd.steps == [] and odd.result is None


# -- cleaning (issue 16): whole, said once, current; every rule on real records ----------------------
#
# The records below are copied from ../shared/data/dvcqg (fields the rule reads, verbatim), so the tests
# run on a fresh clone; the others are in the sample.

IDP = {  # the international driving licence: the fee's description cut at "31/12/2025…" and printed twice
    "ma_thu_tuc": "3.000353", "ten_thu_tuc": "Cấp giấy phép lái xe quốc tế", "cap_thuc_hien": "Cấp bộ",
    "linh_vuc": "Sát hạch, cấp giấy phép lái xe",
    "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến5 Ngày làm việcMiễn phí(- Nộp trực tiếp: 135.000 "
    "đồng/lần.  - Trường hợp tổ chức, cá nhân nộp hồ sơ theo hình thức trực tuyến: Kể từ ngày 01/12/2023 đến hết ngày "
    "31/12/2025, áp dụng mức thu lệ phí là 115.000 đồng/lần cấp.)Trực tiếp5 Ngày làm việcMiễn phí(- Nộp trực tiếp: 135.000 "
    "đồng/lần.  - Trường hợp tổ chức, cá nhân nộp hồ sơ theo hình thức trực tuyến: Kể từ ngày 01/12/2023 đến hết ngày "
    "31/12/2025, áp dụng mức thu lệ phí là 115.000 đồng/lần cấp.)",
}
LAND_SPLIT = {  # "Theo quy định của Luật phí và lệ phí…" once per channel, no figure, no word on the province
    "ma_thu_tuc": "1.012784", "ten_thu_tuc": "Tách thửa hoặc hợp thửa đất.", "cap_thuc_hien": "Cấp tỉnh", "linh_vuc": "Đất đai",
    "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến12 Ngày làm việcMiễn phí(Theo quy định của Luật "
    "phí và lệ phí và các văn bản quy phạm pháp luật hướng dẫn Luật phí và lệ phí)Dịch vụ bưu chính12 Ngày làm việcMiễn phí("
    "Theo quy định của Luật phí và lệ phí và các văn bản quy phạm pháp luật hướng dẫn Luật phí và lệ phí)Trực tiếp22 Ngày làm "
    "việcMiễn phí(Theo quy định của Luật phí và lệ phí và các văn bản quy phạm pháp luật hướng dẫn Luật phí và lệ phí)",
    "thanh_phan_ho_so": "--Tên giấy tờMẫu đơn, tờ khaiSố lượng(5) Bản vẽ tách thửa đất, hợp thửa đất lập theo Mẫu số 22 ban hành "
    "kèm theo Nghị định số 151/2025/NĐ-CP.0 bản chính,1 bản sao(1) Đơn đề nghị tách thửa đất, hợp thửa đất theo Mẫu số 21 ban "
    "hành kèm theo Nghị định số 151/2025/NĐ-CP.1 bản chính(4) Các văn bản của cơ quan có thẩm quyền có thể hiện nội dung tách "
    "thửa đất, hợp thửa đất (nếu có).0 bản chính,1 bản sao(3) Giấy chứng nhận đã cấp hoặc bản sao Giấy chứng nhận đã cấp kèm "
    "bản gốc để đối chiếu hoặc nộp bản sao có công chứng, chứng thực;0 bản chính,1 bản sao",
}
ACCIDENT = {  # conditional documents ("Trường hợp ... thì có thêm ...") listed as always required, one twice
    "ma_thu_tuc": "1.012538", "cap_thuc_hien": "Cấp xã", "linh_vuc": "Chính sách",
    "ten_thu_tuc": "Giải quyết chế độ, chính sách cho người tham gia lực lượng tham gia bảo vệ an ninh, trật tự ở cơ sở chưa "
    "tham gia bảo hiểm xã hội mà bị tai nạn, chết khi thực hiện nhiệm vụ",
    "thanh_phan_ho_so": "* Hồ sơ đề nghị hưởng trợ cấp tai nạn, gồm: Tên giấy tờMẫu đơn, tờ khaiSố lượng- Giấy ra viện hoặc trích "
    "sao hồ sơ bệnh án sau khi điều trị tai nạn đối với trường hợp điều trị nội trú hoặc bản sao giấy chứng nhận thương tích do "
    "cơ sở y tế nơi đã cấp cứu, điều trị cấp.1 bản chính,1 bản sao- Trường hợp bị tai nạn giao thông thì có thêm biên bản của cơ "
    "quan  Công an.1 bản chínhĐơn đề nghị trợ cấp tai nạn, trợ cấp tiền tuất, tiền mai táng phí (Mẫu số 02 ban hành kèm theo "
    "Nghị định số 40/2024/NĐ-CP).Mus02-nnghtrcptainntutN40.2024suatheoN184.2025.docx1 bản chính,1 bản sao- Biên bản giám định "
    "mức suy giảm khả năng lao động của hội đồng giám định y khoa bệnh viện cấp tỉnh và tương đương trở lên.1 bản chính* Hồ sơ "
    "đề nghị hưởng trợ cấp tiền tuất, tiền mai táng phí, gồm: Tên giấy tờMẫu đơn, tờ khaiSố lượng- Giấy ra viện hoặc trích sao "
    "hồ sơ bệnh án sau khi điều trị tai nạn đối với trường hợp điều trị nội trú.1 bản chính,1 bản sao- Bản sao giấy chứng tử "
    "hoặc trích lục khai tử.0 bản chính,1 bản sao- Trường hợp bị tai nạn giao thông dẫn đến chết thì có thêm biên bản của cơ "
    "quan Công an.1 bản chính,1 bản sao",
}
SURVIVORS = {  # "Bảo hiểm xã hội cấp Tỉnh, Bảo hiểm xã hội cấp huyện": the example of the issue
    "ma_thu_tuc": "2.000821", "ten_thu_tuc": "Giải quyết hưởng chế độ tử tuất", "cap_thuc_hien": "Cấp tỉnh, Cấp xã",
    "linh_vuc": "Thực hiện chính sách BHXH", "co_quan_thuc_hien": "Bảo hiểm xã hội cấp Tỉnh, Bảo hiểm xã hội cấp huyện",
}
GUARDIANSHIP = {  # civil status moved from the district to the commune (Nghị định 120/2025/NĐ-CP)
    "ma_thu_tuc": "1.001669", "ten_thu_tuc": "Thủ tục đăng ký giám hộ có yếu tố nước ngoài", "cap_thuc_hien": "Cấp xã",
    "linh_vuc": "Hộ tịch", "co_quan_thuc_hien": "Phòng Tư Pháp", "co_quan_co_tham_quyen": "UBND cấp huyện",
}
STEPS_TWICE = {  # a heading repeated as the first words of two steps
    "ma_thu_tuc": "1.002571", "cap_thuc_hien": "Cấp bộ", "linh_vuc": "Thú y",
    "ten_thu_tuc": "Đăng ký, Cấp giấy chứng nhận kiểm dịch động vật trên cạn tham gia hội chợ, triển lãm, thi đấu thể thao, "
    "biểu diễn nghệ thuật; sản phẩm động vật trên cạn tham gia hội chợ, triển lãm",
    "trinh_tu_thuc_hien": "- Động vật trên cạn tham gia hội chợ, triển lãm, thi đấu thể thao, biểu diễn nghệ thuật; sản phẩm "
    "động vật trên cạn tham gia hội chợ, triển lãm khi vận chuyển ra khỏi địa bàn cấp tỉnh thực hiện theo quy định tại “Thủ tục "
    "hành chính Cấp giấy chứng nhận kiểm dịch động vật, sản phẩm động vật trên cạn vận chuyển ra khỏi địa bàn cấp tỉnh – Mã số "
    "TTHC: 1.002338”.\n- Động vật trên cạn tham gia hội chợ, triển lãm, thi đấu thể thao, biểu diễn nghệ thuật; sản phẩm động vật "
    "trên cạn tham gia hội chợ, triển lãm khi nhập khẩu thực hiện theo quy định tại các Thủ tục hành chính “Đăng ký kiểm dịch động "
    "vật, sản phẩm động vật trên cạn nhập khẩu – Mã số TTHC: 1.003264” và “Cấp Giấy chứng nhận kiểm dịch động vật, sản phẩm động "
    "vật trên cạn nhập khẩu – Mã số TTHC: 1.003113”.",
}


def _answer(entry: Entry, aspect: str) -> str:
    from handlers.answers import write_answer
    from nlp.aspects import Aspect

    return write_answer(entry, (Aspect(aspect),))


def test_a_fee_is_reduced_to_its_amounts_whole_and_said_once():
    entry = record_to_entry(IDP)
    assert {f.text for f in entry.fees} == {(
        "Lệ phí: Nộp trực tiếp: 135.000 đồng/lần; Trường hợp tổ chức, cá nhân nộp hồ sơ theo hình thức trực tuyến: Kể từ ngày "
        "01/12/2023 đến hết ngày 31/12/2025, áp dụng mức thu lệ phí là 115.000 đồng/lần cấp")}, "both amounts, nothing cut"
    assert [(f.channel, f.amount_vnd) for f in entry.fees] == [(Channel.ONLINE, None), (Channel.IN_PERSON, None)]
    answer = _answer(entry, "fee")
    assert answer.count("135.000 đồng/lần") == 1 and "…" not in answer, "one line for both channels, printed once"


def test_a_fee_without_figure_says_who_sets_it_once():
    entry = record_to_entry(LAND_SPLIT)
    assert {f.text for f in entry.fees} == {(
        "Phí, lệ phí: theo quy định của pháp luật về phí, lệ phí; bản ghi không nêu số tiền; mức thu do HĐND tỉnh quyết định, "
        "bạn hỏi Bộ phận Một cửa để biết mức cụ thể.")}
    assert all(f.set_by_province and f.amount_vnd is None for f in entry.fees)
    answer = _answer(entry, "fee")
    assert answer.count("pháp luật về phí, lệ phí") == 1, "not three times"
    central = record_to_entry({**LAND_SPLIT, "cap_thuc_hien": "Cấp bộ"})  # a ministry's fee is not the province's to set
    assert all("HĐND" not in f.text and "hỏi" in f.text and not f.set_by_province for f in central.fees)


def test_the_figure_column_holds_unless_implausible():
    reduced = record_to_entry({  # a reduced rate in the description is shown beside the table's figure
        "ma_thu_tuc": "1.000688", "ten_thu_tuc": "Cấp Chứng chỉ hành nghề luật sư", "cap_thuc_hien": "Cấp tỉnh",
        "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến15 Ngày làm việc800,000 Việt Nam Đồng(áp dụng mức "
        "phí 400.000 đồng/hồ sơ kể từ ngày 01/7/2025 đến hết ngày 31/12/2026 theo Thông tư số 64/2025/TT-BTC)"})
    assert [(f.amount_vnd, f.text) for f in reduced.fees] == [(800_000, (
        "Lệ phí: 800.000 đồng (áp dụng mức phí 400.000 đồng/hồ sơ kể từ ngày 01/7/2025 đến hết ngày 31/12/2026 "
        "theo Thông tư số 64/2025/TT-BTC)"))]
    dollars = record_to_entry({  # "50 VNĐ" in the table, "50USD" in the description: the description is right
        "ma_thu_tuc": "1.009094", "ten_thu_tuc": "Thủ tục hải quan đối với tàu bay xuất cảnh, nhập cảnh, quá cảnh",
        "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến1 Giờ50 VNĐ(Phí hải quan 50USD/chuyến bay đến đối "
        "với chuyến bay của nước ngoài đến cảng hàng không Việt Nam)"})
    assert [(f.amount_vnd, f.text) for f in dollars.fees] == [(None, (
        "Phí: Phí hải quan 50USD/chuyến bay đến đối với chuyến bay của nước ngoài đến cảng hàng không Việt Nam"))]


def test_conditional_documents_are_marked_and_listed_after_the_required_ones():
    entry = record_to_entry(ACCIDENT)
    police = [d for d in entry.documents if d.name == "Biên bản của cơ quan Công an"]
    assert len(police) == 1, "the two conditional items for one document become one"
    assert police[0].note.startswith("nếu bị tai nạn giao thông") and "hoặc nếu bị tai nạn giao thông dẫn đến chết" in police[0].note
    flags = [is_conditional(d) for d in entry.documents]
    assert flags == sorted(flags), "always required first, then the conditional ones"
    assert sum(d.name.startswith("Giấy ra viện") for d in entry.documents) == 1, "the discharge paper once, in its longer wording"
    answer = _answer(entry, "documents")
    required, conditional = answer.split("Nộp thêm nếu thuộc trường hợp:")
    assert "Biên bản của cơ quan Công an" in conditional and "Trường hợp" not in required
    land = record_to_entry(LAND_SPLIT)  # "... (nếu có)"
    maybe = next(d for d in land.documents if d.name.startswith("Các văn bản của cơ quan có thẩm quyền"))
    assert (maybe.name.endswith("hợp thửa đất"), maybe.note) == (True, "nếu có")


def test_split_condition_reads_the_usual_phrasings():
    assert split_condition("Trường hợp ủy quyền: Văn bản ủy quyền") == ("Văn bản ủy quyền", "nếu ủy quyền")
    assert split_condition("Trường hợp bị mất thì nộp thêm đơn trình báo mất") == ("Đơn trình báo mất", "nếu bị mất")
    assert split_condition("Bản chính giấy phép xây dựng đã được cấp (đối với trường hợp bị rách, nát).") == (
        "Bản chính giấy phép xây dựng đã được cấp", "nếu bị rách, nát")
    assert split_condition("Đơn đề nghị cấp giấy phép theo mẫu") is None


def test_repeated_sentences_and_items_are_said_once():
    entry, log = convert_record(STEPS_TWICE)
    assert len(entry.steps) == 2 and len({step.split(";")[0] for step in entry.steps}) == 1, "two different steps"
    again = record_to_entry({**STEPS_TWICE, "trinh_tu_thuc_hien": STEPS_TWICE["trinh_tu_thuc_hien"] + "\n"
                             + STEPS_TWICE["trinh_tu_thuc_hien"].split("\n")[0]})
    assert again.steps == entry.steps, "a step said again is dropped"
    _, log = convert_record(ACCIDENT)
    assert log.counts.get("repeat", 0) >= 1


def test_long_texts_keep_whole_sentences(catalogue):
    """No step, condition, document or fee is cut mid-sentence, except a single sentence longer than 600
    characters, which is counted as a fragment for staff."""
    records = {record["ma_thu_tuc"]: record for _, record in iter_records(RECORDS)}
    fragments = 0
    for entry in catalogue:
        texts = [*entry.steps, *entry.conditions, *entry.legal_basis, *(d.name for d in entry.documents), *(f.text for f in entry.fees)]
        cut = [text for text in texts if text.endswith("…")]
        if cut:
            assert convert_record(records[entry.id])[1].counts.get("fragment", 0) >= 1, (entry.id, cut)
        fragments += len(cut)
    assert fragments <= 0.02 * sum(len(e.steps) + len(e.documents) for e in catalogue)
    long_title = parse_legal_basis("Tên văn bản pháp lýMã văn bản" + "Thông tư quy định " + "rất dài " * 60 + "25/2022/TT-BTC")
    assert long_title == ["Thông tư 25/2022/TT-BTC"], "a title too long to repeat: the document by its code, not cut"


def test_outdated_bodies_are_rewritten_where_the_rule_is_certain(records):
    survivors = record_to_entry(SURVIVORS)
    assert survivors.places[0].agency == "Bảo hiểm xã hội cấp Tỉnh, Bảo hiểm xã hội cơ sở (trước đây là Bảo hiểm xã hội cấp huyện)"
    guardianship = record_to_entry(GUARDIANSHIP)
    assert guardianship.places[0].agency == "Ủy ban nhân dân cấp xã (trước 01/07/2025 là Phòng Tư pháp cấp huyện)"
    assert "Phòng Tư Pháp" not in _answer(guardianship, "overview")
    births = record_to_entry(records["1.000689"])  # "Ủy ban Nhân dân xã, phường, thị trấn."
    assert births.places[0].agency.startswith("Ủy ban Nhân dân xã, phường, đặc khu")
    household = record_to_entry(records["2.000986"])  # "Sổ hộ khẩu của chủ hộ" as a document
    book = [d.name for d in household.documents if "Sổ hộ khẩu" in d.name]
    assert book and all("sổ hộ khẩu đã hết giá trị từ 01/01/2023" in name for name in book)
    for aspect in ("documents", "place", "overview"):
        assert not outdated_mentions(_answer(survivors, aspect)) and OUTDATED_CAVEAT not in _answer(survivors, aspect)


def test_an_uncertain_outdated_body_gets_the_caveat_never_silently(records):
    passport, log = convert_record(records["1.010385"])  # "Trình báo mất hộ chiếu phổ thông (thực hiện tại cấp huyện)"
    assert passport.name.endswith("(thực hiện tại cấp huyện)"), "the official name stays"
    assert log.counts.get("structure_caveat", 0) >= 1 and log.flagged
    for aspect in ("overview", "place", "steps", "fee"):
        assert OUTDATED_CAVEAT in _answer(passport, aspect), aspect


def test_an_imported_entry_says_where_it_comes_from(records, catalogue):
    entry = record_to_entry(records["1.010385"])
    assert entry.notes == [provenance_note("1.010385")] and national_code(entry) == "1.010385"
    answer = _answer(entry, "conditions")
    assert "Theo Cơ sở dữ liệu quốc gia về TTHC, mã 1.010385" in answer and "/lienhe" in answer
    assert provenance_note("1.010385") not in answer, "the note itself is not a condition"
    assert all(national_code(e) == e.id for e in catalogue)


def test_cleaning_is_reported_and_converting_again_changes_nothing(records):
    entries = load_catalogue(RECORDS)
    assert set(entries.cleaning) == set(records)
    assert "1.010385" in entries.flagged() and "2.000986" in entries.cleaned()
    assert "cấp huyện" in entries.cleaning["1.010385"].describe()
    assert [e.model_copy(update={"equivalents": []}) for e in entries] == [
        e.model_copy(update={"equivalents": []}) for e in load_catalogue(RECORDS)], "cleaning is deterministic: importing twice changes nothing"
    for record in records.values():
        assert record_to_entry(record) == record_to_entry(record)
