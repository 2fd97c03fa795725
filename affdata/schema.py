"""The store's tables, as SQLAlchemy 2 declarative models.

One schema serves SQLite and PostgreSQL. The shape follows what the whole toolkit needs:

* a **video** is a file (or a folder of numbered frame images) identified by its content hash,
  with the decoder and stream chosen at ingest so that export decodes the same frames;
* a **frame** row exists for every frame (index, timestamp; ``present`` is false where a frame
  folder lacks that number), so a label can be checked against the frames that exist and the
  ``frame_labels`` view can list unlabelled frames too;
* a **track** is one person in a video (``main``, or ``left`` / ``right`` as in Aff-Wild2), and
  labels hang off tracks, not videos; a track may carry per-frame **face boxes** (with five
  landmarks and their provenance: a file, a detector run, a person);
* every label row names its **label source** (an annotator, an imported annotation set, a model
  run, or the consensus) and the **label import** (file) it came from, keyed by
  (track, frame, source) so that several annotators of the same frame coexist;
* AU and expression ids are FACS numbers and canonical expression ids (``affdata.vocab``);
* **splits** assign videos to parts, **exports** record what was written from which label state.

Label tables are ``WITHOUT ROWID`` on SQLite: their primary key is the lookup key, and the
clustered layout keeps a million-frame import compact.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false as sa_false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: kinds of label source; the first two count as human labels in the consensus views
SOURCE_KINDS = ("annotator", "dataset", "model", "consensus")
HUMAN_SOURCE_KINDS = ("annotator", "dataset")

Float64 = Float(precision=53)  # double precision on PostgreSQL, REAL on SQLite


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _without_rowid() -> dict[str, Any]:
    return {"sqlite_with_rowid": False}


# --- people and media -------------------------------------------------------------------------


class Subject(Base):
    __tablename__ = "subject"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Video(Base):
    __tablename__ = "video"
    __table_args__ = (
        CheckConstraint("kind IN ('file', 'frames')", name="kind"),
        CheckConstraint("decoder IN ('decord', 'pyav', 'images')", name="decoder"),
        CheckConstraint("frame_count >= 0", name="frame_count"),
        CheckConstraint("fps_num > 0 AND fps_den > 0", name="fps"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the name labels refer to (ABAW: the file stem); unique in a store
    name: Mapped[str] = mapped_column(String(255), unique=True)
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("subject.id", ondelete="SET NULL"), index=True
    )
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: newest modification time (ns) at ingest, and sha256 of sampled bytes: what export checks
    #: the file against cheaply (affdata.video.identity); NULL for videos ingested before 0005
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    sample_hash: Mapped[str | None] = mapped_column(String(64))
    container: Mapped[str] = mapped_column(String(64))
    codec: Mapped[str] = mapped_column(String(64))
    #: index of the chosen video stream among the container's streams (NULL for frame folders)
    stream_index: Mapped[int | None] = mapped_column(Integer)
    decoder: Mapped[str] = mapped_column(String(16))
    fps_num: Mapped[int] = mapped_column(Integer)
    fps_den: Mapped[int] = mapped_column(Integer)
    #: frames that in-order decoding yields (verified at ingest, not the container's claim)
    frame_count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sar_num: Mapped[int] = mapped_column(Integer, default=1)
    sar_den: Mapped[int] = mapped_column(Integer, default=1)
    duration_s: Mapped[float] = mapped_column(Float64)
    is_vfr: Mapped[bool] = mapped_column(default=False)
    #: decisions taken while probing (decoder disagreements and the like), JSON list of strings
    notes: Mapped[list[str] | None] = mapped_column(JSON)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Frame(Base):
    __tablename__ = "frame"
    __table_args__ = _without_rowid()

    video_id: Mapped[int] = mapped_column(
        ForeignKey("video.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: presentation time in seconds from the first frame
    pts_s: Mapped[float] = mapped_column(Float64)
    #: false where a frame folder has no image for this number (a frame without a face)
    present: Mapped[bool] = mapped_column(default=True)


class Track(Base):
    __tablename__ = "track"
    __table_args__ = (UniqueConstraint("video_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"))
    #: ``main`` for the one person of a video, ``left`` / ``right`` for Aff-Wild2 pairs
    name: Mapped[str] = mapped_column(String(64))
    #: the person, where known; NULL means the video's subject
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("subject.id", ondelete="SET NULL"), index=True
    )


#: where a face box came from: a boxes or label file, a face detector run, a person drawing it
BOX_ORIGINS = ("file", "detector", "person")
#: the five facial landmarks, in image terms (``left`` = the eye on the image's left side)
LANDMARKS = ("leye", "reye", "nose", "lmouth", "rmouth")
LANDMARK_COLUMNS = tuple(f"{p}_{a}" for p in LANDMARKS for a in ("x", "y"))


class FaceBox(Base):
    """One face box per (track, frame), with its provenance and, where known, five landmarks.

    ``origin`` says who made it; only ``detector`` boxes are ever replaced by a detector run
    (``affdata detect faces``), never boxes from a file or a person. ``source_id`` names the
    label source (a detector run with its parameters, or the model whose output file carried
    the boxes); NULL for boxes files (``affdata ingest boxes``). ``interpolated`` marks boxes
    carried by the tracker between two detections.
    """

    __tablename__ = "face_box"
    __table_args__ = (
        CheckConstraint("origin IN ('file', 'detector', 'person')", name="origin"),
        _without_rowid(),
    )

    track_id: Mapped[int] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True
    )
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    x: Mapped[float] = mapped_column(Float64)
    y: Mapped[float] = mapped_column(Float64)
    w: Mapped[float] = mapped_column(Float64)
    h: Mapped[float] = mapped_column(Float64)
    origin: Mapped[str] = mapped_column(String(16), default="file", server_default="file")
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), index=True
    )
    interpolated: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: the detector's confidence (NULL for interpolated and file boxes)
    score: Mapped[float | None] = mapped_column(Float64)
    leye_x: Mapped[float | None] = mapped_column(Float64)
    leye_y: Mapped[float | None] = mapped_column(Float64)
    reye_x: Mapped[float | None] = mapped_column(Float64)
    reye_y: Mapped[float | None] = mapped_column(Float64)
    nose_x: Mapped[float | None] = mapped_column(Float64)
    nose_y: Mapped[float | None] = mapped_column(Float64)
    lmouth_x: Mapped[float | None] = mapped_column(Float64)
    lmouth_y: Mapped[float | None] = mapped_column(Float64)
    rmouth_x: Mapped[float | None] = mapped_column(Float64)
    rmouth_y: Mapped[float | None] = mapped_column(Float64)


# --- vocabularies -----------------------------------------------------------------------------


class ActionUnit(Base):
    __tablename__ = "action_unit"

    #: the FACS number: AU12 has id 12
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(16), unique=True)
    description: Mapped[str] = mapped_column(String(255))


class Expression(Base):
    __tablename__ = "expression"

    #: position in the canonical order (affdata.vocab.EXPRESSIONS)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(32), unique=True)


class Vocabulary(Base):
    """A named AU set or expression class order (``abaw2020``, ``affectnet``, ``fer2013``...)."""

    __tablename__ = "vocabulary"
    __table_args__ = (
        UniqueConstraint("kind", "name"),
        CheckConstraint("kind IN ('au', 'expression')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))


class VocabularyItem(Base):
    __tablename__ = "vocabulary_item"

    vocabulary_id: Mapped[int] = mapped_column(
        ForeignKey("vocabulary.id", ondelete="CASCADE"), primary_key=True
    )
    #: the class id or column position in the dataset's own files
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    au_id: Mapped[int | None] = mapped_column(ForeignKey("action_unit.id"))
    expression_id: Mapped[int | None] = mapped_column(ForeignKey("expression.id"))


class VocabAlias(Base):
    """Other spellings: ``AU01`` -> 12, ``happy`` -> 4."""

    __tablename__ = "vocab_alias"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer)


# --- label provenance -------------------------------------------------------------------------


class LabelSource(Base):
    """Who or what produced labels: an annotator, an imported annotation set, a model run."""

    __tablename__ = "label_source"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("kind IN ('annotator', 'dataset', 'model', 'consensus')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LabelImport(Base):
    """One imported file (or one file's share of a source): what makes re-import a no-op."""

    __tablename__ = "label_import"
    __table_args__ = (UniqueConstraint("source_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("label_source.id", ondelete="CASCADE"))
    #: the file's identity within its source, e.g. ``VA_Set/Training_Set/video1.txt``
    key: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32))
    #: the tasks the file carried, comma-separated: ``va``, ``au``, ``expr``
    tasks: Mapped[str] = mapped_column(String(32))
    #: what was done where the file's lines and the video's frames differ: refuse|truncate|pad
    length_policy: Mapped[str] = mapped_column(String(16), default="refuse")
    n_lines: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer)
    #: what writing the file back needs: header line, AU columns, class order, split part
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VALabel(Base):
    __tablename__ = "va_label"
    __table_args__ = (
        CheckConstraint("valence BETWEEN -1 AND 1", name="valence"),
        CheckConstraint("arousal BETWEEN -1 AND 1", name="arousal"),
        Index(None, "import_id"),
        Index(None, "source_id"),  # one source's labels (comparing annotators) without a scan
        _without_rowid(),
    )

    track_id: Mapped[int] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True
    )
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), primary_key=True
    )
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_import.id", ondelete="CASCADE")
    )
    valence: Mapped[float] = mapped_column(Float64)
    arousal: Mapped[float] = mapped_column(Float64)


class AULabel(Base):
    __tablename__ = "au_label"
    __table_args__ = (
        CheckConstraint("present IN (0, 1)", name="present"),
        CheckConstraint("intensity BETWEEN 0 AND 5", name="intensity"),
        CheckConstraint("present IS NOT NULL OR intensity IS NOT NULL", name="some_value"),
        Index(None, "import_id"),
        Index(None, "source_id", "au_id"),  # one source's AU (a model against the consensus)
        _without_rowid(),
    )

    track_id: Mapped[int] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True
    )
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), primary_key=True
    )
    au_id: Mapped[int] = mapped_column(
        ForeignKey("action_unit.id"), primary_key=True, autoincrement=False
    )
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_import.id", ondelete="CASCADE")
    )
    present: Mapped[int | None] = mapped_column(SmallInteger)
    intensity: Mapped[float | None] = mapped_column(Float64)


class ExprLabel(Base):
    __tablename__ = "expr_label"
    __table_args__ = (Index(None, "import_id"), _without_rowid())

    track_id: Mapped[int] = mapped_column(
        ForeignKey("track.id", ondelete="CASCADE"), primary_key=True
    )
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("label_source.id", ondelete="CASCADE"), primary_key=True
    )
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_import.id", ondelete="CASCADE")
    )
    expr_id: Mapped[int] = mapped_column(ForeignKey("expression.id"))


# --- the consensus, materialised (affdata.materialized keeps it current) ----------------------


class ConsensusFrame(Base):
    """One row per (track, frame) of every track: the frame's time and its consensus labels.

    Written only by :mod:`affdata.materialized`, in the transaction of the write that changed
    the labels; the ``frame_labels`` view reads it. ``pts_s`` and ``present`` are copied from
    ``frame`` (frames never change once ingested), so a whole-release question reads one table.

    No foreign key to ``track`` (revision 0008): the writer takes its track ids from the store in
    the same transaction, and the key's per-row look-up was most of what keeping the consensus
    cost a PostgreSQL import. A trigger on ``track`` (made by the migration) deletes a removed
    track's rows here and in ``consensus_au``, as the key's ``ON DELETE CASCADE`` did.
    """

    __tablename__ = "consensus_frame"
    __table_args__ = (
        # the frames of one expression, track by track (``expression = 'Happiness'``): a
        # question about one class reads its frames, not the release; only labelled frames
        # are in it (revision 0007)
        Index(None, "expr_id", "track_id", "frame_idx", sqlite_where=text("expr_id IS NOT NULL"),
              postgresql_where=text("expr_id IS NOT NULL")),
        _without_rowid(),
    )

    track_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # no key: see below
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pts_s: Mapped[float] = mapped_column(Float64)
    present: Mapped[bool] = mapped_column()
    valence: Mapped[float | None] = mapped_column(Float64)
    arousal: Mapped[float | None] = mapped_column(Float64)
    has_va: Mapped[int] = mapped_column(SmallInteger, default=0)
    expr_id: Mapped[int | None] = mapped_column(Integer)
    has_expr: Mapped[int] = mapped_column(SmallInteger, default=0)
    has_au: Mapped[int] = mapped_column(SmallInteger, default=0)


class ConsensusAU(Base):
    """One row per (track, frame, AU) with a consensus AU label; the ``frame_au_labels`` view."""

    __tablename__ = "consensus_au"
    __table_args__ = _without_rowid()

    track_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # see ConsensusFrame
    frame_idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    au_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    present: Mapped[int | None] = mapped_column(SmallInteger)
    intensity: Mapped[float | None] = mapped_column(Float64)


# --- splits and exports -----------------------------------------------------------------------


class Split(Base):
    """A named, versioned assignment of videos to parts (train / val / test)."""

    __tablename__ = "split"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("unit IN ('subject', 'video')", name="unit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: what was kept disjoint across parts
    unit: Mapped[str] = mapped_column(String(16))
    #: how it was made: ratios, seed, stratification, or the import it came from
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: sha256 over the sorted (video content hash, part) pairs
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SplitAssignment(Base):
    __tablename__ = "split_assignment"

    split_id: Mapped[int] = mapped_column(
        ForeignKey("split.id", ondelete="CASCADE"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(
        ForeignKey("video.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(32), index=True)


class Export(Base):
    """One run of ``affdata export``: what was written, where, from which label state."""

    __tablename__ = "export"

    id: Mapped[int] = mapped_column(primary_key=True)
    split_id: Mapped[int | None] = mapped_column(ForeignKey("split.id", ondelete="SET NULL"))
    part: Mapped[str | None] = mapped_column(String(32))
    out_dir: Mapped[str] = mapped_column(Text)
    format_version: Mapped[int] = mapped_column(Integer)
    #: sha256 of the label imports (source, key, file hash) the export read
    label_state: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- the annotation studio (affdata.annotate) -------------------------------------------------

USER_ROLES = ("annotator", "admin")
CAMPAIGN_TASKS = ("va", "au", "expr")


class AppUser(Base):
    """A person who logs in to the annotation studio; their labels go to a source of their name."""

    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint("role IN ('annotator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: ``scrypt$n$r$p$salt_hex$hash_hex`` (hashlib.scrypt)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    #: failed log-ins since the last success; at the limit the account waits until locked_until
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebSession(Base):
    """A logged-in browser: only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "web_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Campaign(Base):
    """A labelling job: one task over a set of (video, track) items, k annotators per item."""

    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint("task IN ('va', 'au', 'expr')", name="task"),
        CheckConstraint("per_item >= 1", name="per_item"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    task: Mapped[str] = mapped_column(String(8))
    #: AU numbers (task au) or canonical expression ids (task expr); empty for va
    classes: Mapped[list[int] | None] = mapped_column(JSON)
    #: how many annotators label each item
    per_item: Mapped[int] = mapped_column(Integer, default=1)
    #: va: ``2d`` (one pass, both dimensions) or ``1d`` (valence and arousal in separate passes)
    mode: Mapped[str] = mapped_column(String(8), default="2d")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignItem(Base):
    """One (video, track) of a campaign."""

    __tablename__ = "campaign_item"
    __table_args__ = (UniqueConstraint("campaign_id", "track_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"))


class Assignment(Base):
    """An item given to one annotator; the unit of access: an annotator sees only their own."""

    __tablename__ = "assignment"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        CheckConstraint("status IN ('open', 'draft', 'submitted')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("campaign_item.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Draft(Base):
    """The autosaved work of an assignment; ``seq`` only grows, so a late retry never wins."""

    __tablename__ = "draft"

    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignment.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Submission(Base):
    """The submitted labels of an assignment: which source and import hold them."""

    __tablename__ = "submission"

    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignment.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(ForeignKey("label_source.id", ondelete="CASCADE"))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("label_import.id", ondelete="SET NULL"))
    frames: Mapped[int] = mapped_column(Integer)
    #: frames the browser did not present, filled by interpolation (VA)
    interpolated: Mapped[int] = mapped_column(Integer, default=0)
    partial: Mapped[bool] = mapped_column(default=False)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
