"""The learning loop in the chat: an unconfident question, a "Hỏi cán bộ" question and an answer
marked 👎 each land in the learning queue; 👍 and 👎 under an answer are thanked, on Telegram by
button and on Zalo by the number of the option."""

from __future__ import annotations

from handlers import callbacks as cb
from handlers.dialogue import Dialogue
from services import learning
from services.staff_scope import Scope
from storage.models import LearningItem
from tests.handlers.conftest import Chat

UNSURE = "xin hỗ trợ làm tem truy xuất nguồn gốc"
CLEAR = "may dong goi 200 trieu duoc ho tro bao nhieu"


def _queue(dialogue: Dialogue) -> list[LearningItem]:
    with dialogue.db.unit() as repos:
        items = repos.learning.open_items()
        repos.session.expunge_all()
        return items


def test_an_unconfident_question_lands_in_the_queue(chat: Chat) -> None:
    chat.send(UNSURE)
    assert "not_sure" in chat.templates
    [item] = _queue(chat.dialogue)
    assert (item.text, item.source) == (UNSURE, learning.NOT_CONFIDENT)
    chat.send(CLEAR)  # a confident answer is not queued
    assert len(_queue(chat.dialogue)) == 1


def test_a_question_to_staff_lands_in_the_queue(chat: Chat) -> None:
    chat.send("/hoicanbo")
    chat.send("Xưởng em ở xã Tân Hòa muốn làm kho lạnh thì xin ai?")
    [item] = _queue(chat.dialogue)
    assert item.source == learning.ASK_STAFF and "kho lạnh" in item.text


def test_sending_the_unanswered_question_to_staff_counts_in_its_group(chat: Chat) -> None:
    chat.send(UNSURE)
    chat.press(cb.SEND_LAST_QUESTION)
    with chat.dialogue.db.unit() as repos:
        [group] = learning.open_groups(repos, Scope())
    assert group.count == 2 and group.sources == {"not_confident": 1, "ask_staff": 1}


def test_thumbs_down_under_an_answer_queues_its_question_and_thanks(chat: Chat) -> None:
    chat.send(CLEAR)
    down = chat.button_for("fb:")[:-1] + "0"
    assert down == cb.feedback("machinery-national", False) and len(down) <= 64
    chat.press(down)
    assert chat.templates == ["feedback_thanks"] and not chat.shown("feedback_thanks")["helpful"]
    [item] = _queue(chat.dialogue)
    assert (item.text, item.source, item.entry_id) == (CLEAR, learning.UNHELPFUL, "machinery-national")
    with chat.dialogue.db.unit() as repos:
        [vote] = repos.feedback.for_entry("machinery-national")
        assert vote.question == CLEAR and not vote.helpful


def test_thumbs_up_is_recorded_and_thanked_without_queueing(chat: Chat) -> None:
    chat.send(CLEAR)
    chat.press(cb.feedback("machinery-national", True))
    assert chat.shown("feedback_thanks")["helpful"]
    assert _queue(chat.dialogue) == []
    with chat.dialogue.db.unit() as repos:
        assert [v.helpful for v in repos.feedback.for_entry("machinery-national")] == [True]


def test_on_zalo_the_thumbs_are_numbered_options(dialogue: Dialogue) -> None:
    chat = Chat(dialogue, channel="zalo", chat_id="z-fb")
    chat.send(CLEAR)
    flat = [b.data for r in chat.last for b in r.flat_buttons]
    number = flat.index(cb.feedback("machinery-national", False)) + 1
    chat.send(str(number))
    assert "feedback_thanks" in chat.templates
    [item] = _queue(dialogue)
    assert item.source == learning.UNHELPFUL
    chat.send(str(flat.index(cb.PROGRAMME + ":machinery-national") + 1))  # the answer's menu still works
    assert "feedback_thanks" not in chat.templates and "stale" not in chat.templates


def test_a_stale_or_forged_thumb_is_answered_as_stale(chat: Chat) -> None:
    chat.press("fb:no-such-entry:0")
    assert "stale" in chat.templates
    assert _queue(chat.dialogue) == []


def test_erasing_my_data_removes_my_queue_items_and_votes(chat: Chat) -> None:
    chat.send(UNSURE)
    chat.send(CLEAR)
    chat.press(cb.feedback("machinery-national", False))
    assert len(_queue(chat.dialogue)) == 2
    chat.send("/xoadulieu")
    erase = next(b.data for r in chat.last for b in r.flat_buttons if "Xóa" in b.label)
    chat.press(erase)
    assert _queue(chat.dialogue) == []
    with chat.dialogue.db.unit() as repos:
        assert repos.feedback.for_entry("machinery-national") == []
