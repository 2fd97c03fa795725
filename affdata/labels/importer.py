"""Importing annotation files into the store, one file per transaction.

Each file is parsed whole (``affdata.formats``), checked against the videos it names, and
written in one transaction: a bad file leaves nothing of itself in the store and the other files
go on. Its identity is (label source, key), the key being its path relative to the folder it was
found under (``VA_Set/Training_Set/video1.txt``) or its file name. Importing a file whose bytes
have not changed is a no-op; a changed file needs ``replace=True``, which swaps the old rows for
the new in the same transaction.

Line k+1 of an ABAW per-video file is frame k. A file with more or fewer lines than its video
has frames is refused with both numbers, unless a length policy says otherwise: ``truncate``
drops the lines past the last frame, ``pad`` takes the frames past the last line as
unannotated. The policy used is recorded with the import. Files of other formats name their
frames; a frame past the video's end is refused (or dropped under ``truncate``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, text

from affdata import materialized
from affdata.bulk import insert_rows, upsert_ignore
from affdata.db import Store
from affdata.errors import AffdataError, ConfigError, LabelFormatError
from affdata.formats import LabelTable, detect_format, read_labels, scan_abaw
from affdata.formats.abaw import AbawFile
from affdata.hashing import file_sha256
from affdata.schema import LabelImport, utcnow
from affdata.splits import SavedSplit
from affdata.videos import ensure_track

log = logging.getLogger(__name__)

LENGTH_POLICIES = ("refuse", "truncate", "pad")
KINDS = ("annotator", "dataset", "model")
_PER_VIDEO_FORMATS = ("abaw-va", "abaw-au", "abaw-expr")
_NAMED_VIDEO_FORMATS = ("openface", "pyfeat", "generic")  # parsers that take video=
_TASK_OF_FORMAT = {"abaw-va": "va", "abaw-au": "au", "abaw-expr": "expr"}


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: str  # imported | unchanged | replaced | failed
    source: str | None = None
    format: str | None = None
    videos: int = 0
    rows: int = 0
    reason: str | None = None


@dataclass
class LabelImportReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    split: SavedSplit | None = None
    #: what a release folder holds that is not an annotation file: (path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        statuses = ("imported", "replaced", "unchanged", "failed")
        return {s: self.count(s) for s in statuses} | {"skipped": len(self.skipped), "label_rows": self.rows}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "files": [asdict(o) for o in self.outcomes],
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "split": self.split.to_dict() if self.split else None}


@dataclass(frozen=True)
class _Job:
    """One file to import: where it is, its key within the source, and what is known of it."""

    path: Path
    key: str
    fmt: str | None
    abaw: AbawFile | None = None


def _jobs(paths: Sequence[Path], fmt: str | None,
          skipped: list[tuple[Path, str]]) -> tuple[list[_Job], list[AbawFile]]:
    jobs: list[_Job] = []
    abaw_files: list[AbawFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = scan_abaw(path, skipped)
            if not found:
                raise LabelFormatError(path, "no ABAW annotation files (VA_Set/..., AU_Set/..., EXPR_Set/...) in this folder")
            abaw_files += found
            for a in found:
                jobs.append(_Job(a.path, a.path.relative_to(path).as_posix(), f"abaw-{a.task}", a))
        else:
            jobs.append(_Job(path, path.name, fmt))
    return jobs, abaw_files


def _default_source(paths: Sequence[Path], fmt: str) -> str:
    dirs = [Path(p) for p in paths if Path(p).is_dir()]
    if dirs:
        return dirs[0].resolve().name
    return fmt


def import_labels(
    store: Store,
    paths: Sequence[Path],
    *,
    source: str | None = None,
    kind: str | None = None,
    version: str = "",
    fmt: str | None = None,
    length_policy: str = "refuse",
    replace: bool = False,
    as_split: str | None = None,
    parser_options: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    on_found: Callable[[int], None] | None = None,
) -> LabelImportReport:
    """Import annotation files and ABAW release folders; see the module docstring.

    ``source`` names the label source (default: the folder's name, or the format's);
    ``kind`` is ``dataset`` (default for human labels), ``annotator`` or ``model`` (default for
    OpenFace and py-feat output). ``as_split`` also records an ABAW release's folder membership
    (Training_Set / Validation_Set) as a split of that name.
    """
    if length_policy not in LENGTH_POLICIES:
        raise ConfigError(f"unknown length policy {length_policy!r}; use one of {', '.join(LENGTH_POLICIES)}")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown source kind {kind!r}; use one of {', '.join(KINDS)}")
    skipped: list[tuple[Path, str]] = []
    jobs, abaw_files = _jobs(paths, fmt, skipped)
    if on_found:
        on_found(len(jobs))
    report = LabelImportReport(skipped=[(str(p), reason) for p, reason in skipped])
    videos = _video_index(store)
    for job in jobs:
        try:
            outcome = _import_one(store, job, videos, source=source, kind=kind,
                                  version=version, length_policy=length_policy, replace=replace,
                                  options=parser_options or {}, all_paths=paths)
        except AffdataError as exc:
            outcome = FileOutcome(str(job.path), "failed", source, job.fmt, reason=str(exc))
        report.outcomes.append(outcome)
        if progress:
            progress(1)
    if any(o.status in ("imported", "replaced") for o in report.outcomes):
        with store.transaction() as conn:
            materialized.update_statistics(conn)
    if as_split:
        if not abaw_files:
            raise ConfigError("a split from folder membership needs an ABAW release folder (Training_Set / Validation_Set)")
        report.split = save_split_from_abaw(store, as_split, abaw_files, videos)
    return report


def save_split_from_abaw(store: Store, name: str, files: Iterable[AbawFile],
                         videos: dict[str, tuple[int, int]]) -> SavedSplit:
    """The release's folder membership as a split (unit: video); refuses a video in two parts."""
    from affdata.splits import save_split

    parts: dict[str, str] = {}
    for f in files:
        if f.video not in videos:
            continue
        seen = parts.setdefault(f.video, f.part)
        if seen != f.part:
            raise LabelFormatError(f.path, f"video {f.video!r} is in both {seen} and {f.part}: "
                                           "the folders do not form a split")
    assignment = {videos[v][0]: part for v, part in parts.items()}
    return save_split(store, name, "video", assignment, {"origin": "abaw folders"})


def _video_index(store: Store) -> dict[str, tuple[int, int]]:
    with store.connect() as conn:
        return {r.name: (r.id, r.frame_count) for r in conn.execute(text("SELECT id, name, frame_count FROM video"))}


def _source_id(conn: Connection, name: str, version: str, kind: str) -> int:
    upsert_ignore(conn, "label_source",
                  {"kind": kind, "name": name, "version": version, "created_at": utcnow()},
                  ["name", "version"])
    row = conn.execute(text("SELECT id, kind FROM label_source WHERE name = :n AND version = :v"),
                       {"n": name, "v": version}).one()
    if row.kind != kind:
        raise ConfigError(f"label source {name!r} (version {version!r}) is of kind {row.kind}, not {kind}")
    return row.id


def _existing(conn: Connection, source: str, version: str, key: str) -> Any:
    return conn.execute(text(
        "SELECT i.id, i.sha256, i.tasks FROM label_import i JOIN label_source s ON s.id = i.source_id "
        "WHERE s.name = :n AND s.version = :v AND i.key = :k"), {"n": source, "v": version, "k": key}).first()


def _import_one(store: Store, job: _Job, videos: dict[str, tuple[int, int]],
                *, source: str | None, kind: str | None, version: str, length_policy: str,
                replace: bool, options: dict[str, Any], all_paths: Sequence[Path]) -> FileOutcome:
    fmt = job.fmt or detect_format(job.path)
    digest = file_sha256(job.path)
    source_name = source or _default_source(all_paths, fmt)
    with store.connect() as conn:  # a cheap look before parsing; checked again when writing
        existing = _existing(conn, source_name, version, job.key)
    if existing is not None and existing.sha256 == digest:
        return FileOutcome(str(job.path), "unchanged", source_name, fmt)
    options = options if fmt in _NAMED_VIDEO_FORMATS else {}
    tables = read_labels(job.path, fmt, **options)
    if job.abaw is not None:
        tables = [_with_track(t, job.abaw) for t in tables]
    checked = [_fit(t, videos, fmt, length_policy) for t in tables]
    try:
        status, n_rows = store_tables(
            store, checked, source=source_name, version=version,
            kind=kind or ("model" if tables and tables[0].kind == "model" else "dataset"),
            key=job.key, path=job.path, fmt=fmt, digest=digest, length_policy=length_policy,
            details=_details(job, fmt, tables), replace=replace)
    except Exception as exc:
        if not _is_unique_violation(exc):
            raise
        # rolled back: another file (or another process) holds these labels already
        _refuse_conflict(store, checked, source=source_name, version=version, key=job.key,
                         path=job.path, digest=digest)
        return FileOutcome(str(job.path), "unchanged", source_name, fmt,
                           reason="imported by another process at the same time")
    return FileOutcome(str(job.path), status, source_name, fmt, len({v for _, v in checked}), n_rows)


def _is_unique_violation(exc: BaseException) -> bool:
    """A unique-key violation, as SQLAlchemy or either driver raises it (bulk loads go through
    the driver's cursor or COPY, so their errors arrive unwrapped)."""
    import sqlite3

    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.IntegrityError):
        return "UNIQUE constraint failed" in str(orig)
    try:
        from psycopg.errors import UniqueViolation
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(orig, UniqueViolation)


_LABEL_TABLE_OF_TASK = {"va": "va_label", "au": "au_label", "expr": "expr_label"}


def _refuse_conflict(store: Store, tables: Sequence[tuple[LabelTable, int]], *, source: str, version: str,
                     key: str, path: Path, digest: str) -> None:
    """After a unique-key violation: return if another process has just imported this very file
    (same key, same bytes); otherwise raise one line naming the file that holds these labels.

    Two files with the same (video, track, source) and overlapping frames (a Training file
    copied into Validation, a CSV and its copy) would give a frame two values of one source:
    the second is refused, whichever process gets there second.
    """
    with store.connect() as conn:
        existing = _existing(conn, source, version, key)
        if existing is not None:
            if existing.sha256 == digest:
                return
            raise LabelFormatError(path, f"another process imported a different version of this file into "
                                         f"source {source!r} at the same time; run the import again "
                                         "(with --replace to swap its labels)")
        for table, video_id in tables:
            frames = table.frames
            if not len(frames):
                continue
            for task in _tasks_of(table):
                other = conn.execute(text(
                    f"SELECT i.path, i.key FROM {_LABEL_TABLE_OF_TASK[task]} l "
                    "JOIN track t ON t.id = l.track_id JOIN label_source s ON s.id = l.source_id "
                    "JOIN label_import i ON i.id = l.import_id "
                    "WHERE t.video_id = :v AND t.name = :t AND s.name = :n AND s.version = :ver "
                    "AND l.frame_idx BETWEEN :lo AND :hi AND i.key <> :k LIMIT 1"),
                    {"v": video_id, "t": table.track, "n": source, "ver": version, "k": key,
                     "lo": int(frames.min()), "hi": int(frames.max())}).first()
                if other is not None:
                    raise LabelFormatError(path, (
                        f"{task.upper()} labels of video {table.video!r} track {table.track!r} in source "
                        f"{source!r} are already imported from {other.path}: one file per video, track "
                        "and source (remove the copy, or import it as another --source)"))
    raise LabelFormatError(path, f"conflicts with labels of source {source!r} that another process "
                                 "imported at the same time; run the import again")


def store_tables(store: Store, tables: Sequence[tuple[LabelTable, int]], *, source: str, version: str,
                 kind: str, key: str, path: Path | str, fmt: str, digest: str, length_policy: str = "refuse",
                 details: dict[str, Any] | None = None, replace: bool = False,
                 on_written: Callable[[Connection, int, int], None] | None = None) -> tuple[str, int]:
    """Write parsed tables (each with its video id) as one import of ``source``, in one transaction.

    Returns (status, label rows): ``unchanged`` when the same key with the same digest is already
    there, ``replaced`` when ``replace`` swapped an older version's rows, else ``imported``.
    ``on_written(conn, source_id, import_id)`` runs last inside that transaction (also when
    unchanged), so a caller's own provenance rows commit or roll back with the labels.
    """
    n_rows = 0
    tasks = sorted({task for t, _ in tables for task in _tasks_of(t)})
    with store.transaction() as conn:
        existing = _existing(conn, source, version, key)
        if existing is not None and existing.sha256 == digest:
            if on_written is not None:
                on_written(conn, _source_id(conn, source, version, kind), existing.id)
            return "unchanged", 0
        if existing is not None and not replace:
            raise LabelFormatError(path, f"changed since it was imported into source {source!r}; "
                                         "pass --replace to swap its labels for the new ones")
        source_id = _source_id(conn, source, version, kind)
        touched: set[int] = set()
        changed = set(tasks)
        if existing is not None:
            changed |= set(filter(None, existing.tasks.split(",")))
            for table in ("va_label", "au_label", "expr_label"):
                touched |= set(conn.execute(text(f"SELECT DISTINCT track_id FROM {table} WHERE import_id = :i"),
                                            {"i": existing.id}).scalars())
                conn.execute(text(f"DELETE FROM {table} WHERE import_id = :i"), {"i": existing.id})
            conn.execute(text("DELETE FROM label_import WHERE id = :i"), {"i": existing.id})
        import_id = conn.execute(insert(LabelImport).values(
            source_id=source_id, key=key, path=_where(path), sha256=digest, format=fmt,
            tasks=",".join(tasks), length_policy=length_policy, n_lines=sum(t.n_lines for t, _ in tables),
            n_rows=0, details=details or {}, imported_at=utcnow()).returning(LabelImport.id)).scalar_one()
        for table, video_id in tables:
            track_id = ensure_track(conn, video_id, table.track, consensus_rows=False)  # see labels_changed
            touched.add(track_id)
            n_rows += _insert_table(conn, table, track_id, source_id, import_id)
        conn.execute(text("UPDATE label_import SET n_rows = :n WHERE id = :i"), {"n": n_rows, "i": import_id})
        materialized.labels_changed(conn, source_ids=[source_id], track_ids=touched, tasks=changed)
        if on_written is not None:
            on_written(conn, source_id, import_id)
    return ("replaced" if existing is not None else "imported"), n_rows


def _where(path: Path | str) -> str:
    """A file's absolute path; a URI-like origin (``annotate://...``) is kept as it is."""
    return path if isinstance(path, str) and "://" in path else str(Path(path).resolve())


def import_predictions(store: Store, tables: Sequence[LabelTable], *, source: str, version: str,
                       key: str, path: Path | str, digest: str, details: dict[str, Any] | None = None,
                       videos: dict[str, tuple[int, int]] | None = None) -> tuple[str, int]:
    """A model's predictions (tables naming their frames) as a ``model`` source; replaces the
    previous predictions stored under the same source, version and key."""
    videos = videos if videos is not None else _video_index(store)
    checked = [_fit(t, videos, "predictions", "refuse") for t in tables]
    return store_tables(store, checked, source=source, version=version, kind="model", key=key, path=path,
                        fmt="predictions", digest=digest, details=details, replace=True)


def import_prediction_files(store: Store, paths: Sequence[Path | str], *, source: str | None = None,
                           version: str | None = None, key: str | None = None) -> LabelImportReport:
    """Predictions files (:mod:`affdata.formats.predictions`) as a ``model`` label source.

    ``source`` defaults to the name of the file's folder, ``version`` to the first 12 hex digits
    of the checkpoint's sha256 in the file, ``key`` (what a later file replaces) to
    ``predictions/<file name>``. Each file is one import in one transaction, replacing the
    previous predictions under the same source, version and key; a bad file is reported and
    leaves nothing behind, and the others go on. The consensus tables follow, as for any import.
    """
    from affdata.formats.predictions import read_predictions

    report = LabelImportReport()
    videos = _video_index(store)
    for path in map(Path, paths):
        name = source or path.resolve().parent.name
        try:
            tables, meta = read_predictions(path)
            status, rows = import_predictions(
                store, tables, source=name, version=version or meta["checkpoint_sha256"][:12],
                key=key or f"predictions/{path.name}", path=path, digest=file_sha256(path), videos=videos,
                details={"vocabulary": meta["vocabulary"], "checkpoint_sha256": meta["checkpoint_sha256"]})
        except AffdataError as exc:
            report.outcomes.append(FileOutcome(str(path), "failed", name, "predictions", reason=str(exc)))
            continue
        report.outcomes.append(FileOutcome(str(path), status, name, "predictions", len({t.video for t in tables}), rows))
    return report


def _with_track(table: LabelTable, abaw: AbawFile) -> LabelTable:
    table.video, table.track = abaw.video, abaw.track
    return table


def _tasks_of(table: LabelTable) -> list[str]:
    tasks = []
    if table.valence is not None:
        tasks.append("va")
    if table.au_present is not None or table.au_intensity is not None:
        tasks.append("au")
    if table.expr is not None:
        tasks.append("expr")
    return tasks


def _details(job: _Job, fmt: str, tables: list[LabelTable]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if fmt in _PER_VIDEO_FORMATS:
        with open(job.path, encoding="utf-8-sig", newline="") as f:
            details["header"] = f.readline().rstrip("\r\n")
        details["task"] = _TASK_OF_FORMAT[fmt]
    if job.abaw is not None:
        details["part"] = job.abaw.part
        details["folder"] = job.key.split("/")[0]
        details["part_folder"] = job.key.split("/")[1] if job.key.count("/") >= 2 else None
    if tables:
        details["au_numbers"] = list(tables[0].au_numbers)
        if tables[0].expr_order is not None:
            details["expr_order"] = list(tables[0].expr_order)
    return details


def _fit(table: LabelTable, videos: dict[str, tuple[int, int]], fmt: str, policy: str) -> tuple[LabelTable, int]:
    """Check the table against its video's frames; apply the length policy."""
    if table.video not in videos:
        line = int(table.lines[0]) if len(table) and fmt not in _PER_VIDEO_FORMATS else None
        raise LabelFormatError(table.path, f"unknown video {table.video!r}: ingest it first "
                                           "(affdata ingest videos)", line=line)
    video_id, n_frames = videos[table.video]
    if fmt in _PER_VIDEO_FORMATS:
        if table.n_lines > n_frames and policy != "truncate":
            raise LabelFormatError(table.path, f"{table.n_lines} label lines for {n_frames} video frames "
                                               f"of {table.video!r} (use --length-policy truncate to drop the extra lines)")
        if table.n_lines < n_frames and policy != "pad":
            raise LabelFormatError(table.path, f"{table.n_lines} label lines for {n_frames} video frames "
                                               f"of {table.video!r} (use --length-policy pad to leave the rest unannotated)")
    beyond = table.frames >= n_frames
    if beyond.any():
        if policy != "truncate":
            i = int(np.flatnonzero(beyond)[0])
            raise LabelFormatError(table.path, f"frame {int(table.frames[i])} is beyond the last frame "
                                               f"({n_frames - 1}) of {table.video!r}", line=int(table.lines[i]))
        table = table.take(np.flatnonzero(~beyond))
    return table, video_id


def _insert_table(conn: Connection, t: LabelTable, track_id: int, source_id: int, import_id: int) -> int:
    rows = 0
    frames = t.frames
    if t.valence is not None and t.arousal is not None:
        keep = np.flatnonzero(~np.isnan(t.valence) & ~np.isnan(t.arousal))
        if keep.size:
            insert_rows(conn, "va_label", ("track_id", "frame_idx", "source_id", "import_id", "valence", "arousal"),
                        _va_rows(track_id, source_id, import_id, frames[keep], t.valence[keep], t.arousal[keep]))
            rows += int(keep.size)
    if t.expr is not None:
        keep = np.flatnonzero(t.expr >= 0)
        if keep.size:
            insert_rows(conn, "expr_label", ("track_id", "frame_idx", "source_id", "import_id", "expr_id"),
                        zip(_repeat(track_id, keep.size), frames[keep].tolist(), _repeat(source_id, keep.size),
                            _repeat(import_id, keep.size), t.expr[keep].tolist()))
            rows += int(keep.size)
    if t.au_present is not None or t.au_intensity is not None:
        shape = (len(t), len(t.au_numbers))
        present = t.au_present if t.au_present is not None else np.full(shape, -1, np.int8)
        intensity = t.au_intensity if t.au_intensity is not None else np.full(shape, np.nan)
        has = (present >= 0) | ~np.isnan(intensity)
        r, c = np.nonzero(has)
        if r.size:
            aus = np.asarray(t.au_numbers, dtype=np.int64)[c]
            pres = present[r, c]
            inten = intensity[r, c]
            insert_rows(conn, "au_label",
                        ("track_id", "frame_idx", "source_id", "au_id", "import_id", "present", "intensity"),
                        zip(_repeat(track_id, r.size), frames[r].tolist(), _repeat(source_id, r.size),
                            aus.tolist(), _repeat(import_id, r.size),
                            [None if p < 0 else p for p in pres.tolist()],
                            [None if x != x else x for x in inten.tolist()]))
            rows += int(r.size)
    if t.boxes is not None:
        _insert_boxes(conn, t, track_id, source_id)
    return rows


def _insert_boxes(conn: Connection, t: LabelTable, track_id: int, source_id: int) -> None:
    """The face rectangles a model's file carries, as ``file`` boxes of its source.

    They replace detector boxes and this source's earlier boxes on the track; boxes from
    another file or a person stay, and those frames keep them.
    """
    conn.execute(text("DELETE FROM face_box WHERE track_id = :t AND (origin = 'detector' OR source_id = :s)"),
                 {"t": track_id, "s": source_id})
    taken = {r[0] for r in conn.execute(text("SELECT frame_idx FROM face_box WHERE track_id = :t"), {"t": track_id})}
    keep = np.flatnonzero(~np.isnan(t.boxes).any(axis=1))
    rows = [(track_id, f, *b, "file", source_id) for f, b in zip(t.frames[keep].tolist(), t.boxes[keep].tolist())
            if f not in taken]
    insert_rows(conn, "face_box", ("track_id", "frame_idx", "x", "y", "w", "h", "origin", "source_id"), rows)


def _repeat(value: int, n: int) -> Iterator[int]:
    from itertools import repeat

    return repeat(value, n)


def _va_rows(track_id: int, source_id: int, import_id: int, frames: np.ndarray,
             valence: np.ndarray, arousal: np.ndarray) -> Iterable[tuple]:
    n = frames.size
    return zip(_repeat(track_id, n), frames.tolist(), _repeat(source_id, n), _repeat(import_id, n),
               valence.tolist(), arousal.tolist())
