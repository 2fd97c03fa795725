"""Initial schema: media, tracks, label sources and labels, vocabularies, splits, exports.

Also seeds the vocabularies (frozen below; they equalled affdata.vocab then) and creates the consensus views (v1).

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 15:49:44.408851
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from affdata.views import VIEWS_V1

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The vocabularies as this migration inserts them, frozen here (as views.py freezes VIEWS_V1):
# editing affdata/vocab.py never changes what a historical migration creates; a vocabulary
# change is a new migration. tests/store/test_migrations.py checks these equal vocab.py today.
ACTION_UNITS_V1 = {1: 'Inner brow raiser',
 2: 'Outer brow raiser',
 4: 'Brow lowerer',
 5: 'Upper lid raiser',
 6: 'Cheek raiser',
 7: 'Lid tightener',
 9: 'Nose wrinkler',
 10: 'Upper lip raiser',
 11: 'Nasolabial deepener',
 12: 'Lip corner puller',
 14: 'Dimpler',
 15: 'Lip corner depressor',
 17: 'Chin raiser',
 18: 'Lip pucker',
 20: 'Lip stretcher',
 22: 'Lip funneler',
 23: 'Lip tightener',
 24: 'Lip pressor',
 25: 'Lips part',
 26: 'Jaw drop',
 27: 'Mouth stretch',
 28: 'Lip suck',
 43: 'Eyes closed',
 45: 'Blink'}
EXPRESSIONS_V1 = ('Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other', 'Contempt')
AU_SETS_V1 = {'abaw2020': (1, 2, 4, 6, 12, 15, 20, 25), 'abaw': (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)}
EXPRESSION_ORDERS_V1 = {'abaw2020': (0, 1, 2, 3, 4, 5, 6),
 'abaw': (0, 1, 2, 3, 4, 5, 6, 7),
 'affectnet': (0, 4, 5, 6, 3, 2, 1, 8),
 'fer2013': (1, 2, 3, 4, 5, 6, 0),
 'pyfeat': (1, 2, 3, 4, 5, 6, 0)}
EXPRESSION_ALIASES_V1 = {'neutral': 0,
 'anger': 1,
 'angry': 1,
 'disgust': 2,
 'disgusted': 2,
 'fear': 3,
 'fearful': 3,
 'afraid': 3,
 'happiness': 4,
 'happy': 4,
 'joy': 4,
 'sadness': 5,
 'sad': 5,
 'surprise': 6,
 'surprised': 6,
 'other': 7,
 'contempt': 8}


def upgrade() -> None:
    op.create_table('action_unit',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_unit')),
    sa.UniqueConstraint('name', name=op.f('uq_action_unit_name'))
    )
    op.create_table('expression',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expression')),
    sa.UniqueConstraint('name', name=op.f('uq_expression_name'))
    )
    op.create_table('label_source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('annotator', 'dataset', 'model', 'consensus')", name=op.f('ck_label_source_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_source')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_label_source_name_version'))
    )
    op.create_table('split',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("unit IN ('subject', 'video')", name=op.f('ck_split_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_split_name_version'))
    )
    op.create_table('subject',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject')),
    sa.UniqueConstraint('name', name=op.f('uq_subject_name'))
    )
    op.create_table('vocab_alias',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'alias', name=op.f('pk_vocab_alias'))
    )
    op.create_table('vocabulary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('au', 'expression')", name=op.f('ck_vocabulary_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vocabulary')),
    sa.UniqueConstraint('kind', 'name', name=op.f('uq_vocabulary_kind_name'))
    )
    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('split_id', sa.Integer(), nullable=True),
    sa.Column('part', sa.String(length=32), nullable=True),
    sa.Column('out_dir', sa.Text(), nullable=False),
    sa.Column('format_version', sa.Integer(), nullable=False),
    sa.Column('label_state', sa.String(length=64), nullable=False),
    sa.Column('args', sa.JSON(), nullable=True),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('n_rows', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['split_id'], ['split.id'], name=op.f('fk_export_split_id_split'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    op.create_table('label_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('tasks', sa.String(length=32), nullable=False),
    sa.Column('length_policy', sa.String(length=16), nullable=False),
    sa.Column('n_lines', sa.Integer(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['label_source.id'], name=op.f('fk_label_import_source_id_label_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_import')),
    sa.UniqueConstraint('source_id', 'key', name=op.f('uq_label_import_source_id_key'))
    )
    op.create_table('video',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('container', sa.String(length=64), nullable=False),
    sa.Column('codec', sa.String(length=64), nullable=False),
    sa.Column('stream_index', sa.Integer(), nullable=True),
    sa.Column('decoder', sa.String(length=16), nullable=False),
    sa.Column('fps_num', sa.Integer(), nullable=False),
    sa.Column('fps_den', sa.Integer(), nullable=False),
    sa.Column('frame_count', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('sar_num', sa.Integer(), nullable=False),
    sa.Column('sar_den', sa.Integer(), nullable=False),
    sa.Column('duration_s', sa.Float(precision=53), nullable=False),
    sa.Column('is_vfr', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=True),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decoder IN ('decord', 'pyav', 'images')", name=op.f('ck_video_decoder')),
    sa.CheckConstraint("kind IN ('file', 'frames')", name=op.f('ck_video_kind')),
    sa.CheckConstraint('fps_num > 0 AND fps_den > 0', name=op.f('ck_video_fps')),
    sa.CheckConstraint('frame_count >= 0', name=op.f('ck_video_frame_count')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_video_subject_id_subject'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_video_content_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_video_name'))
    )
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_subject_id'), ['subject_id'], unique=False)

    op.create_table('vocabulary_item',
    sa.Column('vocabulary_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('au_id', sa.Integer(), nullable=True),
    sa.Column('expression_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['au_id'], ['action_unit.id'], name=op.f('fk_vocabulary_item_au_id_action_unit')),
    sa.ForeignKeyConstraint(['expression_id'], ['expression.id'], name=op.f('fk_vocabulary_item_expression_id_expression')),
    sa.ForeignKeyConstraint(['vocabulary_id'], ['vocabulary.id'], name=op.f('fk_vocabulary_item_vocabulary_id_vocabulary'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vocabulary_id', 'position', name=op.f('pk_vocabulary_item'))
    )
    op.create_table('frame',
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('pts_s', sa.Float(precision=53), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_frame_video_id_video'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', 'idx', name=op.f('pk_frame')),
    sqlite_with_rowid=False
    )
    op.create_table('split_assignment',
    sa.Column('split_id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['split_id'], ['split.id'], name=op.f('fk_split_assignment_split_id_split'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_split_assignment_video_id_video'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('split_id', 'video_id', name=op.f('pk_split_assignment'))
    )
    with op.batch_alter_table('split_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_split_assignment_part'), ['part'], unique=False)

    op.create_table('track',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_track_subject_id_subject'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_track_video_id_video'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_track')),
    sa.UniqueConstraint('video_id', 'name', name=op.f('uq_track_video_id_name'))
    )
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_track_subject_id'), ['subject_id'], unique=False)

    op.create_table('au_label',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('au_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('present', sa.SmallInteger(), nullable=True),
    sa.Column('intensity', sa.Float(precision=53), nullable=True),
    sa.CheckConstraint('intensity BETWEEN 0 AND 5', name=op.f('ck_au_label_intensity')),
    sa.CheckConstraint('present IN (0, 1)', name=op.f('ck_au_label_present')),
    sa.CheckConstraint('present IS NOT NULL OR intensity IS NOT NULL', name=op.f('ck_au_label_some_value')),
    sa.ForeignKeyConstraint(['au_id'], ['action_unit.id'], name=op.f('fk_au_label_au_id_action_unit')),
    sa.ForeignKeyConstraint(['import_id'], ['label_import.id'], name=op.f('fk_au_label_import_id_label_import'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['label_source.id'], name=op.f('fk_au_label_source_id_label_source'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_au_label_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', 'source_id', 'au_id', name=op.f('pk_au_label')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('au_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_au_label_import_id'), ['import_id'], unique=False)

    op.create_table('expr_label',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('expr_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['expr_id'], ['expression.id'], name=op.f('fk_expr_label_expr_id_expression')),
    sa.ForeignKeyConstraint(['import_id'], ['label_import.id'], name=op.f('fk_expr_label_import_id_label_import'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['label_source.id'], name=op.f('fk_expr_label_source_id_label_source'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_expr_label_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', 'source_id', name=op.f('pk_expr_label')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('expr_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expr_label_import_id'), ['import_id'], unique=False)

    op.create_table('face_box',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('x', sa.Float(precision=53), nullable=False),
    sa.Column('y', sa.Float(precision=53), nullable=False),
    sa.Column('w', sa.Float(precision=53), nullable=False),
    sa.Column('h', sa.Float(precision=53), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_face_box_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', name=op.f('pk_face_box')),
    sqlite_with_rowid=False
    )
    op.create_table('va_label',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('frame_idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('valence', sa.Float(precision=53), nullable=False),
    sa.Column('arousal', sa.Float(precision=53), nullable=False),
    sa.CheckConstraint('arousal BETWEEN -1 AND 1', name=op.f('ck_va_label_arousal')),
    sa.CheckConstraint('valence BETWEEN -1 AND 1', name=op.f('ck_va_label_valence')),
    sa.ForeignKeyConstraint(['import_id'], ['label_import.id'], name=op.f('fk_va_label_import_id_label_import'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['label_source.id'], name=op.f('fk_va_label_source_id_label_source'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_va_label_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', 'frame_idx', 'source_id', name=op.f('pk_va_label')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('va_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_va_label_import_id'), ['import_id'], unique=False)


    _seed_vocabularies()
    for _name, sql in VIEWS_V1:
        op.execute(sql)


def downgrade() -> None:
    for name, _sql in reversed(VIEWS_V1):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table('va_label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_va_label_import_id'))

    op.drop_table('va_label')
    op.drop_table('face_box')
    with op.batch_alter_table('expr_label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expr_label_import_id'))

    op.drop_table('expr_label')
    with op.batch_alter_table('au_label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_au_label_import_id'))

    op.drop_table('au_label')
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_track_subject_id'))

    op.drop_table('track')
    with op.batch_alter_table('split_assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_split_assignment_part'))

    op.drop_table('split_assignment')
    op.drop_table('frame')
    op.drop_table('vocabulary_item')
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_subject_id'))

    op.drop_table('video')
    op.drop_table('label_import')
    op.drop_table('export')
    op.drop_table('vocabulary')
    op.drop_table('vocab_alias')
    op.drop_table('subject')
    op.drop_table('split')
    op.drop_table('label_source')
    op.drop_table('expression')
    op.drop_table('action_unit')


def _seed_vocabularies() -> None:
    """Action units, canonical expressions, named AU sets and class orders, and aliases."""
    bind = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(bind, only=["action_unit", "expression", "vocabulary", "vocabulary_item", "vocab_alias"])
    t = meta.tables
    op.bulk_insert(
        t["action_unit"],
        [{"id": n, "name": f"AU{n}", "description": d} for n, d in ACTION_UNITS_V1.items()],
    )
    op.bulk_insert(
        t["expression"], [{"id": i, "name": name} for i, name in enumerate(EXPRESSIONS_V1)]
    )
    vocab_rows, item_rows = [], []
    vid = 0
    for name, numbers in AU_SETS_V1.items():
        vid += 1
        vocab_rows.append({"id": vid, "kind": "au", "name": name})
        item_rows += [
            {"vocabulary_id": vid, "position": i, "au_id": n, "expression_id": None}
            for i, n in enumerate(numbers)
        ]
    for name, order in EXPRESSION_ORDERS_V1.items():
        vid += 1
        vocab_rows.append({"id": vid, "kind": "expression", "name": name})
        item_rows += [
            {"vocabulary_id": vid, "position": i, "au_id": None, "expression_id": e}
            for i, e in enumerate(order)
        ]
    op.bulk_insert(t["vocabulary"], vocab_rows)
    op.bulk_insert(t["vocabulary_item"], item_rows)
    aliases = [{"kind": "expression", "alias": a, "target_id": e} for a, e in EXPRESSION_ALIASES_V1.items()]
    for n in ACTION_UNITS_V1:
        for alias in {f"AU{n}", f"AU{n:02d}", f"au{n}", f"au{n:02d}"}:
            aliases.append({"kind": "au", "alias": alias, "target_id": n})
    op.bulk_insert(t["vocab_alias"], sorted(aliases, key=lambda r: (r["kind"], r["alias"])))
