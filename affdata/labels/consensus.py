"""Fusing several annotators into one consensus source.

For each (track, frame) labelled by at least one of the chosen sources (default: every human
source, kinds ``annotator`` and ``dataset``): valence and arousal are the mean; the expression
is the majority class; each AU is the majority presence vote, with the mean intensity. A tie
(two annotators saying Happiness and Surprise, or one each way on an AU) has no majority: that
label is left out of the consensus and counted in the report. The consensus is written as a
source of kind ``consensus`` (replacing its previous labels in the same transaction), which the
``frame_labels`` view prefers to the raw annotations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text, update

from affdata import materialized
from affdata.bulk import insert_rows, upsert_ignore
from affdata.db import Store
from affdata.errors import ConfigError, NotFoundError
from affdata.schema import HUMAN_SOURCE_KINDS, LabelSource, utcnow


@dataclass
class ConsensusReport:
    source: str
    sources: list[str]
    #: task -> frames written to the consensus
    frames: dict[str, int] = field(default_factory=dict)
    #: task -> frames labelled by two or more of the sources
    multi_rated: dict[str, int] = field(default_factory=dict)
    #: task -> labels left out for want of a majority (AU: per (frame, AU))
    ties: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_sources(conn: Connection, names: list[str] | None) -> dict[int, str]:
    """Source ids -> names: the named sources, or every human source."""
    if names:
        found: dict[int, str] = {}
        for name in names:
            base, _, version = name.partition("@")
            rows = conn.execute(text("SELECT id, name, version FROM label_source WHERE name = :n"
                                     + (" AND version = :v" if version else "")), {"n": base, "v": version}).all()
            if not rows:
                raise NotFoundError(f"no label source {name!r}; see `affdata stats` for the sources")
            found.update({r.id: f"{r.name}@{r.version}" if r.version else r.name for r in rows})
        return found
    kinds = ", ".join(f"'{k}'" for k in HUMAN_SOURCE_KINDS)
    rows = conn.execute(text(f"SELECT id, name, version FROM label_source WHERE kind IN ({kinds}) ORDER BY id")).all()
    return {r.id: f"{r.name}@{r.version}" if r.version else r.name for r in rows}


def _frame(conn: Connection, sql: str, params: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(text(sql), params).all(), columns=columns)


def build_consensus(store: Store, *, name: str = "consensus", sources: list[str] | None = None) -> ConsensusReport:
    """Write the consensus of ``sources`` as source ``name``; see the module docstring."""
    with store.transaction() as conn:
        chosen = resolve_sources(conn, sources)
        if not chosen:
            raise ConfigError("no human label sources in the store to build a consensus from")
        ids = sorted(chosen)
        marks = ", ".join(str(i) for i in ids)  # integers from the store, not user text
        upsert_ignore(conn, "label_source", {"kind": "consensus", "name": name, "version": "",
                                              "created_at": utcnow()}, ["name", "version"])
        row = conn.execute(text("SELECT id, kind FROM label_source WHERE name = :n AND version = ''"), {"n": name}).one()
        if row.kind != "consensus":
            raise ConfigError(f"label source {name!r} exists and is of kind {row.kind}, not consensus")
        cid = row.id
        if cid in chosen:
            raise ConfigError(f"the consensus {name!r} cannot be built from itself")
        for table in ("va_label", "au_label", "expr_label"):
            conn.execute(text(f"DELETE FROM {table} WHERE source_id = :c"), {"c": cid})
        report = ConsensusReport(name, [chosen[i] for i in ids])

        conn.execute(text(
            f"INSERT INTO va_label (track_id, frame_idx, source_id, import_id, valence, arousal) "
            f"SELECT track_id, frame_idx, :c, NULL, AVG(valence), AVG(arousal) FROM va_label "
            f"WHERE source_id IN ({marks}) GROUP BY track_id, frame_idx"), {"c": cid})
        report.frames["va"] = conn.execute(text("SELECT COUNT(*) FROM va_label WHERE source_id = :c"), {"c": cid}).scalar_one()
        report.multi_rated["va"] = conn.execute(text(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM va_label WHERE source_id IN ({marks}) "
            f"GROUP BY track_id, frame_idx HAVING COUNT(*) > 1) x")).scalar_one()
        report.ties["va"] = 0

        votes = _frame(conn, f"SELECT track_id, frame_idx, expr_id, COUNT(*) FROM expr_label "
                             f"WHERE source_id IN ({marks}) GROUP BY track_id, frame_idx, expr_id",
                       {}, ["track", "frame", "expr", "n"])
        winners, ties, multi = _majority_class(votes)
        insert_rows(conn, "expr_label", ("track_id", "frame_idx", "source_id", "import_id", "expr_id"),
                    ((t, f, cid, None, e) for t, f, e in winners))
        report.frames["expr"], report.ties["expr"], report.multi_rated["expr"] = len(winners), ties, multi

        aus = _frame(conn, f"SELECT track_id, frame_idx, au_id, SUM(present), COUNT(present), AVG(intensity), "
                           f"COUNT(*) FROM au_label WHERE source_id IN ({marks}) GROUP BY track_id, frame_idx, au_id",
                     {}, ["track", "frame", "au", "yes", "votes", "intensity", "raters"])
        rows, ties, multi = _majority_au(aus)
        insert_rows(conn, "au_label", ("track_id", "frame_idx", "source_id", "au_id", "import_id", "present", "intensity"),
                    ((t, f, cid, a, None, p, i) for t, f, a, p, i in rows))
        report.frames["au"] = len({(t, f) for t, f, *_ in rows})
        report.ties["au"], report.multi_rated["au"] = ties, multi
        conn.execute(update(LabelSource).where(LabelSource.id == cid).values(
            details={"sources": report.sources}, created_at=utcnow()))
        materialized.labels_changed(conn, source_ids=[cid])
        materialized.update_statistics(conn)
    return report


def _majority_class(votes: pd.DataFrame) -> tuple[list[tuple[int, int, int]], int, int]:
    if votes.empty:
        return [], 0, 0
    votes = votes.astype({"track": np.int64, "frame": np.int64, "expr": np.int64, "n": np.int64})
    raters = votes.groupby(["track", "frame"])["n"].transform("sum")
    best = votes.groupby(["track", "frame"])["n"].transform("max")
    top = votes[votes["n"] == best]
    counts = top.groupby(["track", "frame"]).size()
    tied = counts[counts > 1]
    clear = top.set_index(["track", "frame"]).drop(index=tied.index).reset_index()
    multi = int((votes.assign(r=raters).groupby(["track", "frame"])["r"].first() > 1).sum())
    winners = list(zip(clear["track"].tolist(), clear["frame"].tolist(), clear["expr"].tolist()))
    return sorted(winners), len(tied), multi


def _majority_au(aus: pd.DataFrame) -> tuple[list[tuple], int, int]:
    if aus.empty:
        return [], 0, 0
    yes = aus["yes"].fillna(0).to_numpy(dtype=np.float64)
    votes = aus["votes"].to_numpy(dtype=np.int64)
    intensity = aus["intensity"].to_numpy(dtype=np.float64)
    present = np.where(votes == 0, -1, np.where(2 * yes > votes, 1, np.where(2 * yes < votes, 0, -2)))
    tie = present == -2
    keep = ~tie & ((present >= 0) | ~np.isnan(intensity))
    multi = int((aus["raters"].to_numpy() > 1).sum())
    rows = [
        (t, f, a, None if p < 0 else p, None if i != i else i)
        for t, f, a, p, i in zip(aus["track"].to_numpy()[keep].tolist(), aus["frame"].to_numpy()[keep].tolist(),
                                 aus["au"].to_numpy()[keep].tolist(), present[keep].tolist(), intensity[keep].tolist())
    ]
    return rows, int(tie.sum()), multi
