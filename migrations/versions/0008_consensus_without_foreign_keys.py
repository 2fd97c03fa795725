"""The consensus tables without foreign keys; a trigger on ``track`` removes a deleted track's rows.

``consensus_frame`` and ``consensus_au`` are derived rows that only :mod:`affdata.materialized`
writes, from track ids it has just read in the same transaction, so a per-row check that the
track exists proves nothing new. On PostgreSQL it was most of what keeping the consensus
current cost a label import: each row runs the foreign key's look-up of its track (about 5 us
with an index, 27 us when the planner reads a small ``track`` table from end to end), so
writing 1.9M consensus AU rows took 12.1 s with the key and 3.7 s without (1M-frame release,
benchmarks/sql.py; the import with the upkeep 127 s with both keys, 117 s without, against
95 s without the upkeep).

What the keys still did, removing a track's rows when the track goes (``ON DELETE CASCADE``,
also when a video's deletion cascades to its tracks), is done by an ``AFTER DELETE`` trigger on
``track``: it costs nothing when labels are written, only when tracks are deleted.

On SQLite a foreign key cannot be dropped, so both tables are rebuilt without it (their rows
copied in key order; the views that read them are dropped and made again around it).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from affdata.views import VIEWS_V2

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("consensus_frame", "consensus_au")

POSTGRESQL_TRIGGER = (
    "CREATE FUNCTION consensus_forget_tracks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM consensus_au WHERE track_id IN (SELECT id FROM gone); "
    "DELETE FROM consensus_frame WHERE track_id IN (SELECT id FROM gone); "
    "RETURN NULL; END $$",
    # one statement per DELETE, however many tracks it removes
    "CREATE TRIGGER track_forget_consensus AFTER DELETE ON track REFERENCING OLD TABLE AS gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION consensus_forget_tracks()",
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER track_forget_consensus AFTER DELETE ON track BEGIN "
    "DELETE FROM consensus_au WHERE track_id = OLD.id; "
    "DELETE FROM consensus_frame WHERE track_id = OLD.id; END",
)


def _columns(table: str, with_key: bool) -> list:
    """The two tables as revision 0002 made them (optionally without the foreign key)."""
    fk = [sa.ForeignKeyConstraint(["track_id"], ["track.id"], name=op.f(f"fk_{table}_track_id_track"),
                                  ondelete="CASCADE")] if with_key else []
    if table == "consensus_frame":
        return [
            sa.Column("track_id", sa.Integer(), nullable=False),
            sa.Column("frame_idx", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("pts_s", sa.Float(precision=53), nullable=False),
            sa.Column("present", sa.Boolean(), nullable=False),
            sa.Column("valence", sa.Float(precision=53), nullable=True),
            sa.Column("arousal", sa.Float(precision=53), nullable=True),
            sa.Column("has_va", sa.SmallInteger(), nullable=False),
            sa.Column("expr_id", sa.Integer(), nullable=True),
            sa.Column("has_expr", sa.SmallInteger(), nullable=False),
            sa.Column("has_au", sa.SmallInteger(), nullable=False),
            *fk,
            sa.PrimaryKeyConstraint("track_id", "frame_idx", name=op.f("pk_consensus_frame")),
        ]
    return [
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("frame_idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("au_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("present", sa.SmallInteger(), nullable=True),
        sa.Column("intensity", sa.Float(precision=53), nullable=True),
        *fk,
        sa.PrimaryKeyConstraint("track_id", "frame_idx", "au_id", name=op.f("pk_consensus_au")),
    ]


def _rebuild_sqlite(with_key: bool) -> None:
    for name, _sql in reversed(VIEWS_V2):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table in TABLES:
        op.create_table(f"_new_{table}", *_columns(table, with_key), sqlite_with_rowid=False)
        op.execute(f"INSERT INTO _new_{table} SELECT * FROM {table}")
        op.drop_table(table)  # and its index
        op.rename_table(f"_new_{table}", table)
    op.create_index(op.f("ix_consensus_frame_expr_id"), "consensus_frame", ["expr_id", "track_id", "frame_idx"],
                    unique=False, sqlite_where=sa.text("expr_id IS NOT NULL"))
    for _name, sql in VIEWS_V2:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.drop_constraint(op.f(f"fk_{table}_track_id_track"), table, type_="foreignkey")
        for sql in POSTGRESQL_TRIGGER:
            op.execute(sql)
    else:
        _rebuild_sqlite(with_key=False)
        for sql in SQLITE_TRIGGER:
            op.execute(sql)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS track_forget_consensus" +
               (" ON track" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS consensus_forget_tracks()")
        for table in TABLES:
            op.create_foreign_key(op.f(f"fk_{table}_track_id_track"), table, "track", ["track_id"], ["id"],
                                  ondelete="CASCADE")
    else:
        _rebuild_sqlite(with_key=True)
