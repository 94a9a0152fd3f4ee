"""Staff-editable YAML keeps yes/no/on/off as words (YAML 1.2 booleans)."""

from datetime import date

from knowledge.yamlio import load_yaml


def test_only_true_and_false_are_booleans() -> None:
    text = "words: [co, yes, no, on, off, y, n]\nno: Không\nflag: true\nother: False\nday: 2025-10-15\n"
    data = load_yaml(text)
    assert data["words"] == ["co", "yes", "no", "on", "off", "y", "n"]
    assert data["no"] == "Không"
    assert data["flag"] is True and data["other"] is False
    assert data["day"] == date(2025, 10, 15)
