"""Index run events by time, for the live streams' bundled-points lookup

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server.store.feed asks, for each metric row, whether an event of its run has exactly its time.
    op.create_index("ix_run_event_run_id_time", "run_event", ["run_id", "time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_run_event_run_id_time", table_name="run_event")
