"""Handing items to annotators, and the access rule every user-facing read and write goes through.

:func:`assignment_for` is the rule: an assignment is visible to its annotator and to admins,
and to nobody else; anything else is reported as "no such assignment" (a 404), so that ids of
other people's work cannot be probed. Videos are reachable only through an assignment (or by an
admin), and no answer to an annotator carries a file path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text

from affdata.annotate.campaigns import Campaign, get_campaign
from affdata.annotate.users import User
from affdata.db import Store
from affdata.errors import ConfigError, NotFoundError
from affdata.schema import utcnow


@dataclass(frozen=True)
class Assignment:
    id: int
    user_id: int
    user: str
    status: str
    campaign: Campaign
    video_id: int
    video: str
    track_id: int
    track: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["campaign"] = self.campaign.to_dict()
        return out


def assign_round_robin(store: Store, campaign: str | int, users: list[str]) -> int:
    """Give each item ``per_item`` annotators from ``users``, in turn, skipping ones it has.

    Returns the number of new assignments. Running it again after adding users tops items up.
    """
    c = get_campaign(store, campaign)
    if not users:
        raise ConfigError("round robin needs at least one user")
    if c.per_item > len(users):
        raise ConfigError(f"campaign {c.name!r} wants {c.per_item} annotators per item, {len(users)} given")
    added = 0
    with store.transaction() as conn:
        ids = []
        for name in users:
            row = conn.execute(text("SELECT id FROM app_user WHERE name = :n AND disabled = :f"),
                               {"n": name, "f": False}).first()
            if row is None:
                raise NotFoundError(f"no active user {name!r}")
            ids.append(row.id)
        items = conn.execute(text("SELECT id FROM campaign_item WHERE campaign_id = :c ORDER BY id"), {"c": c.id}).all()
        turn = 0
        for (item_id,) in items:
            have = {r[0] for r in conn.execute(text("SELECT user_id FROM assignment WHERE item_id = :i"), {"i": item_id})}
            tries = 0
            while len(have) < c.per_item and tries < len(ids):
                uid = ids[turn % len(ids)]
                turn += 1
                tries += 1
                if uid in have:
                    continue
                _insert(conn, item_id, uid)
                have.add(uid)
                added += 1
    return added


def assign(store: Store, campaign: str | int, user: str, video: str, track: str = "main") -> int:
    """Give one item to one annotator by hand; returns the assignment id (existing or new)."""
    c = get_campaign(store, campaign)
    with store.transaction() as conn:
        item = conn.execute(text(
            "SELECT i.id FROM campaign_item i JOIN video v ON v.id = i.video_id JOIN track t ON t.id = i.track_id "
            "WHERE i.campaign_id = :c AND v.name = :v AND t.name = :t"), {"c": c.id, "v": video, "t": track}).first()
        if item is None:
            raise NotFoundError(f"campaign {c.name!r} has no item {video!r} / {track!r}")
        uid = conn.execute(text("SELECT id FROM app_user WHERE name = :n"), {"n": user}).scalar()
        if uid is None:
            raise NotFoundError(f"no user {user!r}")
        found = conn.execute(text("SELECT id FROM assignment WHERE item_id = :i AND user_id = :u"),
                             {"i": item.id, "u": uid}).scalar()
        return found if found is not None else _insert(conn, item.id, uid)


def _insert(conn: Any, item_id: int, user_id: int) -> int:
    return conn.execute(text("INSERT INTO assignment (item_id, user_id, status, created_at) "
                             "VALUES (:i, :u, 'open', :t) RETURNING id"),
                        {"i": item_id, "u": user_id, "t": utcnow()}).scalar_one()


_SELECT = (
    "SELECT a.id, a.user_id, u.name AS user, a.status, i.campaign_id, i.video_id, v.name AS video, "
    "i.track_id, t.name AS track FROM assignment a JOIN campaign_item i ON i.id = a.item_id "
    "JOIN app_user u ON u.id = a.user_id JOIN video v ON v.id = i.video_id JOIN track t ON t.id = i.track_id "
)


def _build(store: Store, rows: list[Any]) -> list[Assignment]:
    campaigns: dict[int, Campaign] = {}
    out = []
    for r in rows:
        if r.campaign_id not in campaigns:
            campaigns[r.campaign_id] = get_campaign(store, int(r.campaign_id))
        out.append(Assignment(r.id, r.user_id, r.user, r.status, campaigns[r.campaign_id], r.video_id, r.video,
                              r.track_id, r.track))
    return out


def assignments_of(store: Store, user: User) -> list[Assignment]:
    """The user's own assignments (an admin's too: admins annotate like anyone else here)."""
    with store.connect() as conn:
        rows = conn.execute(text(_SELECT + "WHERE a.user_id = :u ORDER BY a.id"), {"u": user.id}).all()
    return _build(store, rows)


def assignment_for(store: Store, user: User, assignment_id: int) -> Assignment:
    """The assignment if ``user`` may see it (their own; any for an admin), else NotFoundError."""
    with store.connect() as conn:
        r = conn.execute(text(_SELECT + "WHERE a.id = :a"), {"a": int(assignment_id)}).first()
    if r is None or (r.user_id != user.id and not user.is_admin):
        raise NotFoundError(f"no assignment {assignment_id}")
    return _build(store, [r])[0]


def own_assignment(store: Store, user: User, assignment_id: int) -> Assignment:
    """The assignment if it is ``user``'s own: the rule for writing drafts and submitting."""
    a = assignment_for(store, user, assignment_id)
    if a.user_id != user.id:
        raise NotFoundError(f"no assignment {assignment_id}")
    return a


def may_view_video(store: Store, user: User, video_id: int) -> bool:
    """Admins see every video; an annotator only those of their assignments."""
    if user.is_admin:
        with store.connect() as conn:
            return conn.execute(text("SELECT 1 FROM video WHERE id = :v"), {"v": int(video_id)}).first() is not None
    with store.connect() as conn:
        return conn.execute(text("SELECT 1 FROM assignment a JOIN campaign_item i ON i.id = a.item_id "
                                 "WHERE a.user_id = :u AND i.video_id = :v"),
                            {"u": user.id, "v": int(video_id)}).first() is not None


def item_media(store: Store, a: Assignment) -> dict[str, Any]:
    """What the page needs to play and label an item: frame timestamps, face boxes; no path."""
    with store.connect() as conn:
        v = conn.execute(text("SELECT frame_count, width, height, fps_num, fps_den, duration_s, is_vfr "
                              "FROM video WHERE id = :v"), {"v": a.video_id}).one()
        pts = [float(x) for (x,) in conn.execute(text("SELECT pts_s FROM frame WHERE video_id = :v ORDER BY idx"),
                                                 {"v": a.video_id})]
        boxes = {int(r.frame_idx): [r.x, r.y, r.w, r.h] for r in conn.execute(
            text("SELECT frame_idx, x, y, w, h FROM face_box WHERE track_id = :t ORDER BY frame_idx"),
            {"t": a.track_id})}
    return {"frame_count": v.frame_count, "width": v.width, "height": v.height,
            "fps": v.fps_num / v.fps_den, "duration_s": v.duration_s, "is_vfr": bool(v.is_vfr),
            "pts_s": pts, "boxes": boxes}
