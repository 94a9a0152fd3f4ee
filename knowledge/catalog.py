"""One loaded knowledge base with its search index and eligibility evaluator, built together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from knowledge.eligibility import Evaluator
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.search import SearchIndex


@dataclass(frozen=True)
class Catalog:
    kb: KnowledgeBase
    index: SearchIndex
    evaluator: Evaluator


def catalog_of(kb: KnowledgeBase) -> Catalog:
    """The search index and evaluator of a loaded knowledge base."""
    return Catalog(kb=kb, index=SearchIndex.build(kb), evaluator=Evaluator(kb))


def load_catalog(data_dir: Path | None = None, today: date | None = None) -> Catalog:
    """Load and validate the knowledge files, then build the search index (raises KnowledgeError)."""
    return catalog_of(load_knowledge(data_dir, today))
