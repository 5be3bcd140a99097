"""Fleet mode: retries and timeouts per study, lost-attempt count, checkpoints, the
time a trial was (re)queued, and registered workers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("max_retries", sa.Integer, nullable=False, server_default="2"))
        batch.add_column(
            sa.Column("trial_timeout", sa.Float, nullable=False, server_default="86400")
        )
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("checkpoint", sa.Text))
        batch.add_column(sa.Column("checkpoint_step", sa.Integer))
        batch.add_column(sa.Column("queued_at", TZ))
    op.create_table(
        "workers",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("devices", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("heartbeat_at", TZ, nullable=False),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("checkpoint_step")
        batch.drop_column("checkpoint")
        batch.drop_column("failures")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("trial_timeout")
        batch.drop_column("max_retries")
