"""The consensus views that export and users' SQL read.

``frame_labels`` has one row per (track, frame) of every track, labelled or not, with the
consensus label of each task and a 0/1 presence flag per task. ``frame_au_labels`` has one row
per (track, frame, AU) that has a consensus AU label. The consensus of a task, for a frame:

1. the label of the ``consensus`` source (written by ``affdata labels consensus``), if any;
2. otherwise the human sources' labels (kinds ``annotator`` and ``dataset``): the mean valence
   and arousal; the expression where all of them agree (a disagreement stays unlabelled until a
   consensus is run); per AU the majority of presence votes (a tie stays unlabelled) and the
   mean intensity.

Model sources never enter the consensus. Version 1 (migration 0001) wrote the rules as
correlated look-ups on the label tables' primary keys: right for one track, five times slower
than a plain table for whole-release aggregates. Version 2 (migration 0002) reads the
consensus from the tables ``consensus_frame`` and ``consensus_au``, which
:mod:`affdata.materialized` keeps current inside every label write, and only adds the names.

The SQL is versioned: a migration creates the version it names, so an old migration keeps
creating the view it created when it was written.
"""

from __future__ import annotations

_HUMAN = "(SELECT id FROM label_source WHERE kind IN ('annotator', 'dataset'))"
_CONSENSUS = "(SELECT id FROM label_source WHERE kind = 'consensus')"


def _pick(table: str, expr_consensus: str, expr_human: str) -> str:
    """COALESCE(consensus value, aggregate of human values) for the current (track, frame)."""
    key = f"{table}.track_id = t.id AND {table}.frame_idx = f.idx"
    return (
        f"COALESCE((SELECT {expr_consensus} FROM {table} WHERE {key} "
        f"AND {table}.source_id IN {_CONSENSUS}), "
        f"(SELECT {expr_human} FROM {table} WHERE {key} AND {table}.source_id IN {_HUMAN}))"
    )


FRAME_LABELS_V1 = f"""
CREATE VIEW frame_labels AS
SELECT
    x.video_id, x.video, x.track_id, x.track, x.subject_id, x.frame_idx, x.pts_s, x.present,
    x.valence, x.arousal,
    CASE WHEN x.valence IS NULL THEN 0 ELSE 1 END AS has_va,
    x.expr_id,
    e.name AS expression,
    CASE WHEN x.expr_id IS NULL THEN 0 ELSE 1 END AS has_expr,
    x.has_au
FROM (
    SELECT
        v.id AS video_id,
        v.name AS video,
        t.id AS track_id,
        t.name AS track,
        COALESCE(t.subject_id, v.subject_id) AS subject_id,
        f.idx AS frame_idx,
        f.pts_s AS pts_s,
        f.present AS present,
        {_pick("va_label", "va_label.valence", "AVG(va_label.valence)")} AS valence,
        {_pick("va_label", "va_label.arousal", "AVG(va_label.arousal)")} AS arousal,
        {_pick(
            "expr_label",
            "expr_label.expr_id",
            "CASE WHEN MIN(expr_label.expr_id) = MAX(expr_label.expr_id) "
            "THEN MIN(expr_label.expr_id) END",
        )} AS expr_id,
        CASE WHEN EXISTS (
            SELECT 1 FROM au_label a WHERE a.track_id = t.id AND a.frame_idx = f.idx
            AND a.present IS NOT NULL
            AND (a.source_id IN {_CONSENSUS} OR a.source_id IN {_HUMAN})
        ) THEN 1 ELSE 0 END AS has_au
    FROM track t
    JOIN video v ON v.id = t.video_id
    JOIN frame f ON f.video_id = t.video_id
) x
LEFT JOIN expression e ON e.id = x.expr_id
"""

FRAME_AU_LABELS_V1 = f"""
CREATE VIEW frame_au_labels AS
SELECT c.track_id, c.frame_idx, c.au_id, au.name AS au, c.present, c.intensity
FROM au_label c
JOIN action_unit au ON au.id = c.au_id
WHERE c.source_id IN {_CONSENSUS}
UNION ALL
SELECT h.track_id, h.frame_idx, h.au_id, au.name AS au,
    CASE WHEN AVG(h.present) > 0.5 THEN 1 WHEN AVG(h.present) < 0.5 THEN 0 END AS present,
    AVG(h.intensity) AS intensity
FROM au_label h
JOIN action_unit au ON au.id = h.au_id
WHERE h.source_id IN {_HUMAN}
AND NOT EXISTS (
    SELECT 1 FROM au_label c WHERE c.track_id = h.track_id AND c.frame_idx = h.frame_idx
    AND c.au_id = h.au_id AND c.source_id IN {_CONSENSUS}
)
GROUP BY h.track_id, h.frame_idx, h.au_id, au.name
HAVING AVG(h.present) IS NULL OR AVG(h.present) <> 0.5
"""

VIEWS_V1 = (("frame_au_labels", FRAME_AU_LABELS_V1), ("frame_labels", FRAME_LABELS_V1))


# Version 2: the same columns, read from the materialised consensus. Inner joins from video to
# track to consensus_frame, so that a planner with statistics walks videos (by name), their
# tracks and then each track's frames in key order: no sort for GROUP BY video, no per-frame
# look-up but the expression name.
FRAME_LABELS_V2 = """
CREATE VIEW frame_labels AS
SELECT
    v.id AS video_id, v.name AS video, t.id AS track_id, t.name AS track,
    COALESCE(t.subject_id, v.subject_id) AS subject_id,
    c.frame_idx, c.pts_s, c.present, c.valence, c.arousal, c.has_va,
    c.expr_id, e.name AS expression, c.has_expr, c.has_au
FROM video v
JOIN track t ON t.video_id = v.id
JOIN consensus_frame c ON c.track_id = t.id
LEFT JOIN expression e ON e.id = c.expr_id
"""

FRAME_AU_LABELS_V2 = """
CREATE VIEW frame_au_labels AS
SELECT c.track_id, c.frame_idx, c.au_id, au.name AS au, c.present, c.intensity
FROM consensus_au c
JOIN action_unit au ON au.id = c.au_id
"""

VIEWS_V2 = (("frame_au_labels", FRAME_AU_LABELS_V2), ("frame_labels", FRAME_LABELS_V2))
