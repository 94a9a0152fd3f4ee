"""The ``python -m bot`` command line: one sub-command per task, each a small function."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from knowledge.catalog import load_catalog
from knowledge.eligibility import Profile
from knowledge.loader import KnowledgeBase, KnowledgeError, load_knowledge
from knowledge.search import SearchResult

if TYPE_CHECKING:
    from bot.services import Services

if TYPE_CHECKING:
    from bot.services import Services


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


def _live_knowledge_files() -> dict[str, str]:
    """The knowledge the running processes answer from (the newest published version, else the
    seed files in the repository)."""
    from bot.settings import load_settings
    from services import knowledge
    from storage.db import Database

    db = Database(load_settings().database_url)
    try:
        db.migrate()
        with db.unit() as repos:
            return knowledge.live_files(repos)
    finally:
        db.dispose()


def _cmd_kb_export(args: argparse.Namespace) -> int:
    from knowledge import files

    kb = files.load(_live_knowledge_files())
    data = [entry.model_dump(mode="json") for entry in kb.entries]
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2 if args.pretty else None)
    sys.stdout.write("\n")
    return 0


def _cmd_kb_import(args: argparse.Namespace) -> int:
    """Validate PATH as ``kb validate`` does and make it the live knowledge (every running process
    answers from it within KNOWLEDGE_CHECK_SECONDS); prints the new version's id."""
    from pathlib import Path

    from bot.settings import load_settings
    from knowledge import files
    from services import knowledge
    from storage.db import Database

    db = Database(load_settings().database_url)
    try:
        db.migrate()
        with db.unit() as repos:
            try:
                new = files.imported(Path(args.path), knowledge.live_files(repos))
                if args.check:
                    files.load(new)
                    print("OK: valid, nothing published (--check)")
                    return 0
                version = knowledge.publish(repos, new, args.by or "cli", args.reason or "kb import")
            except files.ImportProblem as exc:
                print(f"ERROR {exc}", file=sys.stderr)
                return 2
            except KnowledgeError as exc:
                for problem in exc.problems:
                    print(f"ERROR {problem}", file=sys.stderr)
                print(f"{len(exc.problems)} problem(s) found; nothing was published.", file=sys.stderr)
                return 1
    finally:
        db.dispose()
    print(version)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the schema to the newest revision, then exit: run once per upgrade before the workers
    start (they migrate at start too, and find nothing left to do)."""
    from bot.settings import load_settings
    from storage.db import Database

    db = Database(load_settings().database_url)
    try:
        db.migrate()
    finally:
        db.dispose()
    print("database schema up to date")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    """Copy the SQLite database while the bot runs (exit 0); on PostgreSQL say which ``pg_dump`` to
    run instead (exit 2); 1 when the copy failed."""
    from pathlib import Path

    from bot.settings import load_settings
    from storage import backup

    url = load_settings().database_url
    try:
        made = backup.backup_sqlite(url, Path(args.path), overwrite=args.overwrite)
    except backup.NotSQLite:
        print(backup.pg_dump_advice(url, args.path), file=sys.stderr)
        return 2
    except backup.BackupProblem as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"backup written to {made.path} ({made.size_bytes / 1_000_000:.1f} MB)")
    return 0


def _print_result(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    flag = "confident" if result.confident else "not confident"
    print(f"{result.query}  [{flag}]")
    for i, m in enumerate(result.matches, 1):
        print(f"  {i}. {m.title}  ({m.category}, {m.id}, score {m.score})")


def _cmd_ask(args: argparse.Namespace) -> int:
    index = load_catalog().index
    if args.question:
        _print_result(index.search(" ".join(args.question)), args.json)
        return 0
    for line in sys.stdin:
        question = line.strip()
        if question:
            _print_result(index.search(question), args.json)
            sys.stdout.flush()
    return 0


def _cmd_eligibility(args: argparse.Namespace) -> int:
    raw = sys.stdin.read().strip() or "{}"
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the profile must be a JSON object")
        profile = Profile.model_validate(data)
    except (ValueError, ValidationError) as exc:
        print(f"invalid profile: {exc}", file=sys.stderr)
        return 2
    verdicts = load_catalog().evaluator.evaluate_all(profile)
    if args.json:
        print(json.dumps({"results": [v.to_dict() for v in verdicts]}, ensure_ascii=False))
        return 0
    for v in verdicts:
        amount = f", at most {v.max_support_vnd:,} VND" if v.max_support_vnd else ""
        print(f"{v.status:>12}  {v.programme.id} ({v.programme.scope}){amount}")
        for reason in v.reasons:
            print(f"              - {reason}")
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from bot.channels.console import chat
    from bot.services import build_services
    from bot.settings import load_settings

    services = build_services(load_settings())
    try:
        texts = services.texts
        hint, hint_one = texts.label("plain_menu_hint"), texts.label("plain_menu_hint_one")
        chat(services.dialogue, hint, chat_id=args.user, hint_one=hint_one)
    except KeyboardInterrupt:
        print()
    finally:
        services.close()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from bot.app import WebServerError, run
    from bot.logs import configure_logging
    from bot.settings import load_settings

    settings = load_settings()
    configure_logging(settings)  # LOG_FORMAT, secrets redacted, httpx (it would print the token) quiet
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings))
    except WebServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_staff_add(args: argparse.Namespace) -> int:
    import re

    from bot.settings import load_settings
    from services.staff_scope import ADMIN, PROVINCE, Scope
    from storage.db import Database
    from storage.passwords import MIN_LENGTH, hash_password
    from storage.repositories import normalise_username

    username = normalise_username(args.username)
    if not re.fullmatch(r"[a-z0-9_.@-]{3,64}", username):
        print("username: 3-64 characters, letters, digits and _ . @ - only", file=sys.stderr)
        return 2
    # --province alone means a province account; without either, an existing account keeps its role.
    role = args.role or (PROVINCE if args.province else None)
    if role == PROVINCE and not args.province:
        print("--role province needs --province (the province this account works for)", file=sys.stderr)
        return 2
    if role == ADMIN and args.province:
        print("--province is for --role province only (an admin sees every province)", file=sys.stderr)
        return 2
    try:
        province = _province(load_knowledge(), args.province)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        print(
            f"password (one line on standard input) must have at least {MIN_LENGTH} characters",
            file=sys.stderr,
        )
        return 2
    db = Database(load_settings().database_url)
    db.migrate()
    try:
        with db.unit() as repos:
            account, created = repos.staff.upsert(
                username, hash_password(password), args.telegram_id, role, province
            )
            scope = Scope.of(account)
    finally:
        db.dispose()
    what = ADMIN if scope.is_admin else f"{PROVINCE} {scope.province}"
    print(f"{'created' if created else 'updated'} staff account {account.username} ({what})")
    return 0


def _open_services() -> Services:
    from bot.services import build_services
    from bot.settings import load_settings

    return build_services(load_settings())


def _province(kb: KnowledgeBase, text: str | None) -> str | None:
    """The current province named by ``text`` (any spelling); ValueError when there is none."""
    if not text:
        return None
    found = kb.provinces.resolve(text)
    if found is None:
        raise ValueError(f"unknown province: {text}")
    return found.province.name


def _check_category(category: str | None) -> None:
    from knowledge.models import Category

    if category and category not in {str(c) for c in Category}:
        raise ValueError(f"unknown category: {category}")


def _cmd_broadcast(args: argparse.Namespace) -> int:
    from services.broadcasts import Audience, TemplateProblem

    services = _open_services()
    try:
        kb = services.catalog.kb
        try:
            province = _province(kb, args.province)
            _check_category(args.category)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        audience = Audience(province=province, category=args.category, subscribers_only=args.subscribers_only)
        broadcasts = services.core.broadcasts
        with services.db.unit() as repos:
            counts = broadcasts.count(repos, kb, audience)
            if not args.yes:
                print(f"would reach {sum(counts.values())} recipient(s): {counts}; add --yes to queue it")
                return 1
            try:
                broadcast = broadcasts.create(repos, args.text, audience, [], "cli")
            except TemplateProblem as exc:
                print(f"the message template cannot be used: {exc}", file=sys.stderr)
                return 2
            queued = broadcasts.confirm(repos, kb, broadcast)
        print(broadcast.id)
        print(f"queued for {queued} recipient(s): {counts}", file=sys.stderr)
    finally:
        services.close()
    return 0


DEADLINE_PROBLEMS = {
    "past": "--date is in the past: a deadline must be today or later",
    "action": "--action: say what must be done (at least 10 characters)",
    "province": "unknown province",
    "category": "unknown category",
    "programme": "unknown programme",
}


def _cmd_deadline_add(args: argparse.Namespace) -> int:
    from datetime import date, datetime

    from services import deadlines

    try:
        due_on = date.fromisoformat(args.date)
    except ValueError:
        print("--date must be YYYY-MM-DD", file=sys.stderr)
        return 2
    services = _open_services()
    try:
        kb = services.catalog.kb
        try:
            province = _province(kb, args.province)
            _check_category(args.category)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        new = deadlines.NewDeadline(
            due_on=due_on,
            action=args.action,
            place=args.place or "",
            note=args.note or "",
            province=province,
            category=args.category,
            programme_id=args.programme,
        )
        today = datetime.now(services.settings.tz).date()
        try:
            with services.db.unit() as repos:
                deadline = deadlines.add(repos, kb, new, today, "cli")
        except deadlines.DeadlineProblem as exc:
            detail = f": {args.programme}" if exc.code == "programme" else ""
            print(DEADLINE_PROBLEMS[exc.code] + detail, file=sys.stderr)
            return 2
        print(deadline.id)
    finally:
        services.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Trợ lý Khuyến công")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start everything configured (bots, dashboard, scheduler)").set_defaults(
        func=_cmd_run
    )

    chat = sub.add_parser("chat", help="talk to the bot in this terminal (no token needed)")
    chat.add_argument("--user", help="chat as this user id (default: your login name)")
    chat.set_defaults(func=_cmd_chat)

    ask = sub.add_parser("ask", help="answer a question (or one per line from standard input)")
    ask.add_argument("question", nargs="*", help="the question; omit to read one per line from stdin")
    ask.add_argument("--json", action="store_true", help="print JSON results")
    ask.set_defaults(func=_cmd_ask)

    elig = sub.add_parser(
        "eligibility", help="check a profile (JSON on standard input) against every programme"
    )
    elig.add_argument("--json", action="store_true", help="print JSON verdicts")
    elig.set_defaults(func=_cmd_eligibility)

    staff = sub.add_parser("staff", help="manage staff dashboard accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    staff_add = staff_sub.add_parser(
        "add", help="create or update an account; the password is read from stdin"
    )
    staff_add.add_argument("username")
    staff_add.add_argument("--telegram-id", type=int, help="link the account to this Telegram user id")
    staff_add.add_argument(
        "--role",
        choices=("admin", "province"),
        help="admin: the whole country (a new account's default); province: one province's leads, "
        "questions, deadlines and broadcasts (an existing account keeps its role unless given)",
    )
    staff_add.add_argument(
        "--province", help="the province of a province account (any spelling, old names too)"
    )
    staff_add.set_defaults(func=_cmd_staff_add)

    bc = sub.add_parser("broadcast", help="queue an announcement in the outbox (sent by the running bot)")
    bc.add_argument(
        "--text", required=True, help="the message; {{ ten }}, {{ tinh }}, {{ co_so }} are filled in"
    )
    bc.add_argument("--province", help="only producers in this province (any spelling)")
    bc.add_argument("--category", help="only producers interested in this category id")
    bc.add_argument("--subscribers-only", action="store_true", help="only reminder subscribers")
    bc.add_argument("--yes", action="store_true", help="really queue it (without: just count the recipients)")
    bc.set_defaults(func=_cmd_broadcast)

    deadline = sub.add_parser("deadline", help="manage registration deadlines")
    deadline_sub = deadline.add_subparsers(dest="deadline_command", required=True)
    add = deadline_sub.add_parser("add", help="add a deadline; subscribers get reminders before it")
    add.add_argument("--date", required=True, help="YYYY-MM-DD")
    add.add_argument("--action", required=True, help="what must be done by then, in Vietnamese")
    add.add_argument("--place", help="where to do it")
    add.add_argument("--note", help="a remark shown under the reminder")
    add.add_argument("--province", help="only this province (omit for national)")
    add.add_argument("--category", help="only this category id")
    add.add_argument("--programme", help="only this programme id")
    add.set_defaults(func=_cmd_deadline_add)

    kb = sub.add_parser("kb", help="check, export or import the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_sub.add_parser("validate", help="load every knowledge file and report problems").set_defaults(
        func=_cmd_kb_validate
    )
    export = kb_sub.add_parser("export", help="print every entry")
    export.add_argument("--json", action="store_true", default=True, help="JSON output (the only format)")
    export.add_argument("--pretty", action="store_true", help="indent the JSON")
    export.set_defaults(func=_cmd_kb_export)
    imp = kb_sub.add_parser(
        "import",
        help="validate a knowledge export (JSON), an entry file or a knowledge folder and make it live",
    )
    imp.add_argument("path", help="what `kb export --json` printed, a YAML entry file, or a folder")
    imp.add_argument("--reason", help="why (kept with the version)")
    imp.add_argument("--by", help="who (kept with the version; default cli)")
    imp.add_argument("--check", action="store_true", help="only validate, publish nothing")
    imp.set_defaults(func=_cmd_kb_import)

    sub.add_parser(
        "migrate", help="bring the database schema to the newest version and exit (once per upgrade)"
    ).set_defaults(func=_cmd_migrate)

    backup = sub.add_parser(
        "backup", help="copy the SQLite database while the bot runs (PostgreSQL: prints the pg_dump to use)"
    )
    backup.add_argument("path", help="the copy's file, or a folder for a dated file (khuyencong-*.db)")
    backup.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    backup.set_defaults(func=_cmd_backup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from bot.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:  # names the variables and why, never their values
        print(exc, file=sys.stderr)
        return 2
