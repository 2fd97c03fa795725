"""Splits: named, versioned assignments of videos to parts (train / val / test).

Saving a split under a name that exists makes a new version only when the assignment differs
from the newest version; the same assignment again is a no-op. The content hash is a sha256
over the sorted (video content hash, part) pairs, so it names the assignment, not the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, text

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.schema import Split, SplitAssignment, utcnow
from affdata.vocab import EXPRESSIONS

UNITS = ("subject", "video")


@dataclass(frozen=True)
class SavedSplit:
    """What saving a split did: the version that holds the assignment, and whether it is new."""

    name: str
    version: int
    created: bool
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartSummary:
    """One part of a split: its videos, subjects, frames, labelled frames per task, classes."""

    part: str
    videos: int
    subjects: int
    frames: int
    va: int
    au: int
    expr: int
    classes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitSummary:
    """A split version and the counts per part (``show_split``)."""

    name: str
    version: int
    unit: str
    params: dict[str, Any]
    content_hash: str
    parts: list[PartSummary]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assignment_hash(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for video_hash, part in sorted(pairs):
        digest.update(f"{video_hash}\t{part}\n".encode())
    return digest.hexdigest()


def save_split(store: Store, name: str, unit: str, assignment: dict[int, str],
               params: dict[str, Any] | None = None) -> SavedSplit:
    """Store ``assignment`` (video id -> part) as split ``name``."""
    if unit not in UNITS:
        raise ConfigError(f"unknown split unit {unit!r}; use one of {', '.join(UNITS)}")
    if not assignment:
        raise ConfigError(f"split {name!r} would assign no video")
    with store.transaction() as conn:
        hashes = dict(conn.execute(text("SELECT id, content_hash FROM video")).all())
        digest = assignment_hash([(hashes[v], part) for v, part in assignment.items()])
        latest = conn.execute(text(
            "SELECT id, version, content_hash FROM split WHERE name = :n ORDER BY version DESC LIMIT 1"),
            {"n": name}).first()
        if latest is not None and latest.content_hash == digest:
            return SavedSplit(name, latest.version, False, digest)
        version = 1 if latest is None else latest.version + 1
        split_id = conn.execute(insert(Split).values(
            name=name, version=version, unit=unit, params=params or {}, content_hash=digest,
            created_at=utcnow()).returning(Split.id)).scalar_one()
        conn.execute(insert(SplitAssignment), [
            {"split_id": split_id, "video_id": v, "part": part} for v, part in sorted(assignment.items())])
    return SavedSplit(name, version, True, digest)


DEFAULT_PARTS = {1: ("train",), 2: ("train", "val"), 3: ("train", "val", "test")}


def _groups(conn: Any, unit: str) -> dict[str, list[int]]:
    """Units that must stay in one part: subjects (joined when they share a video) or videos.

    Two people who appear in one video (Aff-Wild2's left/right pairs) are one unit for a subject
    split, since the video cannot be in two parts. A video with no known subject is its own unit.
    """
    videos = conn.execute(text("SELECT id, name, content_hash, subject_id FROM video ORDER BY name")).all()
    if unit == "video":
        return {v.content_hash: [v.id] for v in videos}
    people: dict[int, set[int]] = {v.id: ({v.subject_id} if v.subject_id else set()) for v in videos}
    for video_id, subject_id in conn.execute(text("SELECT video_id, subject_id FROM track WHERE subject_id IS NOT NULL")):
        people[video_id].add(subject_id)
    names = dict(conn.execute(text("SELECT id, name FROM subject")).all())
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    members: dict[int, list[str]] = {}
    for v in videos:
        members[v.id] = sorted(f"subject:{names[s]}" for s in people[v.id]) or [f"video:{v.content_hash}"]
        for m in members[v.id][1:]:
            parent[find(m)] = find(members[v.id][0])
    by_root: dict[str, list[int]] = {}
    labels: dict[str, str] = {}
    for v in videos:
        root = find(members[v.id][0])
        by_root.setdefault(root, []).append(v.id)
        labels[root] = min([labels.get(root, members[v.id][0]), *members[v.id]])
    # each unit is named by its smallest member, so the grouping does not depend on merge order
    return {labels[root]: ids for root, ids in by_root.items()}


def _class_counts(conn: Any) -> dict[int, Any]:
    """Expression frames per class, per video (consensus labels)."""
    import numpy as np

    counts: dict[int, Any] = {}
    rows = conn.execute(text(
        "SELECT video_id, expr_id, COUNT(*) FROM frame_labels WHERE has_expr = 1 GROUP BY video_id, expr_id"))
    for video_id, expr_id, n in rows:
        counts.setdefault(video_id, np.zeros(len(EXPRESSIONS)))[expr_id] += n
    return counts


def create_split(store: Store, name: str, *, by: str = "subject", ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0, stratify: str | None = None, parts: Sequence[str] | None = None) -> SavedSplit:
    """Assign the store's videos to parts, keeping each subject (or video) in one part.

    Deterministic for (store contents, arguments): units are ordered by name, shuffled with
    ``seed``, and dealt out so that each part gets its ratio of units. With
    ``stratify="expression"`` units are dealt largest first to the part whose expression
    histogram is furthest below its share, so class balance is similar across parts.
    """
    import numpy as np

    if by not in UNITS:
        raise ConfigError(f"a split keeps each {' or each '.join(UNITS)} in one part, not each {by!r}")
    ratios = [float(r) for r in ratios]
    if not ratios or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"ratios must be non-negative and sum to 1, got {ratios}")
    parts = tuple(parts) if parts else DEFAULT_PARTS.get(len(ratios), tuple(f"part{i}" for i in range(len(ratios))))
    if len(parts) != len(ratios) or len(set(parts)) != len(parts):
        raise ConfigError(f"{len(ratios)} ratios need {len(ratios)} distinct part names, got {list(parts)}")
    if stratify not in (None, "expression"):
        raise ConfigError(f"splits stratify by 'expression' only, not {stratify!r}")
    with store.connect() as conn:
        groups = _groups(conn, by)
        counts = _class_counts(conn) if stratify else {}
    if len(groups) < sum(1 for r in ratios if r > 0):
        raise ConfigError(f"{len(groups)} {by}s cannot fill {sum(1 for r in ratios if r > 0)} parts")
    order = sorted(groups)
    rng = np.random.Generator(np.random.PCG64(seed))
    order = [order[i] for i in rng.permutation(len(order))]
    assignment: dict[int, str] = {}
    if stratify:
        width = len(EXPRESSIONS)
        hist = {g: sum((counts.get(v, np.zeros(width)) for v in groups[g]), np.zeros(width)) for g in order}
        total = sum(hist.values(), np.zeros(width))
        share = np.array(ratios)
        filled = np.zeros((len(parts), width))
        units = np.zeros(len(parts))
        for g in sorted(order, key=lambda g: -hist[g].sum()):  # stable: ties keep the shuffled order
            if hist[g].sum() > 0:  # the part furthest below its share of this unit's classes
                score = ((share[:, None] * total[None, :] - filled) * hist[g]).sum(axis=1)
            else:  # no expression labels: the part furthest below its share of units
                score = share * len(order) - units
            score[share == 0] = -np.inf
            k = int(np.argmax(score))
            filled[k] += hist[g]
            units[k] += 1
            for v in groups[g]:
                assignment[v] = parts[k]
    else:
        bounds = np.round(np.cumsum(ratios) * len(order)).astype(int)
        for i, g in enumerate(order):
            k = int(np.searchsorted(bounds, i, side="right"))
            for v in groups[g]:
                assignment[v] = parts[min(k, len(parts) - 1)]
    params = {"by": by, "ratios": ratios, "parts": list(parts), "seed": seed, "stratify": stratify}
    return save_split(store, name, by, assignment, params)


def resolve_split(conn: Any, name: str) -> Any:
    """The split row for ``NAME`` (newest version) or ``NAME@VERSION``: the one place that reads it."""
    from affdata.errors import NotFoundError

    base, _, version = name.partition("@")
    splits = conn.execute(text("SELECT * FROM split")).all()
    mine = [s for s in splits if s.name == base]
    if not mine:
        known = ", ".join(sorted(f"{s.name}@{s.version}" for s in splits)) or "none"
        raise NotFoundError(f"unknown split {base!r}; splits in the store: {known}")
    if not version:
        return max(mine, key=lambda s: s.version)
    if not version.isdigit() or not any(s.version == int(version) for s in mine):
        known = ", ".join(str(s.version) for s in sorted(mine, key=lambda s: s.version))
        raise NotFoundError(f"split {base!r} has no version {version!r}; versions: {known}")
    return next(s for s in mine if s.version == int(version))


def show_split(store: Store, name: str) -> SplitSummary:
    """Counts per part: videos, subjects, frames, labelled frames per task, class balance."""
    with store.connect() as conn:
        split = resolve_split(conn, name)
        parts = conn.execute(text(
            "SELECT a.part, COUNT(DISTINCT v.id) AS videos, COUNT(DISTINCT v.subject_id) AS subjects, "
            "COALESCE(SUM(v.frame_count), 0) AS frames FROM split_assignment a JOIN video v ON v.id = a.video_id "
            "WHERE a.split_id = :s GROUP BY a.part ORDER BY a.part"), {"s": split.id}).all()
        labelled = conn.execute(text(
            "SELECT a.part, SUM(f.has_va), SUM(f.has_au), SUM(f.has_expr) FROM frame_labels f "
            "JOIN split_assignment a ON a.video_id = f.video_id WHERE a.split_id = :s GROUP BY a.part"),
            {"s": split.id}).all()
        classes = conn.execute(text(
            "SELECT a.part, f.expr_id, COUNT(*) FROM frame_labels f JOIN split_assignment a ON a.video_id = f.video_id "
            "WHERE a.split_id = :s AND f.has_expr = 1 GROUP BY a.part, f.expr_id"), {"s": split.id}).all()
    tasks = {p: (int(va or 0), int(au or 0), int(ex or 0)) for p, va, au, ex in labelled}
    balance: dict[str, dict[str, int]] = {}
    for part, expr_id, n in classes:
        balance.setdefault(part, {})[EXPRESSIONS[expr_id]] = int(n)
    return SplitSummary(
        name=split.name, version=split.version, unit=split.unit, params=split.params,
        content_hash=split.content_hash,
        parts=[PartSummary(p.part, int(p.videos), int(p.subjects), int(p.frames), *tasks.get(p.part, (0, 0, 0)),
                           classes=balance.get(p.part, {})) for p in parts])
