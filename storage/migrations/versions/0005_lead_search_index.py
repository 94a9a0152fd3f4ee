"""lead search index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00

On PostgreSQL, a trigram index lets the lead search (``search_text LIKE '%words%'``) use an index
whatever the size of the list. It needs the ``pg_trgm`` extension (in PostgreSQL's standard contrib
set, trusted since PostgreSQL 13); where it cannot be created the search still works, by a scan.
SQLite, the single-process default, scans (tens of thousands of leads in milliseconds).
"""

import logging
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)
INDEX = "ix_leads_search_text_trgm"  # outside the models: SQLite has no such index


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    savepoint = connection.begin_nested()
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON leads USING gin (search_text gin_trgm_ops)")
        savepoint.commit()
    except Exception as exc:  # no permission to create the extension: search scans instead
        savepoint.rollback()
        log.warning("lead search index not created (%s); search works without it", type(exc).__name__)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
