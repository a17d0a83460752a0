"""metric_update (the live stream's updates of a logged run), an index per runs-page filter serving its sort

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00.000000

``metric_update`` records the points an ingest wrote at a step its run had already reached,
numbered by ingest, for the streams that have sent that step (`server.store.feed.updated_after`).

Each filter of the runs page (status, experiment, method, dataset, fusion, sweep) gets an
index on (filter, created_at, id), the page's sort with its tiebreak: a filtered page is
then one walk of an index range in order, stopped after the page, instead of a sort of
every matching run. They replace the single-column indexes they start with.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILTERS = ("status", "experiment_id", "method", "dataset", "fusion", "sweep_id")
# The indexes of 0001 and 0005 that the new ones make redundant, with their columns.
REPLACED = {
    "ix_run_status_created_at": ["status", "created_at"],
    "ix_run_experiment_id": ["experiment_id"],
    "ix_run_method": ["method"],
    "ix_run_dataset": ["dataset"],
    "ix_run_sweep_id": ["sweep_id"],
}


def upgrade() -> None:
    op.create_table(
        "metric_update",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("write", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_metric_update_run_id_run"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "write", "key", "step", name=op.f("pk_metric_update")),
    )
    for column in FILTERS:
        op.create_index(f"ix_run_{column}_created_at_id", "run", [column, "created_at", "id"], unique=False)
    for name in REPLACED:
        op.drop_index(name, table_name="run")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "run", columns, unique=False)
    for column in FILTERS:
        op.drop_index(f"ix_run_{column}_created_at_id", table_name="run")
    op.drop_table("metric_update")
