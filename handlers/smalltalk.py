"""Friendly replies to greetings, thanks and goodbyes; they never claim a procedure."""

from __future__ import annotations

from config import Settings
from nlp.understanding import SmallTalk

EMPTY_REPLY = (
    "Bạn chưa nhập câu hỏi. Bạn cứ hỏi bằng lời thường, có dấu hay không dấu đều được, "
    "ví dụ: \"làm thẻ căn cước mất bao nhiêu tiền\" hoặc \"đăng ký khai sinh cần giấy tờ gì\"."
)

NO_WORDS_REPLY = (
    "Xin lỗi, tôi chỉ đọc được câu hỏi bằng chữ. Bạn vui lòng gõ câu hỏi, ví dụ: "
    "\"làm lại thẻ căn cước bị mất\" hoặc gõ /thutuc để xem danh sách thủ tục."
)


def small_talk_reply(kind: SmallTalk | None, settings: Settings) -> str:
    if kind == SmallTalk.THANKS:
        return "Dạ, không có gì ạ. Bạn cần hỏi thêm thủ tục nào cứ nhắn cho tôi nhé."
    if kind == SmallTalk.GOODBYE:
        return "Chào bạn, chúc bạn một ngày tốt lành! Khi cần hỏi thủ tục, bạn cứ nhắn lại nhé."
    if kind == SmallTalk.WHO:
        return (f"Tôi là trợ lý tự động của {settings.office_name}, giúp bạn tra cứu thủ tục hành chính: "
                "giấy tờ cần nộp, lệ phí, thời gian, nơi nộp, nộp online hay qua bưu điện.")
    if kind == SmallTalk.ACK:
        return "Dạ vâng. Bạn cần hỏi thêm gì cứ nhắn cho tôi nhé."
    return ("Xin chào! Tôi là trợ lý thủ tục hành chính. Bạn muốn hỏi việc gì ạ? "
            "Ví dụ: \"làm lại thẻ căn cước bị mất\", \"đăng ký tạm trú cần giấy tờ gì\". Gõ /thutuc để xem danh sách.")
