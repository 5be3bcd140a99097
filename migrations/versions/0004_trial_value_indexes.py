"""Indexes for a study's trials by value: pages sorted by value either way (nulls last)
and the best trial, as index-only scans at 100,000 trials.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The null test leads so that one index gives "nulls last" in both directions on both
# databases (PostgreSQL sorts nulls first in DESC, SQLite first in ASC).
NULLS = sa.text("(value IS NULL)")


def upgrade() -> None:
    op.create_index(
        "ix_trials_study_value",
        "trials",
        ["study_id", NULLS, "value", "number"],
        postgresql_include=["status"],
    )
    op.create_index(
        "ix_trials_study_value_desc",
        "trials",
        ["study_id", NULLS, sa.text("value DESC"), "number"],
        postgresql_include=["status"],
    )


def downgrade() -> None:
    op.drop_index("ix_trials_study_value_desc", table_name="trials")
    op.drop_index("ix_trials_study_value", table_name="trials")
