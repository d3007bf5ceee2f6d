"""Conversations through the router, as a citizen sees them: answers, clarifying questions, "I don't
know", follow-ups, small talk, bad input, commands and buttons."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import NATIONAL_SAMPLE, Chat, make_settings
from sqlalchemy import func, select

from handlers import build_router
from handlers.answers import ASPECT_LABELS, OFFER_ORDER, SECTIONS, write_answer
from handlers.core import SORRY
from handlers.messages import Reply
from knowledge.catalog import Catalog
from knowledge.db import session_factory
from knowledge.models import EntryRow
from nlp.aspects import Aspect
from nlp.normalize import fold

VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.IGNORECASE)


def body(reply: Reply) -> str:
    """The answer after its title line ("📋 name"): where the asked aspect must come first."""
    title, _, rest = reply.text.partition("\n\n")
    assert title.startswith("📋"), reply.text[:200]
    return rest


def same_entry(catalog: Catalog, got: str | None, wanted: str) -> bool:
    return got is not None and catalog.get(got) is not None and catalog.get(got).id == catalog.get(wanted).id


def choice_buttons(reply: Reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row if b.data.startswith("a:")]


# --------------------------------------------------------------------------- answer

def test_a_clear_question_is_answered_with_the_asked_aspect_first(chat, catalog):
    reply = chat.ask("dang ky khai sinh can giay to gi")
    assert reply.entry_id == "1.001193"
    assert reply.aspects[0] == "documents"
    assert body(reply).startswith(ASPECT_LABELS[Aspect.DOCUMENTS])
    assert "Giấy chứng sinh" in reply.text
    assert "Bạn có thể hỏi thêm" in reply.text, "an answer offers the other aspects"
    offered = choice_buttons(reply)
    assert "a:1.001193:fee" in offered and "a:1.001193:documents" not in offered
    # The first six aspects not answered, in the order offered.
    not_answered = [a for a in OFFER_ORDER if a != Aspect.DOCUMENTS]
    assert offered == [f"a:1.001193:{a.value}" for a in not_answered[:6]]
    assert reply.candidates and reply.candidates[0] == "1.001193"


def test_the_first_card_fee_question_says_it_is_free(chat):
    reply = chat.ask("làm thẻ căn cước lần đầu mất bao nhiêu tiền")
    assert reply.entry_id == "1.014061"
    assert reply.aspects[0] == "fee"
    fee = body(reply)
    assert fee.startswith(ASPECT_LABELS[Aspect.FEE])
    assert "miễn" in fee.lower().split("\n\n")[0]


ASPECT_CASES = [
    ("đăng ký khai sinh cần giấy tờ gì", "1.001193", Aspect.DOCUMENTS),
    ("giấy tờ cần để làm hộ chiếu", "1.001456", Aspect.DOCUMENTS),
    ("làm thẻ căn cước lần đầu mất bao nhiêu tiền", "1.014061", Aspect.FEE),
    ("lam cccd lan dau het bao nhieu tien", "1.014061", Aspect.FEE),
    ("đăng ký tạm trú lệ phí bao nhiêu", "1.004194", Aspect.FEE),
    ("làm hộ chiếu mất bao lâu thì có", "1.001456", Aspect.DURATION),
    ("lam ho chieu bao lau", "1.001456", Aspect.DURATION),
    ("đăng ký kết hôn ở đâu", "1.000894", Aspect.PLACE),
    ("dang ky ket hon o dau", "1.000894", Aspect.PLACE),
    ("đăng ký tạm trú online được không", "1.004194", Aspect.ONLINE),
    ("dang ky tam tru online duoc khong", "1.004194", Aspect.ONLINE),
    ("xin lý lịch tư pháp có nhận kết quả qua bưu điện được không", "3.000333", Aspect.POSTAL),
    ("gui ho so ly lich tu phap qua buu dien", "3.000333", Aspect.POSTAL),
    ("các bước đăng ký kết hôn", "1.000894", Aspect.STEPS),
    ("quy trình đăng ký khai tử", "1.000656", Aspect.STEPS),
    ("điều kiện nhập hộ khẩu", "1.004222", Aspect.CONDITIONS),
    ("điều kiện cấp giấy phép xây dựng nhà ở", "1.013225", Aspect.CONDITIONS),
    ("căn cứ pháp lý của thủ tục đăng ký kết hôn", "1.000894", Aspect.LEGAL),
    ("đăng ký khai tử theo nghị định nào", "1.000656", Aspect.LEGAL),
    ("thủ tục làm hộ chiếu phổ thông", "1.001456", Aspect.OVERVIEW),
    ("đăng ký kết hôn", "1.000894", Aspect.OVERVIEW),
    ("làm lại thẻ căn cước bị mất", "1.014064", Aspect.OVERVIEW),
]


@pytest.mark.parametrize("question, entry_id, aspect", ASPECT_CASES, ids=[f"{a.value}-{fold(q)}" for q, _, a in ASPECT_CASES])
def test_each_aspect_is_answered_first(router, catalog, question, entry_id, aspect):
    reply = Chat(router).ask(question)
    assert same_entry(catalog, reply.entry_id, entry_id), f"{question!r} -> {reply.entry_id} (candidates {reply.candidates})"
    assert reply.aspects and reply.aspects[0] == aspect.value, f"{question!r} -> {reply.aspects}"
    entry = catalog.get(entry_id)
    first_section = SECTIONS[aspect](entry)
    if aspect == Aspect.OVERVIEW:
        assert body(reply).startswith(entry.summary)
    else:
        assert body(reply).startswith(f"{ASPECT_LABELS[aspect]}:\n{first_section}")


def test_each_aspect_appears_once_in_an_answer(router):
    for question, _, _ in ASPECT_CASES:
        reply = Chat(router).ask(question)
        assert len(reply.aspects) == len(set(reply.aspects)), f"{question!r} -> {reply.aspects}"
        for label in ASPECT_LABELS.values():
            assert reply.text.count(f"{label}:\n") <= 1, f"{question!r} repeats the section {label!r}"


def test_a_fee_answer_says_when_online_filing_is_cheaper(chat):
    reply = chat.ask("đăng ký thường trú hết bao nhiêu tiền")
    assert reply.entry_id == "1.004222" and reply.aspects[0] == "fee"
    fee = body(reply).split("\n\n")[0]
    assert fee.startswith(ASPECT_LABELS[Aspect.FEE])
    assert "rẻ hơn" in fee
    assert "10.000" in fee and "20.000" in fee


def test_a_topic_asked_about_an_aspect_it_is_itself_about_answers_with_what_it_explains(chat):
    """Paying fees online, asked "bằng cách nào ... online", said it had no information about online filing."""
    reply = chat.ask("thanh toán lệ phí online bằng cách nào")
    assert reply.entry_id == "thanh-toan-truc-tuyen"
    assert "chưa có thông tin" not in reply.text
    assert "biên lai điện tử" in reply.text


def test_a_failed_payment_finds_the_online_payment_topic(chat):
    reply = chat.ask("thanh toán không thành công bằng thẻ ngân hàng thì xử lý thế nào")
    assert reply.entry_id == "thanh-toan-truc-tuyen"


def test_a_fee_line_does_not_repeat_its_channel_label(catalog):
    """'Nộp trực tiếp: Nộp trực tiếp: 20.000 đồng/lần' reads like a glitch."""
    repeated = []
    for entry in catalog.entries.values():
        text = write_answer(entry, (Aspect.FEE,))
        for label in ("Nộp trực tiếp", "Nộp trực tuyến", "Qua bưu điện"):
            if f"{label}: {label}" in text:
                repeated.append((entry.id, label))
    assert not repeated, repeated


def test_a_fee_set_by_the_province_is_answered_as_such(chat):
    reply = chat.ask("đăng ký hộ kinh doanh hết bao nhiêu tiền")
    assert reply.entry_id == "1.001612" and reply.aspects[0] == "fee"
    assert "tỉnh" in body(reply).split("\n\n")[0]


def test_every_answer_fits_in_one_chat_message(catalog):
    for entry in catalog.entries.values():
        for aspect in Aspect:
            text = write_answer(entry, (aspect,))
            assert text.strip() and len(text) < 4000, (entry.id, aspect, len(text))
            assert "None" not in text, (entry.id, aspect)


# --------------------------------------------------------------------------- clarify

# Questions that name a family of procedures, not one: a sane matcher asks which one for at least one of them.
AMBIGUOUS = ["thẻ căn cước", "mất giấy tờ", "giấy phép lái xe", "bằng lái", "khai sinh", "sổ đỏ", "đất", "giấy phép",
             "giấy chứng nhận", "hộ khẩu", "bảo hiểm", "làm lại thẻ"]


def _first_clarifying(router) -> tuple[str, Reply]:
    for question in AMBIGUOUS:
        reply = Chat(router, f"probe-{question}").ask(question)
        if reply.entry_id is None and choice_buttons(reply):
            return question, reply
    pytest.fail(f"none of {AMBIGUOUS} gets a clarifying question")


def test_an_ambiguous_question_offers_two_or_three_choices_and_1_answers_the_first(router, catalog):
    question, _ = _first_clarifying(router)
    chat = Chat(router, "clarify")
    reply = chat.ask(question)
    assert reply.entry_id is None
    choices = [data.split(":")[1] for data in choice_buttons(reply)]
    assert 2 <= len(choices) <= 3, reply.text
    assert len(set(choices)) == len(choices)
    for number, entry_id in enumerate(choices, 1):
        assert f"{number}. " in reply.text
        assert catalog.get(entry_id) is not None
    assert list(reply.candidates[:len(choices)]) == choices

    picked = chat.ask("1")
    assert picked.entry_id == choices[0]
    assert body(picked)

    again = Chat(router, "clarify-2")
    again.ask(question)
    assert again.ask("số 2").entry_id == choices[1]


def test_a_clarifying_choice_button_answers_that_entry(router):
    question, reply = _first_clarifying(router)
    data = choice_buttons(reply)[-1]
    answer = Chat(router, "clarify-button").press(data)[0]
    assert answer.entry_id == data.split(":")[1]


SO_DO = {"1.013978", "1.013831", "1.012783", "1.012786"}  # sổ đỏ: first issue, transfer, renewal, lost


def test_so_do_is_recognised(router):
    """'sổ đỏ' is what everyone calls the land-use certificate: answer one of its procedures or ask which one."""
    reply = Chat(router, "so-do").ask("sổ đỏ")
    offered = {reply.entry_id} if reply.entry_id else {d.split(":")[1] for d in choice_buttons(reply)}
    assert offered and offered <= SO_DO, f"'sổ đỏ' -> {reply.entry_id}, choices {choice_buttons(reply)}"


@pytest.mark.parametrize("question", ["đăng ký cư trú", "dang ky cu tru online duoc khong"])
def test_residence_registration_as_an_umbrella_term_offers_temporary_and_permanent(router, question):
    """"Đăng ký cư trú" is the law's word for both registrations: the bot asks which one is meant."""
    reply = Chat(router, "cu-tru").ask(question)
    assert reply.entry_id is None
    assert {"1.004194", "1.004222"} <= {d.split(":")[1] for d in choice_buttons(reply)}


def test_a_name_two_procedures_share_offers_both_whatever_else_is_asked(router):
    """"Thời gian giải quyết đăng ký cư trú": the shared name is read as such even when the rest of the
    question is about duration (an aspect), not only when it is asked alone."""
    reply = Chat(router, "cu-tru-time").ask("thời gian giải quyết đăng ký cư trú mất bao lâu")
    assert reply.entry_id is None
    assert {d.split(":")[1] for d in choice_buttons(reply)} == {"1.004194", "1.004222"}


@pytest.mark.parametrize("question", ["mất hộ chiếu phổ thông thì phải báo trong mấy ngày", "mất hộ chiếu phổ thông báo ở đâu"])
def test_a_question_naming_the_lost_passport_report_is_answered_with_it(chat, question):
    """The question contains the whole name "mất hộ chiếu": it names that report even when the matcher alone
    put "cấp hộ chiếu phổ thông" first (it used to be offered as one of two choices)."""
    assert chat.ask(question).entry_id == "1.010386"


def test_sickness_benefits_are_not_answered_with_maternity_benefits(chat):
    """No starter entry is about sickness benefits; "chế độ" alone names maternity benefits' "chế độ thai
    sản", and "ốm đau", which no entry's names know, must not make that look like a name."""
    assert chat.ask("chế độ ốm đau").entry_id is None


def test_a_bare_aspect_question_about_the_post_stays_on_the_procedure(chat):
    """"Gửi về nhà qua bưu điện được không" after a passport question asks how the passport comes back: the
    post office topic's name is only the aspect's own words, so the subject does not change."""
    assert chat.ask("Làm hộ chiếu lần đầu hết bao nhiêu tiền ạ").entry_id == "1.001456"
    assert chat.ask("làm xong có gửi về nhà qua bưu điện được không hay phải lên lấy").entry_id == "1.001456"


@pytest.mark.parametrize(("question", "entry_id"), [
    ("sắp lấy vợ thì phải làm thủ tục gì, cần giấy tờ gì", "1.000894"),
    ("lấy vợ cùng phường thì phải chuẩn bị những giấy tờ gì", "1.000894"),
    ("con gái tôi lấy chồng Hàn Quốc thì đăng ký ở đâu", "2.000806"),
])
def test_marrying_in_everyday_words_finds_marriage_registration(chat, question, entry_id):
    assert chat.ask(question).entry_id == entry_id


def test_a_number_beyond_the_choices_is_not_taken_as_a_choice(router):
    question, reply = _first_clarifying(router)
    chat = Chat(router, "clarify-9")
    chat.ask(question)
    out = chat.ask("9")
    assert out.text.strip() and SORRY not in out.text
    assert out.entry_id is None, "there was no ninth choice"


@pytest.mark.parametrize("number", ["1", "2", "9"])
def test_a_bare_number_without_pending_choices_claims_nothing(router, number):
    """'1' or '9' typed out of the blue picks nothing: no answer about 'CMND 9 số', no random choices."""
    reply = Chat(router, f"number-{number}").ask(number)
    assert reply.entry_id is None, f"{number!r} -> {reply.entry_id}"
    assert not choice_buttons(reply), f"{number!r} offered {choice_buttons(reply)}"


# --------------------------------------------------------------------------- don't know

OUT_OF_SCOPE = ["giá vàng hôm nay bao nhiêu", "mua vé máy bay đi đà nẵng", "cách nấu phở bò",
                "thời tiết hà nội ngày mai thế nào", "tỷ giá đô la hôm nay", "xem bóng đá ở đâu",
                # without marks "giam" is also the first word of "giám hộ": one syllable of a name is not the name
                "gia xang hom nay tang hay giam"]


@pytest.mark.parametrize("question", OUT_OF_SCOPE, ids=lambda q: fold(q).replace(" ", "_"))
def test_an_unrelated_question_claims_no_entry_and_points_to_browsing_and_contact(chat, question):
    reply = chat.ask(question)
    assert reply.entry_id is None, f"{question!r} was answered with {reply.entry_id}"
    assert "/thutuc" in reply.text and ("/lienhe" in reply.text or "liên hệ" in reply.text.lower())
    assert not choice_buttons(reply), "it says it does not know rather than offering unrelated choices"


@pytest.mark.parametrize(("question", "entry_id"), [
    ("Quán ăn nhà tôi muốn nghỉ bán khoảng 3 tháng vì phải về quê chăm mẹ, có phải báo với ai không ạ?", "1.001570"),
    ("nhà em có mấy người họ hàng dưới quê lên chơi ở 5 ngày, có phải báo công an không ạ", "2.001159"),
    ("Em đang hưởng án treo, giờ muốn đi làm ăn ở tỉnh khác 3 tháng thì có phải xin phép không", "1.003677"),
])
def test_a_situation_described_at_length_finds_its_procedure(chat, question, entry_id):
    """Answered, or, when the decision model is not sure enough, offered first among the choices."""
    reply = chat.ask(question)
    assert reply.entry_id == entry_id or reply.entry_id is None and choice_buttons(reply)[:1] == [f"a:{entry_id}:conditions"], reply.text[:300]


def test_a_short_question_that_names_no_procedure_is_not_answered_by_a_lookalike(chat):
    """'mã số thuế' appears in the closing of a household business, but a personal tax code is something else."""
    reply = chat.ask("mã số thuế cá nhân tra ở đâu")
    assert reply.entry_id is None


@pytest.mark.parametrize("question", [
    "Tôi vừa mua xe máy mới ở cửa hàng, giờ đăng ký biển số lần đầu thế nào?",
    "xe may moi mua o cua hang dang ky bien so lan dau lam sao",
])
def test_registering_a_new_vehicle_is_not_answered_as_a_change_of_owner(chat, question):
    """First registration is another procedure (the starter entries lack it): the change of owner once
    carried "đăng ký xe chính chủ" and "thu hồi đăng ký biển số xe" among its names, so such a question
    named it; a seller's deregistration is a record of its own in the national catalogue."""
    assert chat.ask(question).entry_id != "1.013076"


def test_a_change_of_owner_is_still_named_by_its_own_words(chat):
    assert chat.ask("mua xe cũ sang tên chính chủ cần giấy tờ gì").entry_id == "1.013076"


@pytest.mark.parametrize("question", ["đăng ký tham gia BHXH tự nguyện ở đâu", "BHXH tự nguyện"])
def test_voluntary_social_insurance_is_not_answered_as_maternity_benefits(chat, question):
    """Maternity benefits once carried "thai sản BHXH tự nguyện" among their names and an example asking
    whether voluntary members get them, so a question about voluntary insurance itself named them (issue 11)."""
    assert chat.ask(question).entry_id != "2.000693"


@pytest.fixture(scope="module")
def with_catalogue() -> Catalog:
    """The starter entries and the sample of national records, as after importing the catalogue."""
    from knowledge.dvcqg import load_catalogue
    from knowledge.starter import read_starter

    starter = read_starter()
    known = {entry.id for entry in starter}
    return Catalog.from_entries(starter + [e for e in load_catalogue(NATIONAL_SAMPLE) if e.id not in known])


@pytest.mark.parametrize("question", ["Tôi làm mất cà vẹt xe máy, muốn làm lại thì làm sao?", "mất cà vẹt xe làm lại thế nào"])
def test_a_lost_vehicle_registration_is_not_answered_as_a_change_of_owner(with_catalogue, question):
    """A lost registration certificate is replaced by a procedure of its own; the change of owner once had
    a seller's lost certificate among its examples."""
    assert Chat(build_router(with_catalogue, make_settings())).ask(question).entry_id != "1.013076"


def test_certifying_a_will_is_not_answered_as_certifying_a_contract(chat):
    """A will is certified by a procedure of its own (2.001019 in the national catalogue), not as a contract
    about land or a house; the contract entry once listed it among its names and examples."""
    reply = chat.ask("bố tôi muốn lập di chúc để lại đất cho các con, ra xã chứng thực di chúc được không")
    assert reply.entry_id != "2.001035"


def test_with_the_catalogue_deregistering_a_vehicle_is_not_answered_as_a_change_of_owner(with_catalogue):
    """The catalogue has a deregistration record of its own (1.013065)."""
    question = "bán xe rồi làm thủ tục thu hồi đăng ký biển số xe thế nào"
    assert Chat(build_router(with_catalogue, make_settings())).ask(question).entry_id != "1.013076"


@pytest.mark.parametrize("question", ["giam ho cho em trai bi tam than", "dang ky giam ho"])
def test_a_name_typed_whole_without_marks_is_still_named(chat, question):
    assert chat.ask(question).entry_id == "1.004837"


def test_dont_know_gives_the_offices_phone_when_configured(catalog):
    router = build_router(catalog, make_settings(office_name="Bộ phận Một cửa xã Tân Lập", office_phone="0210 3856 123"))
    reply = Chat(router).ask("cách nấu phở bò")
    assert reply.entry_id is None
    assert "0210 3856 123" in reply.text


# --------------------------------------------------------------------------- follow-up

def test_follow_ups_refer_to_the_last_entry(chat):
    first = chat.ask("làm lại thẻ căn cước bị mất")
    assert first.entry_id == "1.014064"

    duration = chat.ask("mất bao lâu")
    assert duration.entry_id == "1.014064" and duration.aspects[0] == "duration"
    assert body(duration).startswith(ASPECT_LABELS[Aspect.DURATION])

    fee = chat.ask("thế còn lệ phí?")
    assert fee.entry_id == "1.014064" and fee.aspects[0] == "fee"
    assert body(fee).startswith(ASPECT_LABELS[Aspect.FEE])

    online = chat.ask("nộp online được ko")
    assert online.entry_id == "1.014064" and online.aspects[0] == "online"


def test_a_new_procedure_after_a_follow_up_changes_the_subject(chat):
    chat.ask("làm lại thẻ căn cước bị mất")
    assert chat.ask("mất bao lâu").entry_id == "1.014064"
    changed = chat.ask("còn làm hộ chiếu thì cần giấy tờ gì")
    assert changed.entry_id == "1.001456" and changed.aspects[0] == "documents"


def test_a_new_procedure_named_outright_changes_the_subject(chat):
    chat.ask("đăng ký kết hôn cần giấy tờ gì")
    changed = chat.ask("thế còn đăng ký khai tử thì nộp ở đâu")
    assert changed.entry_id == "1.000656" and changed.aspects[0] == "place"


def test_mat_bao_lau_is_a_duration_not_a_loss(chat):
    reply = chat.ask("làm hộ chiếu thì mất bao lâu")
    assert reply.entry_id == "1.001456" and reply.aspects[0] == "duration"


def test_an_unrelated_question_after_an_answer_or_a_clarification_is_not_taken_as_a_follow_up(router):
    answered = Chat(router, "after-answer")
    answered.ask("đăng ký kết hôn cần giấy tờ gì")
    assert answered.ask("cách nấu phở bò").entry_id is None
    question, _ = _first_clarifying(router)
    clarified = Chat(router, "after-clarify")
    clarified.ask(question)
    assert clarified.ask("cách nấu phở bò").entry_id is None


def test_chats_do_not_share_their_subject(router):
    Chat(router, "a").ask("làm lại thẻ căn cước bị mất")
    other = Chat(router, "b").ask("mất bao lâu")
    assert other.entry_id is None


def test_a_follow_up_survives_small_talk(chat):
    chat.ask("đăng ký kết hôn cần giấy tờ gì")
    assert chat.ask("cảm ơn nhé").entry_id is None
    assert chat.ask("thế còn lệ phí?").entry_id == "1.000894"


# --------------------------------------------------------------------------- small talk

@pytest.mark.parametrize("text, words", [
    ("chào bạn", ["chào"]),
    ("xin chào", ["chào"]),
    ("cảm ơn nhé", ["không có gì", "cảm ơn"]),
    ("cam on ban nhieu", ["không có gì", "cảm ơn"]),
    ("tạm biệt", ["chào", "tốt lành"]),
])
def test_small_talk_gets_a_friendly_reply_and_claims_no_entry(chat, text, words):
    reply = chat.ask(text)
    assert reply.entry_id is None
    assert not choice_buttons(reply)
    assert any(w in reply.text.lower() for w in words), reply.text
    assert "chưa tìm thấy" not in reply.text


# --------------------------------------------------------------------------- bad input

BAD_INPUT = [
    "", "   ", "\n\t", "😀😀😀", "🙏", "[Sticker]", "a" * 10_000, "làm hộ chiếu " * 800,
    "'; DROP TABLE entries; --", "1'; DELETE FROM entry_fees WHERE '1'='1", "<script>alert(1)</script>",
    "**bold** [link](http://example.com) `code`", "\x00\x01\x02\x07\x1b[2J", "\u200b\u200b",
    "How do I renew my passport?", "我想办护照", "Привет", "/", "?", "🤔 ??? !!!",
]
NO_ENTRY = {"", "   ", "\n\t", "😀😀😀", "🙏", "[Sticker]", "a" * 10_000, "'; DROP TABLE entries; --",
            "<script>alert(1)</script>", "\x00\x01\x02\x07\x1b[2J", "\u200b\u200b", "我想办护照", "Привет", "/", "?", "🤔 ??? !!!"}


@pytest.mark.parametrize("text", BAD_INPUT, ids=range(len(BAD_INPUT)))
def test_bad_input_gets_a_polite_vietnamese_reply(router, caplog, text):
    with caplog.at_level(logging.ERROR):
        replies = Chat(router).send(text)
    assert replies, "every message gets a reply"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no handler failed"
    for reply in replies:
        assert reply.text.strip() and SORRY not in reply.text
        assert VIETNAMESE.search(reply.text), reply.text
        assert "<script>" not in reply.text and "DROP TABLE" not in reply.text
    if text in NO_ENTRY:
        assert replies[0].entry_id is None, f"{text[:40]!r} -> {replies[0].entry_id}"


def test_bad_input_leaves_the_database_whole(open_kb, database_url):
    """Through a router on a real database (SQLite, and PostgreSQL when configured)."""
    engine = open_kb()
    router = build_router(Catalog.load(engine), make_settings(database_url))
    chat = Chat(router, "bad")
    for text in BAD_INPUT:
        assert SORRY not in chat.ask(text).text
    assert chat.ask("dang ky khai sinh can giay to gi").entry_id == "1.001193"
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(EntryRow)) == 53
    assert len(Catalog.load(engine).entries) == 53


# --------------------------------------------------------------------------- commands

def test_start_welcomes(chat):
    reply = chat.ask("/start")
    assert "Xin chào" in reply.text and "/thutuc" in reply.text
    assert reply.entry_id is None


def test_start_with_an_entry_id_opens_that_entry(chat):
    reply = chat.ask("/start 1.001193")
    assert reply.entry_id == "1.001193" and reply.aspects == ("overview",)
    assert chat.ask("mất bao lâu").entry_id == "1.001193", "the deep-linked entry becomes the chat's subject"


def test_start_with_an_equivalent_or_unknown_id(router):
    assert Chat(router, "eq").ask("/start 2.001023").entry_id == "2.000986"
    unknown = Chat(router, "unknown").ask("/start 9.999999")
    assert unknown.entry_id is None and "Xin chào" in unknown.text
    assert "Xin chào" in Chat(router, "bot").ask("/start@motcua_bot").text


def test_help_lists_the_commands(chat):
    text = chat.ask("/help").text
    for command in ("/start", "/help", "/thutuc", "/lienhe"):
        assert command in text


def test_browsing_groups_then_an_entry(router, catalog):
    chat = Chat(router, "browse")
    groups = chat.ask("/thutuc")
    data = [b.data for row in groups.buttons for b in row]
    assert "g:can-cuoc" in data and "g:ho-tich" in data
    assert len(data) == len(catalog.groups())

    listing = chat.press("g:can-cuoc")[0]
    entries = choice_buttons(listing)
    assert "a:1.014061:overview" in entries
    assert all(catalog.get(d.split(":")[1]).group == "can-cuoc" for d in entries)

    opened = chat.press("a:1.014061:overview")[0]
    assert opened.entry_id == "1.014061"
    assert body(opened).startswith(catalog.get("1.014061").summary)

    chat.press("g:ho-tich")
    first = chat.ask("1")
    assert first.entry_id == choices_of(router, "ho-tich")[0]


def choices_of(router, slug: str) -> list[str]:
    return [e.id for e in router.context.catalog.groups()[slug]]


def test_contact_shows_the_office(catalog):
    plain = Chat(build_router(catalog, make_settings())).ask("/lienhe")
    assert "Bộ phận Một cửa" in plain.text
    office = make_settings(office_name="UBND phường Hòa Bình", office_phone="0210 3856 123",
                           office_address="12 Lê Lợi", office_hours="Thứ 2 – thứ 6, 7h30–17h")
    text = Chat(build_router(catalog, office)).ask("/lienhe").text
    for part in ("UBND phường Hòa Bình", "0210 3856 123", "12 Lê Lợi", "7h30"):
        assert part in text


def test_an_unknown_command_is_answered_politely(chat):
    reply = chat.ask("/xyz")
    assert "/help" in reply.text and reply.entry_id is None


# --------------------------------------------------------------------------- buttons

def test_an_aspect_button_answers_that_aspect(chat, catalog):
    reply = chat.press("a:1.014061:fee")[0]
    assert reply.entry_id == "1.014061" and reply.aspects == ("fee",)
    assert body(reply).startswith(f"{ASPECT_LABELS[Aspect.FEE]}:\n{SECTIONS[Aspect.FEE](catalog.get('1.014061'))}")
    assert chat.ask("mất bao lâu").entry_id == "1.014061"


@pytest.mark.parametrize("data", ["a:9.999999:fee", "a::fee", "a", "zz:1.014061", "g:khong-co-nhom", "fb", "a:1.014061:bogus"])
def test_a_stale_or_unknown_button_gets_a_polite_reply(chat, data):
    replies = chat.press(data)
    assert replies
    for reply in replies:
        assert reply.text.strip() and SORRY not in reply.text
        assert VIETNAMESE.search(reply.text)
    if not data.startswith("a:1.014061"):
        assert replies[0].entry_id is None


def test_feedback_buttons_thank_the_user(chat):
    assert "Cảm ơn" in chat.press("fb:1.014061:up")[0].text
    assert "góp ý" in chat.press("fb:1.014061:down")[0].text


# --------------------------------------------------------------------------- console channel

def test_the_console_chat_answers_until_thoat(router, monkeypatch):
    import io

    from rich.console import Console

    from channels.console import run_console

    typed = iter(["dang ky khai sinh can giay to gi", "", "😀", "/thoat", "never read"])
    monkeypatch.setattr("builtins.input", lambda *args: next(typed))
    out = io.StringIO()
    run_console(router, Console(file=out, width=120, color_system=None))
    shown = out.getvalue()
    assert "Xin chào" in shown, "the console opens with the welcome"
    assert "Giấy chứng sinh" in shown
    assert "Bạn chưa nhập câu hỏi" in shown
    assert shown.rstrip().endswith("Tạm biệt!")
    assert next(typed) == "never read", "/thoat ends the chat"


def test_the_console_chat_ends_at_end_of_input(router, monkeypatch):
    import io

    from rich.console import Console

    from channels.console import run_console

    def eof(*args):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    out = io.StringIO()
    run_console(router, Console(file=out, width=120, color_system=None))
    assert "Tạm biệt!" in out.getvalue()


def test_a_failing_text_claim_does_not_stop_ordinary_questions(router):
    """A feature that takes some free text (dossier codes) may fail, e.g. its database; questions still get answers."""
    def broken(incoming, context):
        raise RuntimeError("database unavailable")

    router.text_claim(broken)
    reply = Chat(router, "claim-1").ask("làm căn cước mất bao lâu")
    assert reply.entry_id is not None and "trục trặc" not in reply.text


def test_a_text_claim_answers_what_it_takes_and_passes_the_rest_on(router):
    router.text_claim(lambda incoming, context: [Reply("hồ sơ của bạn")] if "HS-1" in incoming.text else None)
    chat = Chat(router, "claim-2")
    assert chat.ask("HS-1 tới đâu rồi").text == "hồ sơ của bạn"
    assert chat.ask("làm căn cước mất bao lâu").entry_id is not None


def test_handing_in_the_papers_names_no_procedure(chat):
    """"Nộp hồ sơ ... ở đâu" says what is asked (where to hand the papers in), not which procedure: the
    death registration it names is answered, not doubted beside every entry whose name has "hồ sơ"."""
    assert chat.ask("nộp hồ sơ khai tử ở đâu").entry_id == "1.000656"


def test_an_answer_offers_the_same_procedure_filed_another_way(with_catalogue):
    """Temporary vehicle registration filed fully online has a sibling record filed in part online or at
    the office: the answer says so and offers it as a button."""
    reply = Chat(build_router(with_catalogue, make_settings())).ask("Đăng ký xe tạm thời thực hiện bằng dịch vụ công trực tuyến toàn trình")
    assert reply.entry_id == "1.013083"
    assert "còn làm được theo cách khác" in reply.text and "một phần hoặc trực tiếp" in reply.text
    labels = [button.label for row in reply.buttons for button in row]
    assert "Bằng dịch vụ công trực tuyến một phần hoặc trực tiếp" in labels
