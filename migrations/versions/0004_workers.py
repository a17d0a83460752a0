"""Workers: a table of `miles worker` processes and their heartbeats; where each run trained (run.machine)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "worker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("facts", DOCUMENT, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("recent", DOCUMENT, nullable=False),
        sa.CheckConstraint("state IN ('idle', 'busy')", name=op.f("ck_worker_state")),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_worker_run_id_run"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker")),
        sa.UniqueConstraint("name", name=op.f("uq_worker_name")),
    )
    op.create_index("ix_worker_queue_expires_at", "worker", ["queue", "expires_at"], unique=False)
    # A nullable column: plain ALTER TABLE on SQLite too (batch mode would copy the run table; see 0002).
    op.add_column("run", sa.Column("machine", DOCUMENT, nullable=True))


def downgrade() -> None:
    op.drop_column("run", "machine")
    op.drop_index("ix_worker_queue_expires_at", table_name="worker")
    op.drop_table("worker")
