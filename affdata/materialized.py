"""The consensus, materialised: the tables the consensus views read, kept current by every write.

``consensus_frame`` has one row per (track, frame) of every track (the frame's time, the
consensus valence, arousal and expression, and the ``has_*`` flags); ``consensus_au`` one row
per (track, frame, AU) with a consensus AU label. The views ``frame_labels`` and
``frame_au_labels`` join them with the names of videos, tracks, expressions and AUs, so a
whole-release question reads one table in key order instead of working out the consensus of
every frame again (the rules are in :mod:`affdata.views`).

They are never stale: every write that changes labels calls :func:`labels_changed` inside its
own transaction (label import and ``--replace``, ``labels consensus``, model predictions; any
future writer of label rows must do the same), and :func:`add_track` runs when a track is
created, so a query after the commit sees the write and a rolled-back write leaves both the
labels and the consensus as they were. Model sources never enter the consensus, so their
imports cost nothing here.

If several ``consensus`` sources label the same frame, the one with the lowest id (the oldest)
is taken. The SQL is plain enough for both SQLite (3.33 or newer, for ``UPDATE ... FROM``) and
PostgreSQL; the source ids written into it are integers read from the store, never user text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import Connection, text

from affdata.schema import HUMAN_SOURCE_KINDS

TASKS = ("va", "au", "expr")

#: SQLite's ANALYZE reads this many rows per index: cheap (about 0.2 s at 1M frames) and
#: enough for the planner to know that a release has few videos and many frames
_SQLITE_ANALYSIS_LIMIT = 1000


def add_track(conn: Connection, track_id: int, video_id: int) -> None:
    """Give a new track one unlabelled row per frame of its video (frames precede tracks)."""
    conn.execute(text(
        "INSERT INTO consensus_frame (track_id, frame_idx, pts_s, present, has_va, has_expr, has_au) "
        "SELECT :t, idx, pts_s, present, 0, 0, 0 FROM frame WHERE video_id = :v"), {"t": track_id, "v": video_id})


def labels_changed(conn: Connection, *, source_ids: Iterable[int], track_ids: Iterable[int] | None = None,
                   tasks: Iterable[str] = TASKS) -> None:
    """Bring the consensus tables up to date after label rows of ``source_ids`` were written or
    deleted for ``track_ids`` (None: any track) and ``tasks``, in the caller's transaction.

    A track in ``track_ids`` without rows yet (created with ``ensure_track(...,
    consensus_rows=False)`` by the same write) gets them here, already labelled where it can.
    Model sources never enter the consensus: their writes only add such rows.
    """
    sources = _sources(conn)
    tracks = None if track_ids is None else sorted(set(track_ids))
    new = _tracks_without_rows(conn, tracks) if tracks else []
    counts = set(source_ids) & set(sources[0] + sources[1])
    if new:
        human, consensus = sources
        if counts and len(human) == 1 and not consensus:
            todo = set(tasks)
            _add_labelled_tracks(conn, new, human[0], todo)  # one write per frame, not a blank row and updates
            if "au" in todo:
                conn.execute(text(
                    "INSERT INTO consensus_au (track_id, frame_idx, au_id, present, intensity) "
                    "SELECT track_id, frame_idx, au_id, present, intensity FROM au_label "
                    f"WHERE source_id = {int(human[0])}{_scope('track_id', new)}"))
            tracks = [t for t in tracks if t not in set(new)]
        else:
            for track_id, video_id in conn.execute(text(f"SELECT id, video_id FROM track WHERE id IN ({_ints(new)})")):
                add_track(conn, track_id, video_id)
    if counts and tracks != []:
        refresh(conn, tracks, tasks, sources)


def refresh(conn: Connection, track_ids: Iterable[int] | None = None, tasks: Iterable[str] = TASKS,
            sources: tuple[list[int], list[int]] | None = None) -> None:
    """Recompute the consensus of ``tasks`` for ``track_ids`` (None: every track) from the label
    tables; the rules are those of :mod:`affdata.views`."""
    tracks = None if track_ids is None else sorted(set(track_ids))
    if tracks is not None and not tracks:
        return
    sources = sources or _sources(conn)
    todo = set(tasks)
    if "va" in todo:
        _refresh_va(conn, tracks, sources)
    if "expr" in todo:
        _refresh_expr(conn, tracks, sources)
    if "au" in todo:
        _refresh_au(conn, tracks, sources)


def _tracks_without_rows(conn: Connection, tracks: list[int]) -> list[int]:
    return [t for (t,) in conn.execute(text(
        f"SELECT t.id FROM track t WHERE t.id IN ({_ints(tracks)}) AND NOT EXISTS "
        "(SELECT 1 FROM consensus_frame c WHERE c.track_id = t.id)"))]


def _add_labelled_tracks(conn: Connection, tracks: list[int], human: int, tasks: set[str]) -> None:
    """Rows for new tracks, labelled by the one human source of the store (no consensus source).

    A new track's labels are all of the write that created it, so only the write's ``tasks``
    are looked up: a release's file holds one task, and each look-up costs every frame an
    index probe.

    Each frame's labels are looked up by primary key. On PostgreSQL the look-ups are ``LATERAL``
    with ``LIMIT 1`` (at most one row anyway; it keeps the planner from turning them back into
    joins) so that they stay look-ups: during an import the label tables have no statistics yet, and
    with plain joins the planner took a track's labels for one row and compared every frame
    with every label of the track (170 ms a track at 100k frames instead of 1 ms, growing with
    the square of its length: most of what keeping the consensus cost PostgreSQL's import).
    """
    h = int(human)
    lateral = conn.dialect.name == "postgresql"
    joins = ""
    for task, alias, table, columns in (("va", "va", "va_label", "valence, arousal"), ("expr", "ex", "expr_label", "expr_id")):
        if task not in tasks:
            continue
        if lateral:
            joins += (f"LEFT JOIN LATERAL (SELECT {columns} FROM {table} WHERE track_id = t.id "
                      f"AND frame_idx = f.idx AND source_id = {h} LIMIT 1) {alias} ON TRUE ")
        else:
            joins += (f"LEFT JOIN {table} {alias} ON {alias}.track_id = t.id AND {alias}.frame_idx = f.idx "
                      f"AND {alias}.source_id = {h} ")
    va = ("va.valence, va.arousal, CASE WHEN va.valence IS NULL THEN 0 ELSE 1 END" if "va" in tasks
          else "NULL, NULL, 0")
    expr = "ex.expr_id, CASE WHEN ex.expr_id IS NULL THEN 0 ELSE 1 END" if "expr" in tasks else "NULL, 0"
    au = ("CASE WHEN EXISTS (SELECT 1 FROM au_label a WHERE a.track_id = t.id AND a.frame_idx = f.idx "
          f"AND a.source_id = {h} AND a.present IS NOT NULL) THEN 1 ELSE 0 END" if "au" in tasks else "0")
    conn.execute(text(
        "INSERT INTO consensus_frame (track_id, frame_idx, pts_s, present, valence, arousal, has_va, "
        "expr_id, has_expr, has_au) "
        f"SELECT t.id, f.idx, f.pts_s, f.present, {va}, {expr}, {au} "
        f"FROM track t JOIN frame f ON f.video_id = t.video_id {joins}"
        f"WHERE t.id IN ({_ints(tracks)})"))


def rebuild(conn: Connection) -> None:
    """Fill ``consensus_frame`` for every track and compute every consensus (migrations)."""
    conn.execute(text("DELETE FROM consensus_au"))
    conn.execute(text("DELETE FROM consensus_frame"))
    conn.execute(text(
        "INSERT INTO consensus_frame (track_id, frame_idx, pts_s, present, has_va, has_expr, has_au) "
        "SELECT t.id, f.idx, f.pts_s, f.present, 0, 0, 0 FROM track t JOIN frame f ON f.video_id = t.video_id"))
    refresh(conn)


#: what PostgreSQL analyses after a label write: the label and consensus tables, and the small
#: tables that questions filter by name (``expression = 'Happiness'``, ``au = 'AU12'``). Those
#: get too few writes for autovacuum ever to analyse them, and without statistics the planner
#: guesses a name matches a hundredth of the label rows instead of a tenth, and then joins
#: videos and tracks with nested loops over what it thinks are a few rows (1.9 s instead of 0.7).
#: Not ``label_source``: with its three rows known, the planner reads every VA label to compare
#: two annotators, where it now reads the later one's and looks each up among the earlier's
_POSTGRESQL_ANALYSED = ("consensus_frame", "consensus_au", "va_label", "au_label", "expr_label", "track", "video",
                        "subject", "action_unit", "expression", "split", "split_assignment")


def update_statistics(conn: Connection) -> None:
    """Refresh the planner's statistics after a bulk label write, so that whole-release queries
    walk videos, tracks and then frames in key order (SQLite plans badly without them) and
    PostgreSQL estimates a filter on an expression's or AU's name right."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA analysis_limit = {_SQLITE_ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE")
    else:
        conn.exec_driver_sql(f"ANALYZE {', '.join(_POSTGRESQL_ANALYSED)}")


# --- the rules, as set-based statements ---------------------------------------------------------


def _sources(conn: Connection) -> tuple[list[int], list[int]]:
    """(human source ids, consensus source ids in ascending order)."""
    human, consensus = [], []
    for sid, kind in conn.execute(text("SELECT id, kind FROM label_source ORDER BY id")):
        if kind in HUMAN_SOURCE_KINDS:
            human.append(sid)
        elif kind == "consensus":
            consensus.append(sid)
    return human, consensus


def _ints(values: Collection[int]) -> str:
    return ", ".join(str(int(v)) for v in values)


def _scope(column: str, tracks: list[int] | None) -> str:
    return "" if tracks is None else f" AND {column} IN ({_ints(tracks)})"


def _set_from(conn: Connection, assignments: str, source: str, tracks: list[int] | None,
              where: str = "") -> None:
    """UPDATE consensus_frame from the rows (track_id, frame_idx, ...) of ``source``: a table
    (``va_label AS x``, joined on its key: twice as fast on SQLite) or a ``(SELECT ...) AS x``."""
    conn.execute(text(
        f"UPDATE consensus_frame SET {assignments} FROM {source} "
        f"WHERE consensus_frame.track_id = x.track_id AND consensus_frame.frame_idx = x.frame_idx"
        f"{where}{_scope('consensus_frame.track_id', tracks)}{_scope('x.track_id', tracks)}"))


def _refresh_va(conn: Connection, tracks: list[int] | None, sources: tuple[list[int], list[int]]) -> None:
    human, consensus = sources
    conn.execute(text("UPDATE consensus_frame SET valence = NULL, arousal = NULL, has_va = 0 "
                      f"WHERE has_va = 1{_scope('track_id', tracks)}"))
    values = "valence = x.valence, arousal = x.arousal, has_va = 1"
    if len(human) == 1:  # one human source (a release): its labels are their own mean
        _set_from(conn, values, "va_label AS x", tracks, f" AND x.source_id = {int(human[0])}")
    elif human:
        _set_from(conn, values,
                  f"(SELECT track_id, frame_idx, AVG(valence) AS valence, AVG(arousal) AS arousal FROM va_label "
                  f"WHERE source_id IN ({_ints(human)}){_scope('track_id', tracks)} "
                  f"GROUP BY track_id, frame_idx) AS x", tracks)
    for cid in reversed(consensus):  # the lowest id is written last and wins
        _set_from(conn, values, "va_label AS x", tracks, f" AND x.source_id = {int(cid)}")


def _refresh_expr(conn: Connection, tracks: list[int] | None, sources: tuple[list[int], list[int]]) -> None:
    human, consensus = sources
    conn.execute(text("UPDATE consensus_frame SET expr_id = NULL, has_expr = 0 "
                      f"WHERE has_expr = 1{_scope('track_id', tracks)}"))
    values = "expr_id = x.expr_id, has_expr = 1"
    if len(human) == 1:
        _set_from(conn, values, "expr_label AS x", tracks, f" AND x.source_id = {int(human[0])}")
    elif human:  # the human sources' expression where they all agree
        _set_from(conn, values,
                  f"(SELECT track_id, frame_idx, MIN(expr_id) AS expr_id FROM expr_label "
                  f"WHERE source_id IN ({_ints(human)}){_scope('track_id', tracks)} "
                  f"GROUP BY track_id, frame_idx HAVING MIN(expr_id) = MAX(expr_id)) AS x", tracks)
    for cid in reversed(consensus):
        _set_from(conn, values, "expr_label AS x", tracks, f" AND x.source_id = {int(cid)}")


def _refresh_au(conn: Connection, tracks: list[int] | None, sources: tuple[list[int], list[int]]) -> None:
    human, consensus = sources
    conn.execute(text(f"DELETE FROM consensus_au WHERE 1 = 1{_scope('track_id', tracks)}"))
    insert = "INSERT INTO consensus_au (track_id, frame_idx, au_id, present, intensity) "
    # only rows of a consensus source can be there before the human ones (PostgreSQL's
    # speculative insertion would cost the common case a third more)
    conflict = " ON CONFLICT (track_id, frame_idx, au_id) DO NOTHING" if consensus else ""
    for cid in consensus:  # the lowest id first: later ones do not overwrite it
        conn.execute(text(
            f"{insert}SELECT track_id, frame_idx, au_id, present, intensity FROM au_label "
            f"WHERE source_id = {int(cid)}{_scope('track_id', tracks)}{conflict}"))
    if len(human) == 1:  # one vote: the majority is the vote
        conn.execute(text(
            f"{insert}SELECT track_id, frame_idx, au_id, present, intensity FROM au_label "
            f"WHERE source_id = {int(human[0])}{_scope('track_id', tracks)}{conflict}"))
    elif human:  # per AU the majority of presence votes (a tie stays unlabelled) and the mean intensity
        conn.execute(text(
            f"{insert}SELECT track_id, frame_idx, au_id, "
            f"CASE WHEN AVG(present) > 0.5 THEN 1 WHEN AVG(present) < 0.5 THEN 0 END, AVG(intensity) "
            f"FROM au_label WHERE source_id IN ({_ints(human)}){_scope('track_id', tracks)} "
            f"GROUP BY track_id, frame_idx, au_id HAVING AVG(present) IS NULL OR AVG(present) <> 0.5{conflict}"))
    conn.execute(text(f"UPDATE consensus_frame SET has_au = 0 WHERE has_au = 1{_scope('track_id', tracks)}"))
    voters = human + consensus
    if voters:  # has_au: any human or consensus source gave a presence label for the frame
        # a look-up per frame by the label's key, not a join with the distinct labelled frames:
        # on SQLite the join made a temporary table of them first (0.8 s of a 1M-frame
        # release's import against 0.35 s)
        conn.execute(text(
            f"UPDATE consensus_frame SET has_au = 1 WHERE EXISTS (SELECT 1 FROM au_label a "
            f"WHERE a.track_id = consensus_frame.track_id AND a.frame_idx = consensus_frame.frame_idx "
            f"AND a.source_id IN ({_ints(voters)}) AND a.present IS NOT NULL){_scope('track_id', tracks)}"))
