"""An index on the consensus expression: the frames of one class, track by track.

``frame_labels WHERE expression = 'Happiness'`` (and every question about one class) reads
that class's frames through it instead of every frame of the release: at 1M frames
"Happiness frames with AU12 present, per video" took 0.19 CPU-seconds on SQLite, 1.4x the
same question on a plain table, and takes 0.02 with it (benchmarks/sql.py). Partial: frames
without a consensus expression (most of a release) are not in it, so it is a quarter of the
size and writes that leave the expression alone do not touch it.

Only an index: every row and every answer is kept.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_consensus_frame_expr_id"), "consensus_frame", ["expr_id", "track_id", "frame_idx"],
                    unique=False, sqlite_where=sa.text("expr_id IS NOT NULL"),
                    postgresql_where=sa.text("expr_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index(op.f("ix_consensus_frame_expr_id"), table_name="consensus_frame")
