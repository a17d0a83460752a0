"""Index run events by time (live streams); count a run's worker losses apart from its attempts; drop run.checkpoint_dir

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server.store.feed asks, for each metric row, whether an event of its run has exactly its time.
    op.create_index("ix_run_event_run_id_time", "run_event", ["run_id", "time"], unique=False)
    # MILES_MAX_ATTEMPTS bounds the losses: a clean shutdown's hand-back no longer counts. Runs migrated
    # with a loss behind them start from 0, i.e. get their full allowance again.
    # (Plain ALTER TABLE on SQLite too: batch mode would copy the run table, and dropping the old
    # copy with foreign keys on would delete every row that cascades from it.)
    op.add_column("run", sa.Column("losses", sa.Integer(), server_default=sa.text("0"), nullable=False))
    # Written by the worker, read by nothing: a run's checkpoints are its files, under MILES_ARTIFACT_DIR/runs/<id>.
    op.drop_column("run", "checkpoint_dir")


def downgrade() -> None:
    op.add_column("run", sa.Column("checkpoint_dir", sa.Text(), nullable=True))
    op.drop_column("run", "losses")
    op.drop_index("ix_run_event_run_id_time", table_name="run_event")
