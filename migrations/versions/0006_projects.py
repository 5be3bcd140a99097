"""Users, projects and roles, and the audit trail.

Today's data moves into a ``default`` project: every study joins it, and every user
token gets a user of the same name who is a ``member`` of it (admin tokens get a user
too, and see everything as before). The default project may run the entrypoints its
studies already name (their module prefixes), so nothing that ran before is refused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("entrypoints", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_memberships_user", "memberships", ["user_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE")),
        sa.Column("study", sa.String(128)),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_project_at", "events", ["project_id", "at"])

    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    modules = set()
    for (spec,) in conn.execute(sa.text("SELECT spec FROM studies")):
        train = _json(spec).get("train")
        entrypoint = train.get("entrypoint") if isinstance(train, dict) else None
        if isinstance(entrypoint, str) and ":" in entrypoint:
            modules.add(entrypoint.partition(":")[0])
    conn.execute(
        sa.text(
            "INSERT INTO projects (id, name, description, entrypoints, created_at)"
            " VALUES (1, 'default', 'Every study made before projects existed.', :e, :now)"
        ),
        {"e": json.dumps(sorted(modules)), "now": now},
    )

    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("created_by", sa.String(128), nullable=True))
    conn.execute(sa.text("UPDATE studies SET project_id = 1"))
    with op.batch_alter_table("studies") as batch:
        batch.alter_column("project_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_studies_project_id", "projects", ["project_id"], ["id"])
        batch.create_index("ix_studies_project", ["project_id"])

    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_tokens_user_id", "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
    tokens = conn.execute(
        sa.text("SELECT name, scope FROM tokens WHERE scope IN ('user', 'admin') ORDER BY name")
    ).all()
    for user_id, (name, scope) in enumerate(tokens, start=1):
        conn.execute(
            sa.text("INSERT INTO users (id, name, created_at) VALUES (:id, :name, :now)"),
            {"id": user_id, "name": name, "now": now},
        )
        conn.execute(
            sa.text("UPDATE tokens SET user_id = :id WHERE name = :name"),
            {"id": user_id, "name": name},
        )
        if scope == "user":
            conn.execute(
                sa.text(
                    "INSERT INTO memberships (project_id, user_id, role, created_at)"
                    " VALUES (1, :id, 'member', :now)"
                ),
                {"id": user_id, "now": now},
            )
    if conn.dialect.name == "postgresql":
        # Rows inserted with explicit ids leave the sequences behind.
        for table in ("users", "projects"):
            conn.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
            )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint("fk_tokens_user_id", type_="foreignkey")
        batch.drop_column("user_id")
    with op.batch_alter_table("studies") as batch:
        batch.drop_index("ix_studies_project")
        batch.drop_constraint("fk_studies_project_id", type_="foreignkey")
        batch.drop_column("created_by")
        batch.drop_column("project_id")
    op.drop_index("ix_events_project_at", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_memberships_user", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("projects")
    op.drop_table("users")


def _json(value: object) -> dict[str, object]:
    """A JSON column's value as a dict (SQLite hands back text, PostgreSQL a dict)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}
