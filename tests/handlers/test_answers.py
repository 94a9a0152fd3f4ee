"""Replies that answer the question asked (not just its topic): a few lines with the producer's own
estimate, the province a place belongs to now and its centre, the ward rule of the six cities,
topics khuyến công does not cover with who does, and the chat details found on the way."""

from __future__ import annotations

import io

from bot.channels.console import chat as console_chat
from bot.channels.plaintext import numbered_menu
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Button, Reply
from tests.handlers.conftest import Chat

TEXTS = Texts()


def test_a_topic_khuyen_cong_does_not_cover_says_so_and_who_does(chat: Chat) -> None:
    chat.send("co ho tro mua xe may giao hang khong")
    assert "không hỗ trợ" in chat.text and "ngân hàng" in chat.text.lower()
    assert "300 triệu" not in chat.text  # not the machinery card, as if a motorbike were a machine
    assert "hq" in chat.buttons


def test_an_old_province_gives_the_new_one_and_its_centre(chat: Chat) -> None:
    chat.send("co so em o Ha Giang thi nop ho so khuyen cong o dau")
    assert "Tuyên Quang" in chat.text
    assert "Trung tâm Khuyến công tỉnh Tuyên Quang" in chat.text


def test_an_old_district_is_placed_in_its_province(chat: Chat) -> None:
    chat.send("xuong o huyen Gia Lam lam gom, hoi trung tam nao")
    assert "Hà Nội" in chat.text and "Trung tâm Khuyến công thành phố Hà Nội" in chat.text


def test_the_producers_own_amount_gives_an_estimate_with_its_arithmetic(chat: Chat) -> None:
    chat.send("may dong goi 200 trieu duoc ho tro bao nhieu")
    assert "50% × 200 triệu = 100 triệu" in chat.text
    assert len(chat.text.splitlines()) <= 7


def test_one_machine_over_the_cap_gets_the_machine_cap_only(chat: Chat) -> None:
    chat.send("mua may cat 800tr dc ho tro bn")
    assert "300 triệu" in chat.text and "450 triệu" not in chat.text


def test_a_whole_line_gets_the_line_cap(chat: Chat) -> None:
    chat.send("day chuyen say 1,2 ty dc ho tro bn")
    assert "450 triệu" in chat.text and "600 triệu" in chat.text  # 50% × 1,2 tỷ, then the cap


def test_a_ward_of_a_centrally_run_city_gets_the_craft_village_rule(chat: Chat) -> None:
    chat.send("xuong em o phuong Kim Lien Ha Noi lam bun co dc ho tro may khong")
    assert "làng nghề" in chat.text


def test_what_was_read_can_be_kept_in_the_profile(chat: Chat) -> None:
    chat.send("co so em o Ha Giang, ho kinh doanh, mua may 500 trieu duoc bao nhieu")
    save = [b for r in chat.last for b in r.flat_buttons if b.data == "sv"]
    assert save and "Tuyên Quang" in save[0].label
    chat.press("sv")
    profile = chat.state()[1]
    assert (profile.province, profile.legal_form, profile.investment_cost_vnd) == (
        "Tuyên Quang",
        "household_business",
        500_000_000,
    )


def test_a_second_question_is_answered_briefly_too(chat: Chat) -> None:
    chat.send("mua may say 300 trieu dc bn, con vay ngan hang thi hoi o dau")
    assert len(chat.last) == 2
    assert "150 triệu" in chat.last[0].text
    assert "không thuộc khuyến công" in chat.last[1].text and "Ngân hàng" in chat.last[1].text


def test_what_is_asked_about_the_programme_is_answered_in_the_reply(chat: Chat) -> None:
    chat.send("mua may say 300 trieu dc bn, nop ho so o dau")
    assert len(chat.last) == 1
    assert "150 triệu" in chat.text and "Trung tâm Khuyến công" in chat.text
    chat.send("mo hinh trinh dien 3 ty thi dc bao nhieu, co ung truoc ko")
    assert "900 triệu" in chat.text and "70%" in chat.text  # the advance, from the payment FAQ
    chat.send("ho tro di hoi cho o nuoc ngoai may lan 1 nam")
    assert "2 lần" in chat.text  # the passage that answers "how many times"


def test_not_sure_without_topics_has_no_orphan_line(chat: Chat) -> None:
    chat.send("zzqx wwpt")
    assert "Hoặc bấm" not in chat.text or "mục dưới đây" in chat.text


def test_a_single_choice_is_not_from_1_to_1() -> None:
    menu = numbered_menu(
        Reply("x", ((Button("Hỏi cán bộ", "h"),),)),
        TEXTS.label("plain_menu_hint"),
        TEXTS.label("plain_menu_hint_one"),
    )
    assert "1 đến 1" not in menu and "gõ số 1" in menu


def test_the_console_does_not_greet_by_the_login_name(dialogue: Dialogue) -> None:
    out = io.StringIO()
    console_chat(dialogue, TEXTS.label("plain_menu_hint"), stdin=io.StringIO(""), stdout=out, chat_id="root")
    assert "root" not in out.getvalue()


def test_use_name_stays_offered_after_a_refused_name(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("12345")  # refused: no letters
    assert "no_letters" not in chat.text and "chữ" in chat.text  # says why
    assert any(b.endswith(":use_name") for b in chat.buttons)


def test_a_district_named_bare_in_a_sentence_is_understood(chat: Chat) -> None:
    chat.send("dong van lam ruou ngo, xin ho tro khuyen cong")
    assert "Tuyên Quang" in chat.text and "Hà Giang" in chat.text


def test_everyday_phrases_are_not_taken_for_places(chat: Chat) -> None:
    chat.send("khuyen cong la gi, can cu van ban phap ly nao")  # "là gì" = La Gi, "văn bản" = Văn Bàn
    assert "📍" not in chat.text
    chat.send("may cu da qua su dung co duoc ho tro khong")  # "cũ đã" = Cự Đà
    assert "📍" not in chat.text
    assert "máy mới" in chat.text  # the passage that answers it


def test_a_special_zone_is_named_as_one(chat: Chat) -> None:
    chat.send("lam nuoc mam o Con Dao co thuoc doi tuong khong")
    assert "nay là đặc khu thuộc thành phố Hồ Chí Minh" in chat.text  # not "thành phố TP Hồ Chí Minh"
    assert "Ai được hưởng" in chat.text  # a special zone qualifies: no ward rule


def test_amounts_in_words_and_listed_together(chat: Chat) -> None:
    chat.send("may xat gao hai tram trieu duoc ho tro nhieu khong")
    assert "100 triệu" in chat.text and "450 triệu" not in chat.text  # one machine, its own estimate
    chat.send("mua 1 may cat 300tr va 1 may mai 200tr thi ho tro bn")
    assert "= 250 triệu" in chat.text


def test_a_machine_with_its_price_is_machinery_even_when_the_words_resemble_another_topic(
    chat: Chat,
) -> None:
    chat.send("day chuyen 2 ty lam giay ve sinh")  # "giấy", "vệ sinh": food-safety certificates
    assert "450 triệu" in chat.text and "không thuộc" not in chat.text
    chat.send("mua may cay lua 300tr co dc ho tro ko")  # farm machinery is not khuyến công
    assert "không thuộc chương trình khuyến công" in chat.text


def test_what_the_producer_says_of_themselves_is_answered_first(chat: Chat) -> None:
    chat.send("mo quan cafe muon mua may pha co dc khuyen cong ho tro ko")
    assert "trực tiếp sản xuất" in chat.text and "300 triệu" not in chat.text
    chat.send("HTX co dc ho tro khong, ho so gom nhung gi")
    assert "hợp tác xã" in chat.text and "Giấy tờ" in chat.text
    chat.send("gom o Hoi An co dc ho tro ko")  # a ward of Đà Nẵng now, maybe
    assert "làng nghề" in chat.text


def test_documents_asked_about_a_programme_come_from_that_programme(chat: Chat) -> None:
    chat.send("quyet toan ho tro may moc can giay to gi")
    assert "Hỗ trợ mua máy móc" in chat.text
    assert "biên bản nghiệm thu" in chat.text  # the settlement papers, named first
    chat.send("san pham tieu bieu can bao nhieu diem, ho so gom nhung gi")
    assert "70 điểm" in chat.text and "Phiếu đăng ký tham gia bình chọn" in chat.text


def test_a_second_question_answered_inside_the_first_reply_is_not_repeated(chat: Chat) -> None:
    chat.send("mua may ep dau 400tr dc ho tro bn, bao lau thi nhan tien")
    assert len(chat.last) == 1
    assert "200 triệu" in chat.text and "nghiệm thu" in chat.text
