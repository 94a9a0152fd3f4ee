"""The staff-editable text files: shapes the code relies on, and every message template renders."""

from __future__ import annotations

from handlers.texts import Texts

TEXTS = Texts()


def test_answer_options_have_exactly_value_label_words() -> None:
    """A comma inside an unquoted flow-mapping label silently splits it into a stray key."""
    for field, spec in TEXTS.questions.items():
        if not isinstance(spec, dict) or "options" not in spec:
            continue
        for option in spec["options"]:
            assert set(option) == {"value", "label", "words"}, (field, option)
            assert isinstance(option["label"], str) and option["label"].strip()
            assert all(isinstance(w, str) for w in option["words"]), (field, option)


def test_every_question_has_a_name_and_a_known_kind() -> None:
    for field, spec in TEXTS.questions.items():
        if field == "yesno_words":
            continue
        assert spec["kind"] in {"choice", "yesno", "province", "money"}, field
        assert spec["name"] and spec["prompt"], field
    for field, spec in TEXTS.apply_fields.items():
        assert spec["kind"] in {"programme", "text", "phone", "choice", "province", "money", "consent"}, field
        assert spec["name"], field


def test_word_lists_are_all_text() -> None:
    for name, words in TEXTS.labels["words"].items():
        assert all(isinstance(w, str) and w for w in words), name
    for name, words in TEXTS.questions["yesno_words"].items():
        assert all(isinstance(w, str) and w for w in words), name


def test_jargon_is_explained_where_it_first_appears() -> None:
    text = TEXTS.explain("Máy mua sau khi đề án được duyệt; nghiệm thu xong, rồi lại nghiệm thu lần hai.")
    assert "đề án (kế hoạch hỗ trợ cho cơ sở) được duyệt" in text
    assert text.count("(kiểm tra kết quả)") == 1  # once per message
    already = TEXTS.explain("Sau nghiệm thu (kiểm tra kết quả) thì nhận tiền.")
    assert already.count("(") == 1  # an explanation already there is not doubled
