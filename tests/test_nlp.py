"""Understanding (nlp/): pure functions, no database. Cleaning, folding, teencode, aspects, and a
property test that understanding never raises whatever a citizen (or a bot) sends."""

from __future__ import annotations

import unicodedata

import pytest
from conftest import STARTER_IDS
from hypothesis import given
from hypothesis import strategies as st

from nlp import KnowledgeIndex, Outcome, Understanding, understand
from nlp.aspects import Aspect, detect_aspects
from nlp.normalize import MAX_QUESTION_CHARS, clean, fold, normalize


def aspects_of(question: str) -> list[Aspect]:
    return detect_aspects(fold(normalize(question)))


# --------------------------------------------------------------------------- folding and cleaning

@pytest.mark.parametrize("text, folded", [
    ("Đăng ký", "dang ky"),
    ("làm CCCD", "lam cccd"),
    ("ĐƯỜNG Phố", "duong pho"),
    ("Giấy khai sinh", "giay khai sinh"),
    ("thường trú, tạm trú", "thuong tru, tam tru"),
    ("Hộ chiếu phổ thông", "ho chieu pho thong"),
    (unicodedata.normalize("NFD", "Đăng ký kết hôn"), "dang ky ket hon"),  # decomposed input folds the same
])
def test_fold_strips_vietnamese_diacritics(text, folded):
    assert fold(text) == folded


def test_fold_makes_typed_with_and_without_diacritics_meet():
    assert fold(normalize("làm CCCD ở đâu")) == fold(normalize("lam cccd o dau"))


@pytest.mark.parametrize("raw, expected", [
    ("<b>Làm</b> <i>CCCD</i>", "làm cccd"),
    ("<script>alert(1)</script>làm hộ chiếu", "alert(1) làm hộ chiếu"),
    ("làm\x00 hộ\x07 chiếu\x1b[31m", "làm hộ chiếu [31m"),
    ("làm hộ chiếu 😀🎉🙏", "làm hộ chiếu"),
    ("  nhiều     khoảng\t\ttrắng \n xuống dòng ", "nhiều khoảng trắng xuống dòng"),
    ("xem https://dichvucong.gov.vn/abc nhé", "xem nhé"),
    ("lệ phí &amp; thời gian", "lệ phí & thời gian"),
])
def test_clean_removes_html_control_characters_and_emoji(raw, expected):
    cleaned = clean(raw)
    assert "<" not in cleaned and ">" not in cleaned
    assert all(ch.isprintable() for ch in cleaned)
    assert not any(unicodedata.category(ch) == "So" for ch in cleaned), "emoji must go"
    assert cleaned == cleaned.lower() and "  " not in cleaned and cleaned == cleaned.strip()
    for word in expected.split():
        if word.isalpha():
            assert word in cleaned.split(), f"{word!r} lost from {raw!r}: {cleaned!r}"


def test_clean_keeps_vietnamese_letters_and_is_nfc():
    decomposed = unicodedata.normalize("NFD", "Đăng ký thường trú")
    assert clean(decomposed) == "đăng ký thường trú"


def test_clean_bounds_very_long_text():
    assert len(clean("làm hộ chiếu " * 2000)) <= MAX_QUESTION_CHARS


# --------------------------------------------------------------------------- teencode

@pytest.mark.parametrize("typed, standard", [
    ("ko", "không"),
    ("đc", "được"),
    ("dc", "được"),
    ("cccd", "căn cước công dân"),
    ("CCCD", "căn cước công dân"),
    ("bn", "bao nhiêu"),
    ("gplx", "giấy phép lái xe"),
    ("đki", "đăng ký"),
    ("kq", "kết quả"),
    ("sv", "sinh viên"),
    ("noxh", "nhà ở xã hội"),
])
def test_teencode_is_expanded(typed, standard):
    assert standard in normalize(f"làm {typed} nhé")


@pytest.mark.parametrize("slipped, meant", [
    ("bhty", "bhyt"),  # two letters swapped
    ("bhxhh", "bhxh"),  # a letter doubled
    ("cccđ", "cccd"),  # "đ" for "d"
])
def test_a_slipped_abbreviation_is_read_as_the_abbreviation(slipped, meant):
    assert normalize(f"mất thẻ {slipped} thì làm lại ở đâu") == normalize(f"mất thẻ {meant} thì làm lại ở đâu")


@pytest.mark.parametrize("word", ["ttlt", "tthcc", "chui", "gplz"])
def test_a_word_one_letter_off_in_another_way_or_an_abbreviation_of_its_own_is_left_as_typed(word):
    # TTLT (thông tư liên tịch) is no TTYT, TTHCC (trung tâm hành chính công) no TTHC, "chui" a word;
    # "gplz" is as near GPLX as GPLĐ.
    assert normalize(f"theo {word} nào") == f"theo {word} nào"


def test_dk_is_dang_ky_before_a_noun_and_duoc_at_the_end():
    assert normalize("dk tam tru").startswith("đăng ký")
    assert normalize("đk kết hôn ở đâu").startswith("đăng ký kết hôn")
    assert normalize("làm online đk ko") == "làm online được không"
    assert "đăng ký" not in normalize("làm online đk ko")


def test_teencode_question_means_the_same_as_the_standard_one():
    assert fold(normalize("lam cccd het bn tien")) == fold(normalize("làm căn cước công dân hết bao nhiêu tiền"))


# --------------------------------------------------------------------------- aspects

ASPECT_QUESTIONS = {
    Aspect.DOCUMENTS: ["đăng ký kết hôn cần giấy tờ gì", "dang ky ket hon can giay to gi", "làm hộ chiếu cần mang theo những gì"],
    Aspect.FEE: ["làm hộ chiếu mất bao nhiêu tiền", "lam ho chieu het bao nhieu tien", "lệ phí đăng ký tạm trú là bao nhiêu"],
    Aspect.DURATION: ["làm hộ chiếu bao lâu thì có", "lam ho chieu bao lau", "đăng ký kết hôn mất mấy ngày"],
    Aspect.PLACE: ["làm hộ chiếu ở đâu", "lam ho chieu o dau", "đăng ký thường trú nộp hồ sơ tại cơ quan nào"],
    Aspect.ONLINE: ["đăng ký tạm trú online được không", "dang ky tam tru truc tuyen", "nộp hồ sơ khai sinh trên dịch vụ công"],
    Aspect.POSTAL: ["gửi hồ sơ qua bưu điện được không", "nhan ket qua qua buu dien", "lý lịch tư pháp có gửi về nhà không"],
    Aspect.STEPS: ["các bước đăng ký kết hôn", "cac buoc dang ky ket hon", "quy trình làm hộ chiếu"],
    Aspect.CONDITIONS: ["điều kiện đăng ký thường trú", "dieu kien dang ky thuong tru", "điều kiện để được cấp giấy phép xây dựng"],
    Aspect.LEGAL: ["căn cứ pháp lý của đăng ký kết hôn", "can cu phap ly dang ky ket hon", "đăng ký khai sinh theo nghị định nào"],
}


@pytest.mark.parametrize("aspect, question", [(a, q) for a, qs in ASPECT_QUESTIONS.items() for q in qs],
                         ids=[f"{a.value}-{fold(q)}" for a, qs in ASPECT_QUESTIONS.items() for q in qs])
def test_the_aspect_asked_is_detected_first(aspect, question):
    found = aspects_of(question)
    assert found and found[0] == aspect, f"{question!r} -> {found}"


@pytest.mark.parametrize("question", ["đăng ký kết hôn", "dang ky ket hon", "thủ tục làm hộ chiếu", "ly lich tu phap"])
def test_a_question_naming_only_the_procedure_asks_for_the_overview(question, index):
    assert aspects_of(question) in ([], [Aspect.OVERVIEW])
    result = understand(question, index)
    if result.outcome == Outcome.ANSWER:
        assert result.aspects == (Aspect.OVERVIEW,)


def test_no_aspect_is_reported_twice():
    for questions in ASPECT_QUESTIONS.values():
        for question in questions:
            found = aspects_of(question)
            assert len(found) == len(set(found)), f"{question!r} -> {found}"


def test_a_question_asking_two_things_keeps_both():
    found = aspects_of("làm hộ chiếu mất bao nhiêu tiền và bao lâu thì có")
    assert Aspect.FEE in found and Aspect.DURATION in found


def test_gia_han_is_not_a_price():
    assert Aspect.FEE not in aspects_of("gia hạn tạm trú ở đâu")


# --------------------------------------------------------------------------- understanding on the index

def test_understanding_without_and_with_diacritics_agrees(index):
    a = understand("đăng ký khai sinh cần giấy tờ gì", index)
    b = understand("dang ky khai sinh can giay to gi", index)
    assert a.outcome == b.outcome == Outcome.ANSWER
    assert a.entry_id == b.entry_id == "1.001193"
    assert a.aspects[0] == b.aspects[0] == Aspect.DOCUMENTS


def test_a_follow_up_refers_to_the_last_entry(index):
    result = understand("thế còn lệ phí?", index, "1.001193")
    assert result.outcome == Outcome.ANSWER and result.entry_id == "1.001193" and Aspect.FEE in result.aspects


def test_an_unknown_last_entry_is_ignored(index):
    result = understand("mất bao lâu", index, "9.999999")
    assert result.outcome != Outcome.ANSWER or result.entry_id in index.entries


# --------------------------------------------------------------------------- never raises

NASTY = [
    "", " ", "\n\t\r", "😀" * 50, "🙏🙏🙏", "\x00\x01\x02\x1b\x7f", "\u200b\u200d\ufeff", "'; DROP TABLE entries; --",
    "1' OR '1'='1", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**đậm** _nghiêng_ `code` [link](http://x)",
    "a" * 10_000, "làm hộ chiếu " * 800, "ă" * 10_000, "\u0301" * 500, "𝕳𝖊𝖑𝖑𝖔", "你好，我想办护照", "How do I get a passport?",
    "ﷺ" * 100, "\ud7ff\ue000\uffff", "/start", "1", "0", "99999999999999999999", "%s %d {0} {entry}", "\\x00\\n",
    "đk", "ko", "a", "ạ", "?", "...", "-" * 600,
]


def _check(result) -> None:
    assert isinstance(result, Understanding)
    assert isinstance(result.outcome, Outcome)
    if result.outcome == Outcome.ANSWER:
        assert result.entry_id is not None
    else:
        assert result.entry_id is None


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
@pytest.mark.parametrize("last", [None, "1.001193"])
def test_understanding_survives_nasty_input(text, last, index):
    _check(understand(text, index, last))


@given(text=st.text(), last=st.one_of(st.none(), st.sampled_from(STARTER_IDS), st.text(max_size=12)))
def test_understanding_never_raises(index, text, last):
    _check(understand(text, index, last))


VIETNAMESE_WORDS = ["làm", "căn", "cước", "hộ", "chiếu", "ko", "đk", "bn", "tiền", "ở", "đâu", "khai", "sinh", "😀", "<b>",
                    "\x00", "'", ";", "--", "DROP", "TABLE", "dang", "ky", "tam", "tru", "thế", "còn", "?", "ạ", "cccd"]


@given(words=st.lists(st.one_of(st.sampled_from(VIETNAMESE_WORDS), st.text(max_size=6)), max_size=40),
       last=st.one_of(st.none(), st.sampled_from(STARTER_IDS)))
def test_understanding_never_raises_on_question_like_text(index, words, last):
    _check(understand(" ".join(words), index, last))


@given(st.text(min_size=1, max_size=50))
def test_clean_and_fold_are_total_and_idempotent(text):
    cleaned = clean(text)
    assert clean(cleaned) == cleaned
    assert fold(fold(cleaned)) == fold(cleaned)
    normalize(text)


def test_an_empty_index_understands_nothing_without_raising():
    empty = KnowledgeIndex([])
    for text in ["làm hộ chiếu", "", "chào bạn", "thế còn lệ phí?"]:
        result = understand(text, empty, None)
        _check(result)
        assert result.outcome != Outcome.ANSWER


@pytest.mark.parametrize(("typed", "read"), [
    ("cap lai can cuoc", "cap lai can cuoc"),  # unaccented "cấp lại", not "công an phường lại"
    ("ca nhan", "ca nhan"),  # "cá nhân", not "công an nhân"
    ("the bi hong", "the bi hong"),  # a damaged card ("hỏng"), not "không"
    ("ca phuong", "công an phuong"),
    ("lam online dc hong", "lam online được không"),
])
def test_short_chat_words_that_are_also_unaccented_words_are_read_in_context(typed, read):
    assert normalize(typed) == read
