"""Sweeps: the sweep and sweep_trial tables, run.sweep_id, the run status 'pruned', Optuna's own schema

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00.000000

Optuna keeps each sweep's study in tables it creates and migrates itself, and its Alembic
history claims the table ``alembic_version`` too. On PostgreSQL its tables therefore live in
their own schema, ``optuna``, created here (see server.sweeps.study); on SQLite, whose only
namespaces are separate files, in a file beside the database.

SQLite cannot alter a constraint in place, and copying the run table (batch mode) would drop
the old one, which with foreign keys on deletes every row that cascades from it. Widening the
status check (or removing the sweep_id foreign key on the way down) rewrites the table's
definition instead, the procedure SQLite documents for changes that leave every stored row
valid: https://www.sqlite.org/lang_altertable.html#otheralter
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "'queued', 'running', 'succeeded', 'failed', 'cancelled'"
NEW_STATUSES = f"{OLD_STATUSES}, 'pruned'"
SWEEP_FK = "CONSTRAINT fk_run_sweep_id_sweep FOREIGN KEY(sweep_id) REFERENCES sweep (id) ON DELETE SET NULL"
OPTUNA_SCHEMA = "optuna"


def document() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def rewrite_sqlite_table(table: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the stored definition of ``table`` (which must hold it exactly once);
    an empty ``old`` appends ``new`` to the table's constraints."""
    connection = op.get_bind()
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one().rstrip()
    if not old:
        assert sql.endswith(")"), sql
        rewritten = f"{sql[:-1].rstrip()}, \n\t{new}\n)"
    elif sql.count(old) == 1:
        rewritten = sql.replace(old, new)
    else:
        raise RuntimeError(f"the definition of table {table} does not hold {old!r} exactly once: {sql}")
    version = connection.exec_driver_sql("PRAGMA schema_version").scalar_one()
    connection.exec_driver_sql("PRAGMA writable_schema = ON")
    connection.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (rewritten, table))
    # A new schema version makes every open connection read the new definition.
    connection.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    connection.exec_driver_sql("PRAGMA writable_schema = OFF")


def set_statuses(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        rewrite_sqlite_table("run", f"status IN ({old})", f"status IN ({new})")
    else:
        op.drop_constraint(op.f("ck_run_status"), "run", type_="check")
        op.create_check_constraint(op.f("ck_run_status"), "run", f"status IN ({new})")


def upgrade() -> None:
    op.create_table(
        "sweep",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("spec", document(), nullable=False),
        sa.Column("study_key", sa.String(length=64), nullable=False),
        sa.Column("best", document(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("driver", sa.String(length=200), nullable=True),
        sa.Column("driven_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_token_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('searching', 'confirming', 'succeeded', 'failed', 'cancelled')", name=op.f("ck_sweep_status")
        ),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiment.id"], name=op.f("fk_sweep_experiment_id_experiment")),
        sa.ForeignKeyConstraint(
            ["owner_token_id"], ["api_token.id"], name=op.f("fk_sweep_owner_token_id_api_token"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep")),
        sa.UniqueConstraint("study_key", name=op.f("uq_sweep_study_key")),
    )
    op.create_index(op.f("ix_sweep_status"), "sweep", ["status"], unique=False)
    op.create_index("ix_sweep_created_at_id", "sweep", ["created_at", "id"], unique=False)

    op.add_column("run", sa.Column("sweep_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        rewrite_sqlite_table("run", "", SWEEP_FK)  # every row's sweep_id is null: the constraint holds
    else:
        op.create_foreign_key(op.f("fk_run_sweep_id_sweep"), "run", "sweep", ["sweep_id"], ["id"], ondelete="SET NULL")
    op.create_index(op.f("ix_run_sweep_id"), "run", ["sweep_id"], unique=False)
    set_statuses(OLD_STATUSES, NEW_STATUSES)

    op.create_table(
        "sweep_trial",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("params", document(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("told", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('trial', 'best')", name=op.f("ck_sweep_trial_role")),
        sa.CheckConstraint("state IN ('running', 'complete', 'pruned', 'failed')", name=op.f("ck_sweep_trial_state")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_sweep_trial_run_id_run"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweep.id"], name=op.f("fk_sweep_trial_sweep_id_sweep"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_trial")),
        sa.UniqueConstraint("run_id", name=op.f("uq_sweep_trial_run_id")),
        sa.UniqueConstraint(
            "sweep_id", "method", "role", "number", "seed", name=op.f("uq_sweep_trial_sweep_id_method_role_number_seed")
        ),
    )
    op.create_index("ix_sweep_trial_sweep_id_told", "sweep_trial", ["sweep_id", "told"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(f"DROP SCHEMA IF EXISTS {OPTUNA_SCHEMA} CASCADE")  # every sweep's study
    op.drop_index("ix_sweep_trial_sweep_id_told", table_name="sweep_trial")
    op.drop_table("sweep_trial")
    # No earlier revision knows 'pruned': those trials read as cancelled (both mean "stopped before the end").
    op.execute("UPDATE run SET status = 'cancelled' WHERE status = 'pruned'")
    set_statuses(NEW_STATUSES, OLD_STATUSES)
    op.drop_index(op.f("ix_run_sweep_id"), table_name="run")
    if sqlite:
        rewrite_sqlite_table("run", f", \n\t{SWEEP_FK}", "")  # SQLite refuses to drop a column with a foreign key
    else:
        op.drop_constraint(op.f("fk_run_sweep_id_sweep"), "run", type_="foreignkey")
    op.drop_column("run", "sweep_id")
    op.drop_index("ix_sweep_created_at_id", table_name="sweep")
    op.drop_index(op.f("ix_sweep_status"), table_name="sweep")
    op.drop_table("sweep")
