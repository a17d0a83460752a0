"""Give API tokens a role (admin, member, viewer; existing tokens become members); store a run's progress in 64 bits

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "role IN ('admin', 'member', 'viewer')"


def upgrade() -> None:
    # Existing tokens become members: they keep every right over the runs they created (runs have
    # recorded their token since 0001) and lose the rights over other tokens' runs that nothing meant
    # them to have. Whoever runs this migration holds the command line: `miles token create NAME --role admin`.
    # (Plain ALTER TABLE on SQLite too, as in 0002: batch mode would copy the table.)
    op.add_column("api_token", sa.Column("role", sa.String(length=16), server_default="member", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint("role", "api_token", ROLES)
        # A logged run's progress follows its steps, which may reach 2**53 - 1. SQLite's INTEGER is 64-bit already.
        op.alter_column("run", "epoch", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Progress past 32 bits cannot go back into the old column: it is clamped to what fits.
        op.execute("UPDATE run SET epoch = 2147483647 WHERE epoch > 2147483647")
        op.alter_column("run", "epoch", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
        op.drop_constraint("role", "api_token", type_="check")
    op.drop_column("api_token", "role")
