"""dashboard at national size: indexes for the statistics and the conversations staff read

Revision ID: 0013_dashboard_scale
Revises: 0012_outbox_scale
Create Date: 2026-12-01 15:45:00

Found with EXPLAIN on 1,000,000 producers and 1,000,000 logged messages (``bench/seed.py``):
- the statistics' questions per day, askers and active producers read every message of the period in
  the table; ``ix_message_log_asking`` (direction, created_at, kind, user_id) answers them from the index;
- a producer's conversation around a lead or a question (``ix_message_log_user_created``, which also
  serves every lookup by user, so the single-column index on user_id goes);
- the deliveries of a period (``ix_outbox_kind_created``: kind, created_at, status, user_id);
- the funnel's application drafts of a period (conversations by ``updated_at``);
- one province's producers (``ix_profiles_province_user``: province, user_id, read from the index
  alone instead of 22,000 heap pages per statistic; it replaces the single-column province index).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_dashboard_scale"
down_revision: str | None = "0012_outbox_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.create_index("ix_message_log_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_message_log_asking", ["direction", "created_at", "kind", "user_id"], unique=False
        )
        batch_op.drop_index("ix_message_log_user_id")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_kind_created", ["kind", "created_at", "status", "user_id"], unique=False
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index("ix_conversations_updated_at", ["updated_at"], unique=False)
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_province_user", ["province", "user_id"], unique=False)
        batch_op.drop_index("ix_profiles_province")


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_province", ["province"], unique=False)
        batch_op.drop_index("ix_profiles_province_user")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_updated_at")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_kind_created")
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.create_index("ix_message_log_user_id", ["user_id"], unique=False)
        batch_op.drop_index("ix_message_log_asking")
        batch_op.drop_index("ix_message_log_user_created")
