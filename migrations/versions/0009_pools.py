"""Pools and resources: the pool a study's trials run in, the GPUs each trial holds,
the study's weight in its pool's share, the pool each worker serves, and a project's
GPU quota.

Existing studies and workers are in the ``default`` pool with weight 1 and take one
slot per trial, as before; no project has a quota.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("pool", sa.String(64), nullable=False, server_default="default"))
        batch.add_column(sa.Column("gpus", sa.Float(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Float(), nullable=False, server_default="1"))
    op.create_index("ix_studies_pool_status", "studies", ["pool", "status"])
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("pool", sa.String(64), nullable=False, server_default="default"))
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("gpu_quota", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("gpu_quota")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("pool")
    op.drop_index("ix_studies_pool_status", table_name="studies")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("priority")
        batch.drop_column("gpus")
        batch.drop_column("pool")
