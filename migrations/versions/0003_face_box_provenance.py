"""Face boxes keep their provenance and five landmarks.

``face_box`` gains ``origin`` (file, detector, person), ``source_id`` (the label source: a
detector run or the model whose file carried the boxes), ``interpolated`` (carried by the
tracker between detections), ``score`` and the five landmarks (``leye_x`` .. ``rmouth_y``).
Existing boxes came from boxes files: they get ``origin = 'file'``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LANDMARK_COLUMNS = ('leye_x', 'leye_y', 'reye_x', 'reye_y', 'nose_x', 'nose_y',
                    'lmouth_x', 'lmouth_y', 'rmouth_x', 'rmouth_y')


def upgrade() -> None:
    # SQLite rebuilds the table (copy and move) for the new constraints: keep it WITHOUT ROWID
    with op.batch_alter_table('face_box', schema=None,
                              table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), server_default='file', nullable=False))
        batch_op.add_column(sa.Column('source_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('interpolated', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('score', sa.Float(precision=53), nullable=True))
        for name in LANDMARK_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(precision=53), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_face_box_origin'), "origin IN ('file', 'detector', 'person')")
        batch_op.create_foreign_key(batch_op.f('fk_face_box_source_id_label_source'), 'label_source',
                                    ['source_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_face_box_source_id'), ['source_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('face_box', schema=None,
                              table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_box_source_id'))
        batch_op.drop_constraint(batch_op.f('fk_face_box_source_id_label_source'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('ck_face_box_origin'), type_='check')
        for name in reversed(LANDMARK_COLUMNS):
            batch_op.drop_column(name)
        batch_op.drop_column('score')
        batch_op.drop_column('interpolated')
        batch_op.drop_column('source_id')
        batch_op.drop_column('origin')
