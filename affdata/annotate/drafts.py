"""Autosaved drafts: the page sends its whole state every couple of seconds with a sequence number.

A save is idempotent and ordered: the stored draft changes only when the new ``seq`` is larger
than the stored one (a retried or late request never overwrites newer work), done in one
conditional UPDATE (or INSERT for the first save), so two tabs racing cannot interleave.
Drafts are checked for shape and size here, and fully validated only on submission.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from affdata.annotate.assignments import Assignment
from affdata.db import Store
from affdata.errors import AnnotationError
from affdata.schema import utcnow

#: a draft larger than this is refused (a 10-minute 60 fps VA trace is about 0.5 MB)
MAX_DRAFT_BYTES = 8 * 1024 * 1024


def save_draft(store: Store, a: Assignment, seq: int, data: dict[str, Any]) -> dict[str, Any]:
    """Store ``data`` as the draft of ``a`` if ``seq`` is newer; returns {seq, saved}."""
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise AnnotationError("seq must be a non-negative integer")
    if not isinstance(data, dict):
        raise AnnotationError("a draft is a JSON object")
    body = json.dumps(data, separators=(",", ":"))
    if len(body) > MAX_DRAFT_BYTES:
        raise AnnotationError(f"draft of {len(body)} bytes is over the limit of {MAX_DRAFT_BYTES}")
    now = utcnow()
    with store.transaction() as conn:
        cur = conn.execute(text("SELECT seq FROM draft WHERE assignment_id = :a"), {"a": a.id}).scalar()
        if cur is None:
            conn.execute(text("INSERT INTO draft (assignment_id, seq, data, updated_at) VALUES (:a, :s, :d, :t) "
                              "ON CONFLICT (assignment_id) DO NOTHING"),
                         {"a": a.id, "s": seq, "d": body, "t": now})
        saved = conn.execute(text("UPDATE draft SET seq = :s, data = :d, updated_at = :t "
                                  "WHERE assignment_id = :a AND seq < :s"),
                             {"a": a.id, "s": seq, "d": body, "t": now}).rowcount > 0
        saved = saved or (cur is None and conn.execute(
            text("SELECT seq FROM draft WHERE assignment_id = :a"), {"a": a.id}).scalar() == seq)
        conn.execute(text("UPDATE assignment SET status = 'draft' WHERE id = :a AND status = 'open'"), {"a": a.id})
        stored = conn.execute(text("SELECT seq FROM draft WHERE assignment_id = :a"), {"a": a.id}).scalar()
    return {"seq": int(stored), "saved": bool(saved)}


def load_draft(store: Store, a: Assignment) -> dict[str, Any] | None:
    """{seq, data, updated_at} of the assignment's draft, or None."""
    with store.connect() as conn:
        r = conn.execute(text("SELECT seq, data, updated_at FROM draft WHERE assignment_id = :a"), {"a": a.id}).first()
    if r is None:
        return None
    data = json.loads(r.data) if isinstance(r.data, str) else r.data
    return {"seq": int(r.seq), "data": data, "updated_at": r.updated_at}
