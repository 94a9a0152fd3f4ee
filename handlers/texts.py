"""Every user-facing sentence lives in ``handlers/templates``: Jinja2 message templates (``*.j2``,
autoescaped HTML) and ``labels.yaml`` (button labels, answer options, command descriptions).

``Texts`` renders them; user-supplied values are escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from knowledge.money import format_vnd
from knowledge.yamlio import read_yaml

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_BLANK_LINES = re.compile(r"\n{3,}")


def _percent(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _vn_date(value: date) -> str:
    return f"{value.day}/{value.month}/{value.year}"


def _explain_first(pattern: re.Pattern[str], meaning: str, text: str) -> str:
    return pattern.sub(lambda m: f"{m.group(1)} ({meaning})", text, count=1)


class Texts:
    """Loads the templates and labels once; ``render`` and ``label`` are cheap."""

    def __init__(self, directory: Path = TEMPLATES_DIR):
        self.directory = directory
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["vnd"] = format_vnd
        self.env.filters["vn_date"] = _vn_date
        self.env.filters["pct"] = _percent
        self.env.filters["legal_form"] = self.legal_form_label

    @cached_property
    def labels(self) -> dict[str, Any]:
        return read_yaml(self.directory / "labels.yaml")

    def legal_form_label(self, value: str | None) -> str:
        for option in self.questions["legal_form"]["options"]:
            if str(option["value"]) == value:
                return str(option["label"])
        return value or ""

    @cached_property
    def questions(self) -> dict[str, Any]:
        return read_yaml(self.directory / "questions.yaml")

    @cached_property
    def apply_fields(self) -> dict[str, Any]:
        return read_yaml(self.directory / "apply_questions.yaml")

    def render(self, template: str, /, **context: Any) -> str:
        """Render ``template``.j2 to HTML text, trimmed, with at most one blank line in a row."""
        text = self.env.get_template(f"{template}.j2").render(labels=self.labels, **context)
        return _BLANK_LINES.sub("\n\n", text).strip()

    def explain(self, text: str) -> str:
        """Each term of the glossary (``labels.yaml``: "nghiệm thu", "đề án"...) explained in brackets
        where it first appears in ``text``, unless a bracket already follows it."""
        for term, meaning in self.labels.get("glossary", {}).items():
            pattern = re.compile(rf"(?<!\w)({re.escape(term)})(?!\w)(?!\s*\()", re.IGNORECASE)
            if not re.search(rf"(?<!\w){re.escape(term)}(?!\w)\s*\(", text, re.IGNORECASE):
                text = _explain_first(pattern, str(meaning), text)
        return text

    def label(self, *path: str) -> str:
        node: Any = self.labels
        for key in path:
            node = node[key]
        return str(node)
