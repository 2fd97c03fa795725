"""The annotation studio: users, web sessions, campaigns, items, assignments, drafts, submissions.

Only new tables: every row of an existing store is kept.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _TZ, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.CheckConstraint("role IN ('annotator', 'admin')", name=op.f("ck_app_user_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("name", name=op.f("uq_app_user_name")),
    )
    op.create_table(
        "web_session",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_web_session_user_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_web_session")),
    )
    with op.batch_alter_table("web_session") as b:
        b.create_index(b.f("ix_web_session_user_id"), ["user_id"], unique=False)
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("task", sa.String(length=8), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=True),
        sa.Column("per_item", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.CheckConstraint("task IN ('va', 'au', 'expr')", name=op.f("ck_campaign_task")),
        sa.CheckConstraint("per_item >= 1", name=op.f("ck_campaign_per_item")),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_campaign_created_by_app_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("name", name=op.f("uq_campaign_name")),
    )
    op.create_table(
        "campaign_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], name=op.f("fk_campaign_item_campaign_id_campaign"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["track_id"], ["track.id"], name=op.f("fk_campaign_item_track_id_track"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["video.id"], name=op.f("fk_campaign_item_video_id_video"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_item")),
        sa.UniqueConstraint("campaign_id", "track_id", name=op.f("uq_campaign_item_campaign_id_track_id")),
    )
    with op.batch_alter_table("campaign_item") as b:
        b.create_index(b.f("ix_campaign_item_video_id"), ["video_id"], unique=False)
    op.create_table(
        "assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.CheckConstraint("status IN ('open', 'draft', 'submitted')", name=op.f("ck_assignment_status")),
        sa.ForeignKeyConstraint(["item_id"], ["campaign_item.id"], name=op.f("fk_assignment_item_id_campaign_item"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_assignment_user_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment")),
        sa.UniqueConstraint("item_id", "user_id", name=op.f("uq_assignment_item_id_user_id")),
    )
    with op.batch_alter_table("assignment") as b:
        b.create_index(b.f("ix_assignment_user_id"), ["user_id"], unique=False)
    op.create_table(
        "draft",
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignment.id"], name=op.f("fk_draft_assignment_id_assignment"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("assignment_id", name=op.f("pk_draft")),
    )
    op.create_table(
        "submission",
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("interpolated", sa.Integer(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignment.id"], name=op.f("fk_submission_assignment_id_assignment"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["import_id"], ["label_import.id"], name=op.f("fk_submission_import_id_label_import"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_id"], ["label_source.id"], name=op.f("fk_submission_source_id_label_source"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("assignment_id", name=op.f("pk_submission")),
    )


def downgrade() -> None:
    op.drop_table("submission")
    op.drop_table("draft")
    with op.batch_alter_table("assignment") as b:
        b.drop_index(b.f("ix_assignment_user_id"))
    op.drop_table("assignment")
    with op.batch_alter_table("campaign_item") as b:
        b.drop_index(b.f("ix_campaign_item_video_id"))
    op.drop_table("campaign_item")
    op.drop_table("campaign")
    with op.batch_alter_table("web_session") as b:
        b.drop_index(b.f("ix_web_session_user_id"))
    op.drop_table("web_session")
    op.drop_table("app_user")
