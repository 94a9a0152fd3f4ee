"""The ``python -m bot`` command line: one sub-command per task, each a small function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from knowledge.loader import KnowledgeError, load_knowledge


def _cmd_kb_validate(args: argparse.Namespace) -> int:
    try:
        kb = load_knowledge()
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(f"ERROR {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found.", file=sys.stderr)
        return 1
    for warning in kb.warnings:
        print(f"WARNING {warning}", file=sys.stderr)
    counts: dict[str, int] = {}
    for entry in kb.entries:
        counts[entry.category] = counts.get(entry.category, 0) + 1
    print(f"OK: {len(kb.entries)} entries in {len(counts)} categories, {len(kb.warnings)} warning(s).")
    for category, n in sorted(counts.items()):
        print(f"  {category}: {n}")
    return 0


def _cmd_kb_export(args: argparse.Namespace) -> int:
    kb = load_knowledge()
    data = [entry.model_dump(mode="json") for entry in kb.entries]
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2 if args.pretty else None)
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Trợ lý Khuyến công")
    sub = parser.add_subparsers(dest="command", required=True)

    kb = sub.add_parser("kb", help="check or export the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_sub.add_parser("validate", help="load every knowledge file and report problems").set_defaults(
        func=_cmd_kb_validate
    )
    export = kb_sub.add_parser("export", help="print every entry")
    export.add_argument("--json", action="store_true", default=True, help="JSON output (the only format)")
    export.add_argument("--pretty", action="store_true", help="indent the JSON")
    export.set_defaults(func=_cmd_kb_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
