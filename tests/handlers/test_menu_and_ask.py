"""Menu, browsing, free questions, handoff to staff, and bad input."""

from __future__ import annotations

from handlers.dialogue import Dialogue
from storage.repositories import Repos
from tests.handlers.conftest import Chat
from tests.support.checks import one

MAIN_MENU = ["mb", "e", "a", "r", "h"]


def test_start_greets_by_name_and_shows_the_main_menu(chat: Chat) -> None:
    chat.send("/start")
    assert "Nguyễn Văn An" in chat.text
    assert chat.buttons == MAIN_MENU


def test_name_with_html_is_escaped(dialogue: Dialogue) -> None:
    chat = Chat(dialogue, chat_id="101", name="<b>Tùng</b> & Co")
    chat.send("/start")
    assert "&lt;b&gt;Tùng&lt;/b&gt; &amp; Co" in chat.text
    assert "<b>Tùng</b>" not in chat.text


def test_menu_words_work_at_any_step(chat: Chat) -> None:
    chat.press("e")
    assert chat.state()[0].flow == "eligibility"
    chat.send("Menu")
    assert chat.buttons == MAIN_MENU
    assert chat.state()[0].flow == "menu"
    chat.press("e")
    chat.send("hủy")
    assert chat.state()[0].flow == "menu"
    assert chat.buttons == MAIN_MENU
    chat.send("/huy")
    assert chat.buttons == MAIN_MENU
    chat.send("/help")
    assert chat.templates == ["help"] and chat.buttons == MAIN_MENU


def test_browse_categories_programmes_and_card(chat: Chat) -> None:
    chat.press("mb")
    assert "c:machinery" in chat.buttons and "c:general" in chat.buttons
    chat.press("c:machinery")
    assert "p:machinery-national" in chat.buttons
    chat.press("p:machinery-national")
    assert "300 triệu đồng" in chat.text and "tối đa" in chat.text
    assert "Nghị định 45/2012" in chat.text
    assert {"e:machinery-national", "a:machinery-national", "pd:machinery-national"} <= set(chat.buttons)
    chat.press("pd:machinery-national")
    details = chat.shown("programme_details")
    assert details["p"].id == "machinery-national" and details["documents"] and details["p"].how_to_apply


def test_card_documents_follow_the_legal_form(chat: Chat) -> None:
    chat.send("/start")
    user_id = chat.state()[1].user_id
    with chat.dialogue.db.session() as s:
        Repos(s).profiles.update(user_id, legal_form="coop")
    chat.press("pd:machinery-national")
    programme = one(chat.dialogue.catalog.kb.programme("machinery-national"))
    for_coop = [d.text for d in programme.documents if not d.only_for or "coop" in d.only_for]
    assert chat.shown("programme_details")["documents"] == for_coop
    assert len(for_coop) < len(programme.documents)  # a household business's papers are left out


def test_diacritic_free_question_gets_a_short_answer_with_the_card_one_tap_away(chat: Chat) -> None:
    chat.send("co so lam bun o xa muon mua may thi nha nuoc ho tro bao nhieu")
    assert "300 triệu" in chat.text
    assert len(chat.text.splitlines()) <= 7  # a phone screen, not the whole card
    # Chi tiết (the card), Giấy tờ, Kiểm tra điều kiện, Đăng ký, Hỏi cán bộ
    assert {
        "p:machinery-national",
        "pd:machinery-national",
        "e:machinery-national",
        "a:machinery-national",
        "hq",
    } <= set(chat.buttons)
    chat.press("p:machinery-national")
    assert chat.shown("programme_card")["p"].id == "machinery-national"  # the full card


def test_unclear_question_offers_topics_and_staff(chat: Chat) -> None:
    chat.send("thoi tiet ngay mai co mua khong")
    assert "hq" in chat.buttons
    assert "mb" in chat.buttons


def test_two_questions_in_one_message(chat: Chat) -> None:
    chat.send("lò sấy có được hỗ trợ mua không, còn đi hội chợ có được hỗ trợ không")
    assert len(chat.last) == 2
    assert "hội chợ" in chat.last[1].text
    assert chat.last[1].flat_buttons


def test_where_to_apply_is_answered_inside_the_first_reply(chat: Chat) -> None:
    chat.send("lò sấy có được hỗ trợ mua không, nộp hồ sơ ở đâu")
    assert len(chat.last) == 1
    assert "Trung tâm Khuyến công" in chat.text


def test_ask_staff_stores_the_question(chat: Chat) -> None:
    chat.press("h")
    assert chat.state()[0].flow == "ask_staff"
    chat.send("Xưởng em ở Sơn La làm chè, muốn hỏi lịch hội chợ năm sau <script>")
    assert "#1" in chat.text
    assert chat.state()[0].flow == "menu"
    with chat.dialogue.db.session() as s:
        questions = Repos(s).staff_questions.open_questions()
        assert [q.text for q in questions] == [
            "Xưởng em ở Sơn La làm chè, muốn hỏi lịch hội chợ năm sau <script>"
        ]


def test_unclear_question_can_be_sent_to_staff_in_one_tap(chat: Chat) -> None:
    chat.send("thu tuc xin giay phep xay nha")
    chat.press("hq")
    with chat.dialogue.db.session() as s:
        assert Repos(s).staff_questions.open_questions()[0].text == "thu tuc xin giay phep xay nha"


def test_unsupported_media_gets_a_polite_answer(chat: Chat) -> None:
    for media in ("sticker", "photo", "voice", "location", "document", None):
        replies = chat.media(media)
        assert replies and replies[0].text
        assert chat.buttons == MAIN_MENU


def test_very_long_message_does_not_crash(chat: Chat) -> None:
    chat.send("hỗ trợ máy móc " * 450)
    assert chat.last and len(chat.text) < 4000


def test_forged_and_unknown_buttons_get_the_current_menu(chat: Chat) -> None:
    for data in (
        "zzz",
        "p:no-such-programme",
        "c:nope",
        "s:abc:1",
        "e:no-such",
        "",
        "pd:what-is-khuyen-cong",
    ):
        chat.press(data)
        assert "stale" in chat.templates
        assert chat.buttons == MAIN_MENU


def test_unknown_command(chat: Chat) -> None:
    chat.send("/xyz")
    assert "/xyz" in chat.text and chat.buttons == MAIN_MENU


def test_greeting_and_thanks(chat: Chat) -> None:
    chat.send("alo")
    assert chat.buttons == MAIN_MENU
    chat.send("cảm ơn")
    assert chat.buttons == MAIN_MENU


def test_every_message_is_logged(chat: Chat) -> None:
    chat.send("/start")
    chat.send("hỗ trợ máy móc")
    with chat.dialogue.db.session() as s:
        user_id = chat.state()[1].user_id
        history = Repos(s).messages.history(user_id)
    assert [m.direction for m in history] == ["in", "out", "in", "out"]


def test_split_questions() -> None:
    from handlers.ask import split_questions

    joiners = ["nop", "o dau", "con"]
    assert split_questions("lò sấy có hỗ trợ ko, nộp hs ở đâu", joiners) == [
        "lò sấy có hỗ trợ ko",
        "nộp hs ở đâu",
    ]
    assert split_questions("máy móc được bao nhiêu? hội chợ thì sao?", joiners) == [
        "máy móc được bao nhiêu",
        "hội chợ thì sao",
    ]
    assert split_questions("mua máy sấy, máy ép có được không", joiners) == [
        "mua máy sấy, máy ép có được không"
    ]


def test_text_channels_pick_an_option_by_its_first_words(dialogue: Dialogue) -> None:
    chat = Chat(dialogue, channel="zalo", chat_id="zz1")
    chat.send("/start")
    chat.send("kiem tra dieu kien")
    assert chat.state()[0].flow == "eligibility"


def test_browsing_records_interests(chat: Chat) -> None:
    chat.press("c:trade_fair")
    chat.press("p:branding-trademark")
    assert chat.state()[1].interests == ["branding", "trade_fair"]


def test_documents_show_every_form_when_the_form_is_unknown(chat: Chat) -> None:
    chat.press("pd:machinery-national")
    assert "(nếu là Hộ kinh doanh)" in chat.text
    assert "(nếu là Hợp tác xã" in chat.text or "(nếu là Tổ hợp tác" in chat.text
