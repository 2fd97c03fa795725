"""Campaigns: a task (VA, AU or expression) over a set of (video, track) items.

The items come from named videos or from a split part (the split's newest version). Each video
contributes its tracks (``main``, or ``left`` and ``right`` in two-person videos; ``tracks``
narrows them); a video with no track yet gets ``main``. ``per_item`` is how many annotators
label each item; :mod:`affdata.annotate.assignments` hands items out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, text

from affdata import vocab
from affdata.db import Store
from affdata.errors import ConfigError, NotFoundError
from affdata.schema import CAMPAIGN_TASKS, utcnow
from affdata.videos import ensure_track

VA_MODES = ("2d", "1d")


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    task: str
    classes: list[int]
    per_item: int
    mode: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.task == "au":
            out["class_names"] = vocab.au_names(self.classes)
        elif self.task == "expr":
            out["class_names"] = [vocab.expression_name(c) for c in self.classes]
        else:
            out["class_names"] = []
        return out


def parse_classes(task: str, classes: list[str] | None) -> list[int]:
    """AU names or an AU set name (task au); expression names or a class order name (expr)."""
    if task == "va":
        if classes:
            raise ConfigError("a VA campaign takes no classes")
        return []
    names = list(classes or [])
    if task == "au":
        if len(names) == 1 and names[0] in vocab.AU_SETS:
            return list(vocab.au_set(names[0]))
        if not names:
            return list(vocab.au_set("abaw2020"))
        return [vocab.au_number(n) for n in names]
    if len(names) == 1 and names[0] in vocab.EXPRESSION_ORDERS:
        return list(vocab.expression_order(names[0]))
    if not names:
        return list(vocab.expression_order("abaw2020"))
    return [vocab.expression_id(n) for n in names]


def create_campaign(store: Store, name: str, task: str, *, videos: list[str] | None = None,
                    split: str | None = None, part: str | None = None, tracks: list[str] | None = None,
                    classes: list[str] | None = None, per_item: int = 1, mode: str = "2d",
                    created_by: int | None = None) -> Campaign:
    """Create a campaign and its items in one transaction; see the module docstring."""
    if task not in CAMPAIGN_TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(CAMPAIGN_TASKS)}")
    if mode not in VA_MODES:
        raise ConfigError(f"unknown VA mode {mode!r}; use one of {', '.join(VA_MODES)}")
    if per_item < 1:
        raise ConfigError("per_item must be at least 1")
    if bool(videos) == bool(split):
        raise ConfigError("give either videos or a split (with its part), not both and not neither")
    numbers = parse_classes(task, classes)
    with store.transaction() as conn:
        if conn.execute(text("SELECT 1 FROM campaign WHERE name = :n"), {"n": name}).first():
            raise ConfigError(f"campaign {name!r} exists already")
        video_ids = _video_ids(conn, videos, split, part)
        campaign_id = conn.execute(text(
            "INSERT INTO campaign (name, task, classes, per_item, mode, created_by, created_at) "
            "VALUES (:n, :t, :c, :k, :m, :u, :at) RETURNING id"),
            {"n": name, "t": task, "c": _json(numbers), "k": per_item, "m": mode, "u": created_by,
             "at": utcnow()}).scalar_one()
        n_items = 0
        for vid in video_ids:
            names = [r[0] for r in conn.execute(text("SELECT name FROM track WHERE video_id = :v ORDER BY name"),
                                                {"v": vid})] or ["main"]
            if tracks:
                names = [t for t in names if t in tracks] or ([] if set(tracks) - {"main"} else ["main"])
            for t in names:
                track_id = ensure_track(conn, vid, t)
                conn.execute(text("INSERT INTO campaign_item (campaign_id, video_id, track_id) VALUES (:c, :v, :t)"),
                             {"c": campaign_id, "v": vid, "t": track_id})
                n_items += 1
        if not n_items:
            raise ConfigError(f"campaign {name!r} would have no items (no such tracks?)")
    return Campaign(campaign_id, name, task, numbers, per_item, mode)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _video_ids(conn: Connection, videos: list[str] | None, split: str | None, part: str | None) -> list[int]:
    if videos:
        found = dict(conn.execute(text("SELECT name, id FROM video")).all())
        missing = [v for v in videos if v not in found]
        if missing:
            raise NotFoundError(f"no video {missing[0]!r} in the store (ingest it first)")
        return [found[v] for v in videos]
    row = conn.execute(text("SELECT id FROM split WHERE name = :n ORDER BY version DESC LIMIT 1"), {"n": split}).first()
    if row is None:
        raise NotFoundError(f"no split {split!r}")
    if not part:
        raise ConfigError("a split needs a part (train, val, test...)")
    ids = [r[0] for r in conn.execute(text("SELECT video_id FROM split_assignment WHERE split_id = :s AND part = :p "
                                           "ORDER BY video_id"), {"s": row.id, "p": part})]
    if not ids:
        raise ConfigError(f"split {split!r} has no video in part {part!r}")
    return ids


def _row(r: Any) -> Campaign:
    classes = r.classes
    if isinstance(classes, str):
        import json

        classes = json.loads(classes)
    return Campaign(r.id, r.name, r.task, list(classes or []), r.per_item, r.mode)


_COLS = "id, name, task, classes, per_item, mode"


def get_campaign(store: Store, name_or_id: str | int) -> Campaign:
    with store.connect() as conn:
        if isinstance(name_or_id, int):
            r = conn.execute(text(f"SELECT {_COLS} FROM campaign WHERE id = :i"), {"i": name_or_id}).first()
        else:
            r = conn.execute(text(f"SELECT {_COLS} FROM campaign WHERE name = :n"), {"n": name_or_id}).first()
    if r is None:
        raise NotFoundError(f"no campaign {name_or_id!r}")
    return _row(r)


def list_campaigns(store: Store) -> list[Campaign]:
    with store.connect() as conn:
        return [_row(r) for r in conn.execute(text(f"SELECT {_COLS} FROM campaign ORDER BY id"))]


def progress(store: Store, campaign: str | int) -> dict[str, Any]:
    """Per annotator and per item: assignments open, in draft, submitted."""
    c = get_campaign(store, campaign)
    with store.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.id AS assignment, u.name AS user, v.id AS video_id, v.name AS video, t.name AS track, "
            "a.status, i.id AS item FROM campaign_item i JOIN video v ON v.id = i.video_id "
            "JOIN track t ON t.id = i.track_id LEFT JOIN assignment a ON a.item_id = i.id "
            "LEFT JOIN app_user u ON u.id = a.user_id WHERE i.campaign_id = :c ORDER BY v.name, t.name, u.name"),
            {"c": c.id}).all()
    users: dict[str, dict[str, int]] = {}
    items: dict[int, dict[str, Any]] = {}
    for r in rows:
        item = items.setdefault(r.item, {"item": r.item, "video_id": r.video_id, "video": r.video,
                                         "track": r.track, "assigned": 0, "submitted": 0})
        if r.assignment is None:
            continue
        item["assigned"] += 1
        item["submitted"] += r.status == "submitted"
        counts = users.setdefault(r.user, {"open": 0, "draft": 0, "submitted": 0})
        counts[r.status] += 1
    return {"campaign": c.to_dict(), "users": users, "items": list(items.values())}
