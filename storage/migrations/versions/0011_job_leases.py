"""job leases: the scheduler's sweep run once per interval across processes; the inbox claim's
partial indexes over unfinished rows

Revision ID: 0011_job_leases
Revises: 0010_learning
Create Date: 2026-12-01 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_job_leases"
down_revision: str | None = "0010_learning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_run_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    unfinished = sa.text("status IN ('pending', 'working')")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_unfinished", ["id"], unique=False, postgresql_where=unfinished, sqlite_where=unfinished
        )
        batch_op.create_index(
            "ix_inbox_unfinished_chat",
            ["channel", "chat_key", "id"],
            unique=False,
            postgresql_where=unfinished,
            sqlite_where=unfinished,
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_unfinished_chat")
        batch_op.drop_index("ix_inbox_unfinished")
    op.drop_table("job_leases")
