"""A synthetic but realistic knowledge base of any size, grown from the real entries of
``knowledge/data``: each new entry is a real programme or FAQ re-issued for one province (most) or
nationally, for one trade (gốm sứ, mây tre đan, chè...), with its own id, title, aliases, questions
and keywords, sometimes another category, its support levels scaled and its criteria varied (which
legal forms, a difficult-area or craft-village condition). The result is valid under
``kb validate``; the shared files (provinces, places, synonyms, contacts...) are the real ones.

Used by ``bench/kb_scale.py`` and by the tests that compare the fast paths with full scans.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import yaml

from knowledge.files import KnowledgeFiles, entry_path, read_folder
from knowledge.loader import DEFAULT_DATA_DIR
from knowledge.models import Category
from knowledge.yamlio import load_yaml

TRADES = (
    "gốm sứ", "mây tre đan", "dệt thổ cẩm", "chè", "cà phê", "nước mắm", "gỗ mỹ nghệ", "sơn mài",
    "bánh tráng", "rượu truyền thống", "cơ khí nông cụ", "thêu ren", "nón lá", "đúc đồng", "chạm bạc",
    "chiếu cói", "hương nhang", "miến dong", "bún khô", "chế biến hạt điều", "tinh bột sắn",
    "dược liệu", "đá mỹ nghệ", "in ấn bao bì", "may mặc", "da giày", "gạch không nung", "nhựa tái chế",
    "sấy nông sản", "mật ong",
)  # fmt: skip
LEGAL_FORM_VARIANTS = (
    ["household_business", "sme", "coop_group", "coop", "coop_union"],
    ["household_business", "coop_group", "coop"],
    ["sme", "coop", "coop_union"],
    ["household_business", "sme"],
    ["coop_group", "coop", "coop_union"],
    ["household_business", "sme", "coop_group", "coop", "coop_union", "unregistered"],
)
EXTRA_FLAGS = ("difficult_area", "new_to_area", "craft_village")
PROGRAMME_CATEGORIES = [c.value for c in Category if c != Category.GENERAL]
ENTRY_FOLDERS = ("programmes/", "faq/")


def real_entries(files: KnowledgeFiles) -> list[dict[str, Any]]:
    """The entries of a knowledge base's files, as the mappings their YAML holds."""
    return [load_yaml(text) for path, text in sorted(files.items()) if path.startswith(ENTRY_FOLDERS)]


def _vary_criteria(criteria: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    varied = copy.deepcopy(criteria)
    for criterion in varied:
        if criterion.get("type") == "legal_form" and rng.random() < 0.6:
            criterion["allowed"] = list(rng.choice(LEGAL_FORM_VARIANTS))
    flags = {c.get("field") for c in varied if c.get("type") == "flag"}
    if rng.random() < 0.3:
        flag = rng.choice([f for f in EXTRA_FLAGS if f not in flags] or [None])
        if flag is not None:
            varied.append({"type": "flag", "field": flag})
    return varied


def _vary_levels(levels: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    varied = copy.deepcopy(levels)
    factor = rng.choice((0.5, 0.6, 0.8, 1.0, 1.2, 1.5))
    for level in varied:
        if level.get("cap_vnd"):
            level["cap_vnd"] = max(1_000_000, round(level["cap_vnd"] * factor / 1_000_000) * 1_000_000)
        if level.get("percent") and rng.random() < 0.3:
            level["percent"] = rng.choice((30, 40, 50, 60, 70))
    return varied


def variant(source: dict[str, Any], number: int, province: str | None, rng: random.Random) -> dict[str, Any]:
    """One new entry made from ``source``: for ``province`` (None: national) and one trade."""
    trade = TRADES[number % len(TRADES)]
    where = f"tỉnh {province}" if province else "toàn quốc"
    entry = copy.deepcopy(source)
    entry["id"] = f"{source['id'][:36]}-{number:05d}"
    entry["scope"] = province or "national"
    entry["title"] = f"{source['title']} - nghề {trade}, {where}"
    entry["aliases"] = [*source.get("aliases", [])[:2], f"{trade} {province or 'trung ương'}"]
    local = f"làm {trade} ở {province}" if province else f"cơ sở làm {trade}"
    questions = list(source["questions"])
    rng.shuffle(questions)
    entry["questions"] = [
        *questions[:3],
        f"{local} có được hỗ trợ không ạ",
        f"nghề {trade} xin hỗ trợ thế nào",
    ]
    entry["keywords"] = [
        *source["keywords"][:8],
        trade,
        f"nghề {trade}",
        f"{trade} {province or 'toàn quốc'}",
    ]
    if source["kind"] == "programme":
        if rng.random() < 0.15:
            entry["category"] = rng.choice(PROGRAMME_CATEGORIES)
        entry["summary"] = f"{source['summary']} Áp dụng cho cơ sở nghề {trade}, {where}."
        entry["criteria"] = _vary_criteria(source["criteria"], rng)
        entry["levels"] = _vary_levels(source.get("levels", []), rng)
    else:
        entry["answer"] = f"{source['answer']} (Câu hỏi thường gặp của cơ sở nghề {trade}, {where}.)"
    return entry


def generated_files(size: int, seed: int = 15, data_dir: Path = DEFAULT_DATA_DIR) -> KnowledgeFiles:
    """The real knowledge files plus generated entries, ``size`` entries in all."""
    files = read_folder(data_dir)
    sources = real_entries(files)
    provinces = [u["name"] for u in load_yaml(files["provinces.yaml"])["units"]]
    rng = random.Random(seed)
    out = dict(files)
    for number in range(max(0, size - len(sources))):
        source = sources[number % len(sources)]
        province = None if number % 10 == 0 else provinces[rng.randrange(len(provinces))]
        entry = variant(source, number, province, rng)
        out[entry_path(entry)] = yaml.dump(
            entry, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False, width=100
        )
    return out
