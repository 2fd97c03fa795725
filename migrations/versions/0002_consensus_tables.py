"""The consensus, materialised: tables consensus_frame and consensus_au, filled for the labels
already stored, and the consensus views (v2) that read them. Indexes for the questions of
docs/schema.md: one source's VA labels, one source's labels of one AU.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from affdata import materialized
from affdata.views import VIEWS_V1, VIEWS_V2

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consensus_frame',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('pts_s', sa.Float(precision=53), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('valence', sa.Float(precision=53), nullable=True),
    sa.Column('arousal', sa.Float(precision=53), nullable=True),
    sa.Column('has_va', sa.SmallInteger(), nullable=False),
    sa.Column('expr_id', sa.Integer(), nullable=True),
    sa.Column('has_expr', sa.SmallInteger(), nullable=False),
    sa.Column('has_au', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_consensus_frame_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', name=op.f('pk_consensus_frame')),
    sqlite_with_rowid=False
    )
    if op.get_bind().dialect.name == "postgresql":
        # label writes update their frames' rows in place (a release's second and third task
        # files): room on each page lets PostgreSQL keep the new row versions on the same page
        # (HOT updates: no index entries to add)
        op.execute("ALTER TABLE consensus_frame SET (fillfactor = 75)")
    op.create_table('consensus_au',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('au_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('present', sa.SmallInteger(), nullable=True),
    sa.Column('intensity', sa.Float(precision=53), nullable=True),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_consensus_au_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', 'au_id', name=op.f('pk_consensus_au')),
    sqlite_with_rowid=False
    )
    op.create_index(op.f('ix_va_label_source_id'), 'va_label', ['source_id'], unique=False)
    op.create_index(op.f('ix_au_label_source_id'), 'au_label', ['source_id', 'au_id'], unique=False)
    for name, _sql in reversed(VIEWS_V1):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for _name, sql in VIEWS_V2:
        op.execute(sql)
    bind = op.get_bind()
    materialized.rebuild(bind)
    if bind.execute(sa.text("SELECT 1 FROM consensus_frame LIMIT 1")).first() is not None:
        materialized.update_statistics(bind)


def downgrade() -> None:
    for name, _sql in reversed(VIEWS_V2):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table('consensus_au')
    op.drop_table('consensus_frame')
    op.drop_index(op.f('ix_au_label_source_id'), table_name='au_label')
    op.drop_index(op.f('ix_va_label_source_id'), table_name='va_label')
    for _name, sql in VIEWS_V1:
        op.execute(sql)
