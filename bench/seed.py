"""The national-size database generator for the scale figures: producers on Telegram and Zalo across
the 34 provinces with their profiles and conversations, reminder subscriptions for a share of them,
applications (leads) in every status with their history and notes, the message log, open and
answered "Hỏi cán bộ" questions, the learning queue, outbox history of finished broadcasts, staff
deadlines and staff accounts (one administrator, one account per province, known passwords).

    .venv/bin/python -m bench.seed --database-url URL [--producers N] [--leads N] [--messages N]
        [--questions N] [--learning N] [--outbox N]

PostgreSQL defaults to 1,000,000 producers, 50,000 leads and 1,000,000 logged messages; SQLite to
100,000 producers (and a tenth of the rest). The migrations run first. The bulk of the rows is
made set-based inside the database, one ``INSERT ... SELECT`` over a series per table
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite), the values spread by a
multiplicative hash of the row number (``mix``), so the same arguments give the same database. Leads
are made in Python in chunks, since their ``search_text`` is folded the way the application folds it.
Running it again adds another batch next to what is there.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, text

from knowledge.text import fold
from knowledge.yamlio import read_yaml
from services.learning import group_key
from storage.db import Database
from storage.models import Broadcast, Deadline, Lead, StaffAccount
from storage.passwords import hash_password
from storage.search_text import lead_search_text

DATA = Path(__file__).resolve().parent.parent / "knowledge" / "data"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "quan-tri-quoc-gia-2026"
PROVINCE_PASSWORD = "can-bo-tinh-2026"
LEAD_CHUNK = 5000
YEAR_SECONDS = 365 * 24 * 3600

LEGAL_FORMS = (
    "household_business",
    "household_business",
    "household_business",
    "sme",
    "sme",
    "coop",
    "coop_group",
    "coop_union",
    "large_enterprise",
    "unregistered",
    None,
    None,
)
ACTIVITIES = ("production", "production", "production", "production", "trading_only", "mining", None)
PLACE_TYPES = ("commune", "commune", "commune", "ward", "special_zone", None)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Thanh", "Quốc", "Ngọc", "Đức", "Thu", "Xuân")
GIVEN = (
    "An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Khánh",
    "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Phương", "Quang", "Sơn", "Tâm", "Thảo",
    "Thắng", "Trang", "Tuấn", "Vân", "Việt", "Yến",
)  # fmt: skip
ESTABLISHMENTS = ("Cơ sở", "Hộ kinh doanh", "HTX", "Công ty TNHH", "Tổ hợp tác", "Xưởng")
SECTORS = (
    "Chế biến nông sản", "Dệt may", "Mây tre đan", "Gốm sứ", "Đồ gỗ mỹ nghệ", "Cơ khí nhỏ",
    "Chế biến thủy sản", "Sản xuất chè", "Nước mắm", "Bánh kẹo", "Rượu truyền thống", "Thêu ren",
)  # fmt: skip
PRODUCTS = (
    "cà phê rang xay", "chè búp khô", "miến dong", "bánh đa", "nước mắm", "mật ong", "chiếu cói",
    "nón lá", "gốm men", "bàn ghế gỗ", "khô cá", "tương ớt", "hạt điều", "tinh bột nghệ", "rượu ngô",
)  # fmt: skip
COMMUNES = (
    "Tân Lập", "Hòa Bình", "Quang Trung", "Đông Sơn", "Phú Thọ", "An Khánh", "Tiên Phong",
    "Thanh Xuân", "Nghĩa Hưng", "Yên Thành", "Cẩm Xuyên", "Đức Phổ", "Vĩnh Thạnh", "Long Hải",
)  # fmt: skip
MACHINES = ("máy sấy", "máy xay", "máy đóng gói", "lò sấy", "máy ép", "máy dệt", "máy hút chân không")
STEMS = (
    "có hỗ trợ mua {m} không",
    "Hộ kinh doanh làm {p} có được hỗ trợ {m} không?",
    "hồ sơ xin hỗ trợ {m} cần những gì",
    "mức hỗ trợ {m} cho cơ sở làm {p} là bao nhiêu",
    "em làm {p}, muốn đi hội chợ thì đăng ký ở đâu",
    "hạn nộp hồ sơ hỗ trợ {m} năm nay là khi nào",
    "cho hỏi vay vốn mua {m} lãi suất bao nhiêu",
    "làm sao để {p} thành sản phẩm OCOP",
)
ANSWERS = (
    "Dạ, anh/chị mang hồ sơ đến Trung tâm Khuyến công tỉnh, cán bộ sẽ hướng dẫn ạ.",
    "Dạ, chương trình năm nay hỗ trợ tới 30% chi phí máy móc, anh/chị xem điều kiện trong mục Hỗ trợ ạ.",
    "Dạ, hạn nộp hồ sơ là cuối tháng 9, anh/chị gửi sớm giúp em ạ.",
)
NOTES = (
    "Đã gọi điện, hẹn khảo sát cơ sở tuần sau.",
    "Thiếu giấy đăng ký hộ kinh doanh, đã nhắc bổ sung.",
    "Cơ sở đủ điều kiện, đưa vào kế hoạch năm sau.",
    "Đã khảo sát, máy móc phù hợp đề án.",
)
IN_TEXTS = ("/start", "Hỏi đáp", "có hỗ trợ mua máy sấy không", "Đăng ký ngay", "0912345678", "cảm ơn")
OUT_TEXTS = (
    "Dạ, em chào anh/chị! Em là Trợ lý Khuyến công.",
    "Dạ, chương trình hỗ trợ máy móc thiết bị: hỗ trợ tới 30% chi phí.",
    "Dạ, anh/chị cho em xin số điện thoại để cán bộ liên hệ ạ.",
    "Dạ, em đã ghi nhận hồ sơ của anh/chị.",
)
LEARNING_SOURCES = ("not_confident", "not_confident", "ask_staff", "unhelpful")
LEAD_STATUSES = (
    ("new", 30), ("contacted", 20), ("eligible", 15), ("planned", 10),
    ("not_eligible", 10), ("approved", 10), ("rejected", 5),
)  # fmt: skip
ELIGIBILITY = {
    "new": "eligible", "contacted": "eligible", "eligible": "eligible", "planned": "eligible",
    "not_eligible": "not_eligible", "approved": "eligible", "rejected": "unknown",
}  # fmt: skip


# --- SQL that reads the same on both databases -------------------------------------------------------


def quote(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def mix(expr: str, salt: int, modulo: int) -> str:
    """A well-spread pseudo-random number in [0, modulo) from an integer expression (a row number or
    an id): multiplicative hashing modulo 2^32, then modulo ``modulo``. The same in both databases."""
    return f"(((CAST({expr} AS BIGINT) * 2654435761 + {salt * 40503}) % 4294967296) % {modulo})"


def mix_py(value: int, salt: int, modulo: int) -> int:
    """``mix`` in Python, to know in Python what the database made (a user's channel, province)."""
    return ((value * 2654435761 + salt * 40503) % 4294967296) % modulo


def pick(expr: str, salt: int, values: Sequence[str | None]) -> str:
    """One of ``values``, chosen by ``mix(expr, salt)``."""
    cases = " ".join(f"WHEN {i} THEN {quote(v)}" for i, v in enumerate(values))
    return f"(CASE {mix(expr, salt, len(values))} {cases} END)"


@dataclass(frozen=True)
class Dialect:
    """What differs between PostgreSQL and SQLite in the generator's SQL."""

    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def series(self, count: int) -> str:
        """A ``WITH`` clause naming ``g(n)``: the numbers 1..count."""
        if self.postgres:
            return f"WITH g(n) AS (SELECT generate_series(CAST(1 AS BIGINT), CAST({count} AS BIGINT)))"
        return f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count})"

    def ago(self, seconds: str) -> str:
        """The time ``seconds`` (an integer expression) before now, in UTC."""
        if self.postgres:
            return f"(now() - ({seconds}) * interval '1 second')"
        return f"datetime('now', '-' || ({seconds}) || ' seconds')"

    def later(self, moment: str, seconds: str) -> str:
        if self.postgres:
            return f"({moment} + ({seconds}) * interval '1 second')"
        return f"datetime({moment}, '+' || ({seconds}) || ' seconds')"

    def pad(self, expr: str, width: int) -> str:
        if self.postgres:
            return f"lpad(CAST({expr} AS TEXT), {width}, '0')"
        return f"printf('%0{width}d', {expr})"

    def json(self, expr: str) -> str:
        return f"CAST({expr} AS JSON)" if self.postgres else expr

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"


# --- what is made ------------------------------------------------------------------------------------


@dataclass
class Plan:
    producers: int
    leads: int
    messages: int
    questions: int
    learning: int
    outbox: int


@dataclass
class Context:
    conn_factory: Callable[[], Any]
    dialect: Dialect
    provinces: list[str]
    programmes: list[tuple[str, str]]
    user_base: int = 0


def province_names() -> list[str]:
    return [unit["name"] for unit in read_yaml(DATA / "provinces.yaml")["units"]]


def programme_ids() -> list[tuple[str, str]]:
    """(id, category) of every national and provincial programme of the seed knowledge."""
    found = []
    for path in sorted((DATA / "programmes").glob("*.yaml")):
        raw = read_yaml(path)
        if isinstance(raw, dict) and raw.get("id") and raw.get("category"):
            found.append((str(raw["id"]), str(raw["category"])))
    return found


def province_of_user(user_id: int, provinces: Sequence[str | None]) -> str | None:
    """The province the profile of ``user_id`` got (``profiles`` below picks it with salt 6)."""
    return provinces[mix_py(user_id, 6, len(provinces))]


def profile_provinces(provinces: list[str]) -> list[str | None]:
    # About one producer in ten has not said where they are.
    return [*provinces, *([None] * (len(provinces) // 9))]


def max_id(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one())


def reset_sequence(conn: Connection, dialect: Dialect, table: str) -> None:
    """After rows with explicit ids, the next generated id follows them (PostgreSQL's sequences)."""
    if dialect.postgres:
        conn.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        )


def fast(conn: Connection, dialect: Dialect) -> None:
    if dialect.postgres:
        conn.execute(text("SET LOCAL synchronous_commit = off"))


def seed_users(conn: Connection, d: Dialect, count: int, base: int) -> None:
    """Four in five on Telegram, one in five on Zalo; 2% blocked the bot."""
    zalo = "g.n % 5 = 0"
    conn.execute(
        text(f"""
        {d.series(count)}
        INSERT INTO users (id, channel, external_id, display_name, username, is_blocked, created_at,
                           last_seen_at)
        SELECT {base} + g.n,
               CASE WHEN {zalo} THEN 'zalo' ELSE 'telegram' END,
               CASE WHEN {zalo} THEN {d.text(f"880000000000000 + {base} + g.n")}
                    ELSE {d.text(f"6000000000 + {base} + g.n")} END,
               {pick("g.n", 1, GIVEN)} || ' ' || {pick("g.n", 2, FAMILY)},
               NULL,
               ({mix("g.n", 3, 100)} < 2),
               {d.ago(f"{YEAR_SECONDS} + {mix('g.n', 4, YEAR_SECONDS)}")},
               {d.ago(mix("g.n", 5, YEAR_SECONDS))}
        FROM g
        """)
    )


def seed_profiles(conn: Connection, d: Dialect, base: int, provinces: list[str]) -> None:
    """Everyone has a profile; what they told the bot varies (four in ten gave a name and phone)."""
    told = f"{mix('u.id', 7, 10)} < 4"
    categories = [
        "[]",
        "[]",
        '["machinery"]',
        '["trade_fair"]',
        '["machinery", "branding"]',
        '["vocational_training"]',
        '["typical_product", "showroom_ecommerce"]',
    ]
    conn.execute(
        text(f"""
        INSERT INTO profiles (user_id, full_name, phone, establishment_name, legal_form, activity,
                              sector, products, province, commune, place_type, craft_village,
                              difficult_area, technology_line, new_to_area, cluster_investor,
                              investment_cost_vnd, interests, updated_at)
        SELECT u.id,
               CASE WHEN {told} THEN {pick("u.id", 2, FAMILY)} || ' ' || {pick("u.id", 3, MIDDLE)}
                                     || ' ' || {pick("u.id", 4, GIVEN)} END,
               CASE WHEN {told} THEN '09' || {d.pad(mix("u.id", 5, 100_000_000), 8)} END,
               CASE WHEN {told} THEN {pick("u.id", 8, ESTABLISHMENTS)} || ' ' || {pick("u.id", 4, GIVEN)} END,
               {pick("u.id", 9, LEGAL_FORMS)},
               {pick("u.id", 10, ACTIVITIES)},
               {pick("u.id", 11, SECTORS)},
               {pick("u.id", 12, PRODUCTS)},
               {pick("u.id", 6, profile_provinces(provinces))},
               'Xã ' || {pick("u.id", 13, COMMUNES)},
               {pick("u.id", 14, PLACE_TYPES)},
               ({mix("u.id", 15, 100)} < 15),
               ({mix("u.id", 16, 100)} < 20),
               ({mix("u.id", 17, 100)} < 10),
               ({mix("u.id", 18, 100)} < 5),
               ({mix("u.id", 19, 100)} < 2),
               CASE WHEN {told} THEN {mix("u.id", 20, 200)} * 10000000 END,
               {d.json(pick("u.id", 21, categories))},
               {d.ago(mix("u.id", 22, YEAR_SECONDS))}
        FROM users u WHERE u.id > {base}
        """)
    )


def seed_conversations(conn: Connection, d: Dialect, base: int) -> None:
    conn.execute(
        text(f"""
        INSERT INTO conversations (user_id, flow, step, data, menu_version, updated_at)
        SELECT u.id, 'menu', NULL, {d.json("'{}'")}, {mix("u.id", 23, 5)}, u.last_seen_at
        FROM users u WHERE u.id > {base}
        """)
    )


def seed_subscriptions(conn: Connection, d: Dialect, base: int, programmes: list[tuple[str, str]]) -> None:
    """Three producers in ten subscribed to reminders (one in ten of them to one programme only);
    a tenth of those cancelled since."""
    ids: list[str | None] = [*([None] * (len(programmes) * 9)), *(p for p, _ in programmes)]
    active = f"({mix('u.id', 26, 10)} > 0)"
    conn.execute(
        text(f"""
        INSERT INTO subscriptions (user_id, programme_id, categories, province, is_active, created_at,
                                   cancelled_at)
        SELECT u.id, {pick("u.id", 25, ids)}, {d.json("'[]'")}, p.province, {active},
               {d.ago(mix("u.id", 27, YEAR_SECONDS))},
               CASE WHEN NOT {active} THEN {d.ago(mix("u.id", 28, 3600 * 24 * 30))} END
        FROM users u JOIN profiles p ON p.user_id = u.id
        WHERE u.id > {base} AND {mix("u.id", 24, 10)} < 3
        """)
    )


def lead_rows(
    ctx: Context, plan: Plan, first_id: int, count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """``count`` applications with ids from ``first_id``, from random producers of this batch."""
    now = datetime.now(UTC)
    provinces = profile_provinces(ctx.provinces)
    statuses = [s for s, weight in LEAD_STATUSES for _ in range(weight)]
    rows = []
    for lead_id in range(first_id, first_id + count):
        user_id = ctx.user_base + 1 + rng.randrange(plan.producers)
        province = province_of_user(user_id, provinces) or rng.choice(ctx.provinces)
        programme, category = rng.choice(ctx.programmes)
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        establishment = f"{rng.choice(ESTABLISHMENTS)} {rng.choice(PRODUCTS)} {rng.choice(GIVEN)}"
        commune = f"Xã {rng.choice(COMMUNES)}"
        phone = f"09{rng.randrange(100_000_000):08d}"
        created = now - timedelta(seconds=rng.randrange(2 * YEAR_SECONDS))
        status = rng.choice(statuses)
        ref = f"KC-{created.year}-{lead_id:06d}"
        rows.append(
            {
                "id": lead_id,
                "ref_code": ref,
                "submission_key": f"seed-{lead_id}",
                "user_id": user_id,
                "channel": "zalo" if (user_id - ctx.user_base) % 5 == 0 else "telegram",
                "programme_id": programme,
                "category": category,
                "status": status,
                "full_name": name,
                "phone": phone,
                "establishment_name": establishment,
                "legal_form": rng.choice([f for f in LEGAL_FORMS if f]),
                "province": province,
                "commune": commune,
                "sector": rng.choice(SECTORS),
                "products": rng.choice(PRODUCTS),
                "plan": f"Đầu tư {rng.choice(MACHINES)} để nâng công suất sản xuất {rng.choice(PRODUCTS)}",
                "estimated_cost_vnd": rng.randrange(50, 3000) * 1_000_000,
                "eligibility": {"status": ELIGIBILITY[status]},
                "search_text": lead_search_text(ref, name, establishment, commune, phone),
                "consent_at": created,
                "created_at": created,
                "updated_at": min(now, created + timedelta(days=rng.randrange(1, 60))),
            }
        )
    return rows


def staff_username(province: str) -> str:
    return "canbo-" + fold(province).replace(" ", "-")


def seed_leads(ctx: Context, plan: Plan, rng: random.Random) -> int:
    with ctx.conn_factory() as conn:
        fast(conn, ctx.dialect)
        first = max_id(conn, "leads") + 1
    for start in range(0, plan.leads, LEAD_CHUNK):
        with ctx.conn_factory() as conn:
            fast(conn, ctx.dialect)
            conn.execute(
                insert(Lead), lead_rows(ctx, plan, first + start, min(LEAD_CHUNK, plan.leads - start), rng)
            )
    with ctx.conn_factory() as conn:
        reset_sequence(conn, ctx.dialect, "leads")
    return first - 1


def seed_lead_events(conn: Connection, d: Dialect, lead_base: int, provinces: list[str]) -> None:
    """Each lead: its submission by the bot; the status change to where it is now, by its province's
    account; a note on one in three."""
    actor = "CASE l.province " + " ".join(
        f"WHEN {quote(p)} THEN {quote(staff_username(p))}" for p in provinces
    )
    actor += f" ELSE {quote(ADMIN_USERNAME)} END"
    conn.execute(
        text(f"""
        INSERT INTO lead_events (lead_id, actor, from_status, to_status, note, created_at)
        SELECT l.id, 'bot', NULL, 'new', NULL, l.created_at FROM leads l WHERE l.id > {lead_base}
        UNION ALL
        SELECT l.id, {actor}, 'new', l.status,
               CASE WHEN l.status IN ('not_eligible', 'rejected') THEN {pick("l.id", 30, NOTES)} END,
               l.updated_at
        FROM leads l WHERE l.id > {lead_base} AND l.status <> 'new'
        UNION ALL
        SELECT l.id, {actor}, NULL, NULL, {pick("l.id", 31, NOTES)}, l.updated_at
        FROM leads l WHERE l.id > {lead_base} AND {mix("l.id", 32, 3)} = 0
        """)
    )
    # The staff audit log of those changes.
    conn.execute(
        text(f"""
        INSERT INTO staff_actions (actor, action, object_type, object_id, details, created_at)
        SELECT e.actor, CASE WHEN e.to_status IS NULL THEN 'lead_note' ELSE 'lead_status' END, 'lead',
               e.lead_id,
               CASE WHEN e.to_status IS NULL THEN '' ELSE e.from_status || ' -> ' || e.to_status END,
               e.created_at
        FROM lead_events e WHERE e.lead_id > {lead_base} AND e.actor <> 'bot'
        """)
    )


def learning_texts() -> list[str]:
    return [stem.format(m=m, p=p) for stem in STEMS for m in MACHINES for p in PRODUCTS[:6]]


def random_user(expr: str, salt: int, ctx: Context, plan: Plan) -> str:
    return f"({ctx.user_base} + 1 + {mix(expr, salt, plan.producers)})"


def seed_messages(conn: Connection, ctx: Context, plan: Plan) -> None:
    """The message log: questions in, answers out, over the last year."""
    d = ctx.dialect
    conn.execute(
        text(f"""
        {d.series(plan.messages)}
        INSERT INTO message_log (user_id, channel, direction, kind, text, created_at)
        SELECT x.u, CASE WHEN (x.u - {ctx.user_base}) % 5 = 0 THEN 'zalo' ELSE 'telegram' END,
               CASE WHEN x.n % 2 = 0 THEN 'in' ELSE 'out' END, 'text',
               CASE WHEN x.n % 2 = 0 THEN {pick("x.n", 41, IN_TEXTS)} ELSE {pick("x.n", 42, OUT_TEXTS)} END,
               {d.ago(mix("x.n", 43, YEAR_SECONDS))}
        FROM (SELECT g.n, {random_user("g.n / 2", 40, ctx, plan)} AS u FROM g) x
        """)
    )


def seed_questions(conn: Connection, ctx: Context, plan: Plan) -> None:
    """'Hỏi cán bộ' questions: half open, half answered by the asker's province account."""
    d = ctx.dialect
    texts = learning_texts()
    actor = "CASE p.province " + " ".join(
        f"WHEN {quote(name)} THEN {quote(staff_username(name))}" for name in ctx.provinces
    )
    actor += f" ELSE {quote(ADMIN_USERNAME)} END"
    answered = "x.n % 2 = 0"
    conn.execute(
        text(f"""
        {d.series(plan.questions)}
        INSERT INTO staff_questions (user_id, text, province, status, answer, answered_by, created_at,
                                     answered_at)
        SELECT x.u, {pick("x.n", 51, texts)}, p.province,
               CASE WHEN {answered} THEN 'answered' ELSE 'open' END,
               CASE WHEN {answered} THEN {pick("x.n", 52, ANSWERS)} END,
               CASE WHEN {answered} THEN {actor} END,
               x.asked,
               CASE WHEN {answered} THEN {d.later("x.asked", mix("x.n", 54, 3 * 24 * 3600))} END
        FROM (SELECT g.n, {random_user("g.n", 50, ctx, plan)} AS u,
                     {d.ago(mix("g.n", 53, YEAR_SECONDS // 2))} AS asked FROM g) x
        JOIN profiles p ON p.user_id = x.u
        """)
    )


def seed_learning(conn: Connection, ctx: Context, plan: Plan) -> None:
    """The learning queue: many wordings, most still open, some resolved as a new FAQ."""
    d = ctx.dialect
    texts = learning_texts()
    folded = [fold(t) for t in texts]
    keys = [group_key(f) for f in folded]
    resolved = f"{mix('x.n', 62, 10)} < 3"
    conn.execute(
        text(f"""
        {d.series(plan.learning)}
        INSERT INTO learning_items (text, folded, source, entry_id, user_id, province, group_key,
                                    created_at, resolved_at, resolution, resolved_by)
        SELECT {pick("x.n", 60, texts)}, {pick("x.n", 60, folded)}, {pick("x.n", 61, LEARNING_SOURCES)},
               NULL, x.u, p.province, {pick("x.n", 60, keys)}, x.asked,
               CASE WHEN {resolved} THEN {d.later("x.asked", "86400")} END,
               CASE WHEN {resolved} THEN 'faq:seed-' || {d.text(mix("x.n", 60, len(texts)))} END,
               CASE WHEN {resolved} THEN {quote(ADMIN_USERNAME)} END
        FROM (SELECT g.n, {random_user("g.n", 63, ctx, plan)} AS u,
                     {d.ago(mix("g.n", 64, YEAR_SECONDS // 2))} AS asked FROM g) x
        JOIN profiles p ON p.user_id = x.u
        """)
    )


def seed_broadcasts(conn: Connection) -> list[int]:
    """Three finished broadcasts to everyone, by the administrator."""
    now = datetime.now(UTC)
    ids = []
    for weeks, template in ((12, "Hội chợ hàng thủ công"), (6, "Hạn nộp hồ sơ khuyến công"), (1, "OCOP")):
        sent = now - timedelta(weeks=weeks)
        conn.execute(
            insert(Broadcast),
            {
                "template": f"Dạ, thông báo: {template} năm {sent.year}, anh/chị xem chi tiết ạ.",
                "audience": {},
                "buttons": [],
                "status": "done",
                "created_by": ADMIN_USERNAME,
                "created_at": sent,
                "confirmed_at": sent,
                "finished_at": sent + timedelta(hours=3),
            },
        )
        ids.append(max_id(conn, "broadcasts"))
    return ids


def seed_outbox(conn: Connection, ctx: Context, plan: Plan, broadcasts: list[int]) -> None:
    """Delivered history (nothing pending: the bot would send it): replies, lead notifications,
    reminders and the broadcasts above; a few blocked or failed."""
    d = ctx.dialect
    kinds = ("reply", "reply", "reply", "lead_status", "reminder", "broadcast", "broadcast")
    priority = (
        "CASE x.kind WHEN 'reply' THEN -10 WHEN 'lead_status' THEN 0 WHEN 'reminder' THEN 10 ELSE 20 END"
    )
    statuses = ("sent",) * 17 + ("blocked", "blocked", "failed")
    source = (
        f"CASE WHEN x.kind = 'broadcast' THEN {pick('x.n', 72, [str(b) for b in broadcasts])} ELSE '0' END"
    )
    conn.execute(
        text(f"""
        {d.series(plan.outbox)}
        INSERT INTO outbox (kind, source_id, dedupe_key, user_id, channel, chat_id, text, buttons,
                            ask_contact, status, priority, attempts, next_attempt_at, ephemeral,
                            ambiguous, created_at, sent_at)
        SELECT x.kind, CAST({source} AS INTEGER), NULL, us.id, us.channel, us.external_id,
               {pick("x.n", 73, OUT_TEXTS)}, {d.json("'[]'")}, (1 = 0), x.status, {priority}, 1, x.at,
               (1 = 0), (1 = 0), x.at, CASE WHEN x.status = 'sent' THEN x.at END
        FROM (SELECT g.n, {pick("g.n", 70, kinds)} AS kind, {pick("g.n", 71, statuses)} AS status,
                     {random_user("g.n", 74, ctx, plan)} AS u,
                     {d.ago(mix("g.n", 75, YEAR_SECONDS))} AS at FROM g) x
        JOIN users us ON us.id = x.u
        """)
    )


def seed_deadlines(conn: Connection, ctx: Context) -> None:
    """Two deadlines staff added per province."""
    today = date.today()
    rows = []
    for i, province in enumerate(ctx.provinces):
        for k in range(2):
            programme, category = ctx.programmes[(i + k) % len(ctx.programmes)]
            rows.append(
                {
                    "programme_id": programme,
                    "category": category,
                    "province": province,
                    "due_on": today + timedelta(days=10 + 20 * k + i),
                    "action": "Nộp hồ sơ đề nghị hỗ trợ",
                    "place": f"Trung tâm Khuyến công {province}",
                    "note": "",
                    "basis": "Kế hoạch khuyến công địa phương",
                    "created_by": staff_username(province),
                    "is_active": True,
                    "created_at": datetime.now(UTC),
                }
            )
    conn.execute(insert(Deadline), rows)


def seed_staff(conn: Connection, provinces: list[str]) -> int:
    """The administrator and one account per province, unless they exist; how many were added."""
    existing = {row[0] for row in conn.execute(text("SELECT username FROM staff_accounts"))}
    admin_hash, province_hash = hash_password(ADMIN_PASSWORD), hash_password(PROVINCE_PASSWORD)
    rows = []
    if ADMIN_USERNAME not in existing:
        rows.append(
            {"username": ADMIN_USERNAME, "password_hash": admin_hash, "role": "admin", "province": None}
        )
    for province in provinces:
        if staff_username(province) not in existing:
            rows.append(
                {
                    "username": staff_username(province),
                    "password_hash": province_hash,
                    "role": "province",
                    "province": province,
                }
            )
    now = datetime.now(UTC)
    if rows:  # every row names every column: an executemany takes its columns from the first row
        conn.execute(insert(StaffAccount), [{**r, "is_active": True, "created_at": now} for r in rows])
    return len(rows)


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


TABLES = (
    "users", "profiles", "conversations", "subscriptions", "leads", "lead_events", "staff_actions",
    "message_log", "staff_questions", "learning_items", "broadcasts", "outbox", "deadlines",
    "staff_accounts",
)  # fmt: skip


def seed(url: str, plan: Plan) -> dict[str, int]:
    """Migrate and fill the database at ``url``; row counts per table afterwards."""
    database = Database(url)
    database.migrate()
    d = Dialect(database.dialect)
    ctx = Context(database.engine.begin, d, province_names(), programme_ids())
    rng = random.Random(15)
    started = time.perf_counter()

    def step(label: str, work: Callable[[Connection], object]) -> None:
        began = time.perf_counter()
        with database.engine.begin() as conn:
            fast(conn, d)
            work(conn)
        print(f"  {label:<40} {time.perf_counter() - began:7.1f} s", flush=True)

    with database.engine.begin() as conn:
        ctx.user_base = max_id(conn, "users")
    step(f"{plan.producers:,} producers", lambda c: seed_users(c, d, plan.producers, ctx.user_base))
    step("their profiles", lambda c: seed_profiles(c, d, ctx.user_base, ctx.provinces))
    step("their conversations", lambda c: seed_conversations(c, d, ctx.user_base))
    step("subscriptions (3 in 10)", lambda c: seed_subscriptions(c, d, ctx.user_base, ctx.programmes))
    step("staff accounts", lambda c: seed_staff(c, ctx.provinces))
    began = time.perf_counter()
    lead_base = seed_leads(ctx, plan, rng)
    print(f"  {f'{plan.leads:,} leads':<40} {time.perf_counter() - began:7.1f} s", flush=True)
    step("lead history, notes and audit", lambda c: seed_lead_events(c, d, lead_base, ctx.provinces))
    step(f"{plan.messages:,} logged messages", lambda c: seed_messages(c, ctx, plan))
    step(f"{plan.questions:,} staff questions", lambda c: seed_questions(c, ctx, plan))
    step(f"{plan.learning:,} learning items", lambda c: seed_learning(c, ctx, plan))
    broadcasts: list[int] = []
    step("broadcasts", lambda c: broadcasts.extend(seed_broadcasts(c)))
    step(f"{plan.outbox:,} outbox history", lambda c: seed_outbox(c, ctx, plan, broadcasts))
    step("deadlines", lambda c: seed_deadlines(c, ctx))
    with database.engine.begin() as conn:
        reset_sequence(conn, d, "users")
    if d.postgres:
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    with database.engine.connect() as conn:
        counts = {table: count(conn, table) for table in TABLES}
    database.dispose()
    print(f"seeded in {time.perf_counter() - started:.1f} s")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--producers", type=int, help="default 1,000,000 (PostgreSQL), 100,000 (SQLite)")
    parser.add_argument("--leads", type=int, help="default producers / 20")
    parser.add_argument("--messages", type=int, help="default as many as producers")
    parser.add_argument("--questions", type=int, help="default leads / 20 (half open)")
    parser.add_argument("--learning", type=int, help="default leads / 10")
    parser.add_argument("--outbox", type=int, help="default messages / 10")
    args = parser.parse_args(argv)
    postgres = args.database_url.startswith(("postgres", "postgresql"))
    producers = args.producers or (1_000_000 if postgres else 100_000)
    leads = args.leads if args.leads is not None else producers // 20
    messages = args.messages if args.messages is not None else producers
    plan = Plan(
        producers=producers,
        leads=leads,
        messages=messages,
        questions=args.questions if args.questions is not None else leads // 20,
        learning=args.learning if args.learning is not None else leads // 10,
        outbox=args.outbox if args.outbox is not None else messages // 10,
    )
    print(f"seeding {args.database_url.split('@')[-1]}: {json.dumps(plan.__dict__)}")
    counts = seed(args.database_url, plan)
    for table, rows in counts.items():
        print(f"  {table:<16} {rows:>10,}")
    print(f"staff: {ADMIN_USERNAME} / {ADMIN_PASSWORD} (admin); canbo-<province>, e.g. ", end="")
    print(f"{staff_username(province_names()[0])} / {PROVINCE_PASSWORD} (one per province)")


if __name__ == "__main__":
    main()
