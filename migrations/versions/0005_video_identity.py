"""Video identity for export: the file's modification time and a sampled hash at ingest.

Export compares size, modification time and a sha256 of sampled blocks with the file on disk
before it writes a shard (affdata.video.identity, affdata.export.unchanged). Rows ingested
before this revision have NULL here; the first export that reads them hashes them in full once
and fills them in.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('video', sa.Column('mtime_ns', sa.BigInteger(), nullable=True))
    op.add_column('video', sa.Column('sample_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would break the
    # consensus views that read it
    op.execute('ALTER TABLE video DROP COLUMN sample_hash')
    op.execute('ALTER TABLE video DROP COLUMN mtime_ns')
