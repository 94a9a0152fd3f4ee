"""broadcasts, reminders and the outbox at national size: claim and report indexes, the due range of
reminders, and how far the reminder sweep has planned each deadline (reminder_plans)

Revision ID: 0012_outbox_scale
Revises: 0011_job_leases
Create Date: 2026-12-01 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012_outbox_scale"
down_revision: str | None = "0011_job_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder_plans",
        sa.Column("deadline_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("through_subscription_id", sa.Integer(), nullable=False),
        sa.Column("planned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deadline_id"], ["deadlines.id"], name=op.f("fk_reminder_plans_deadline_id_deadlines")
        ),
        sa.PrimaryKeyConstraint("deadline_id", name=op.f("pk_reminder_plans")),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index("ix_reminders_status_due_at", ["status", "due_at"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        # A broadcast's report and "anything still waiting?" read only its own rows by status.
        batch_op.drop_index("ix_outbox_kind_source")
        batch_op.create_index("ix_outbox_kind_source", ["kind", "source_id", "status"], unique=False)
        # The claim's "no earlier message of this chat still waiting" looks up one user's waiting rows.
        batch_op.drop_index("ix_outbox_user_status")
        batch_op.create_index("ix_outbox_user_status", ["user_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_user_status")
        batch_op.create_index("ix_outbox_user_status", ["user_id", "status"], unique=False)
        batch_op.drop_index("ix_outbox_kind_source")
        batch_op.create_index("ix_outbox_kind_source", ["kind", "source_id"], unique=False)

    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_due_at")

    op.drop_table("reminder_plans")
