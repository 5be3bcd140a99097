"""Who runs a study's trials (workers, or external ask/tell callers only), why a study
ended failed, and an index of a study's trials in the order they ended (fail-fast).

Existing studies keep running as before: their trials are run by workers
(``runner = 'workers'``), and none has a failure reason.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(
            sa.Column("runner", sa.String(16), nullable=False, server_default="workers")
        )
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_index("ix_trials_study_finished", "trials", ["study_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_trials_study_finished", table_name="trials")
    # A study that ended failed reads as completed in the schema before it.
    op.execute("UPDATE studies SET status = 'completed' WHERE status = 'failed'")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("reason")
        batch.drop_column("runner")
