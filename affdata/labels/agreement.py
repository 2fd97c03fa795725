"""Inter-annotator agreement per task, on the frames the annotators share.

* VA, per dimension: Lin's concordance correlation coefficient (CCC) for every pair of sources,
  on the frames both labelled; and over the frames every source labelled, the intraclass
  correlation **ICC(A,1)** of McGraw & Wong (1996), which is Shrout & Fleiss' (1979) **ICC(2,1)**:
  two-way random effects (frames and annotators both samples), absolute agreement, a single
  rater. It answers "how interchangeable is one annotator's valence with another's", penalising
  an annotator who is systematically higher, which consistency forms (ICC(3,1)) would not.
* AUs (per AU) and expressions: Cohen's kappa for every pair, and Fleiss' kappa over the frames
  every source labelled (with two sources it differs slightly from Cohen's: it assumes one
  shared distribution of categories).

Every figure comes with the number of frames it was computed on; a figure that cannot be
computed (too few shared frames, a constant rating) is None.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.labels.consensus import resolve_sources


def ccc(x: np.ndarray, y: np.ndarray) -> float | None:
    """Lin's CCC with population moments, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2:
        return None
    mx, my = x.mean(), y.mean()
    denom = x.var() + y.var() + (mx - my) ** 2
    return None if denom == 0 else float(2 * ((x - mx) * (y - my)).mean() / denom)


def icc_a1(ratings: np.ndarray) -> float | None:
    """ICC(A,1) = Shrout & Fleiss ICC(2,1) for an (n targets, k raters) matrix without gaps."""
    r = np.asarray(ratings, np.float64)
    n, k = r.shape
    if n < 2 or k < 2:
        return None
    grand = r.mean()
    ss_rows = k * ((r.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((r.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((r - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    return None if denom == 0 else float((msr - mse) / denom)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0:
        return None
    cats = np.union1d(a, b)
    po = float((a == b).mean())
    pe = float(sum((a == c).mean() * (b == c).mean() for c in cats))
    return None if pe == 1 else (po - pe) / (1 - pe)


def fleiss_kappa(ratings: np.ndarray) -> float | None:
    """Fleiss' kappa for an (n items, k raters) matrix of category labels without gaps."""
    r = np.asarray(ratings)
    n, k = r.shape
    if n < 1 or k < 2:
        return None
    cats = np.unique(r)
    counts = np.stack([(r == c).sum(axis=1) for c in cats], axis=1).astype(np.float64)  # (n, C)
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (k * (k - 1))
    p_cat = counts.sum(axis=0) / (n * k)
    p_bar, pe = p_item.mean(), (p_cat**2).sum()
    return None if pe == 1 else float((p_bar - pe) / (1 - pe))


def _pivot(frame: pd.DataFrame, value: str, names: dict[int, str], keys: list[str]) -> pd.DataFrame:
    wide = frame.pivot_table(index=keys, columns="source", values=value, aggfunc="first")
    return wide.rename(columns=names)


def agreement(store: Store, *, sources: list[str] | None = None, tasks: tuple[str, ...] = ("va", "au", "expr")) -> dict[str, Any]:
    """Agreement between ``sources`` (default: every human source), per task; see the module docstring."""
    with store.connect() as conn:
        chosen = resolve_sources(conn, sources)
        if len(chosen) < 2:
            raise ConfigError(f"agreement needs at least two label sources, found {len(chosen)}: "
                              f"{', '.join(chosen.values()) or 'none'}")
        marks = ", ".join(str(i) for i in sorted(chosen))
        out: dict[str, Any] = {"sources": [chosen[i] for i in sorted(chosen)]}
        if "va" in tasks:
            va = pd.DataFrame(conn.execute(text(
                f"SELECT source_id, track_id, frame_idx, valence, arousal FROM va_label WHERE source_id IN ({marks})")).all(),
                columns=["source", "track", "frame", "valence", "arousal"])
            out["va"] = _va_agreement(va, chosen)
        if "expr" in tasks:
            ex = pd.DataFrame(conn.execute(text(
                f"SELECT source_id, track_id, frame_idx, expr_id FROM expr_label WHERE source_id IN ({marks})")).all(),
                columns=["source", "track", "frame", "expr"])
            out["expr"] = _categorical(ex, "expr", chosen, ["track", "frame"])
        if "au" in tasks:
            au = pd.DataFrame(conn.execute(text(
                f"SELECT a.source_id, a.track_id, a.frame_idx, u.name, a.present FROM au_label a "
                f"JOIN action_unit u ON u.id = a.au_id WHERE a.source_id IN ({marks}) AND a.present IS NOT NULL")).all(),
                columns=["source", "track", "frame", "au", "present"])
            out["au"] = {name: _categorical(group, "present", chosen, ["track", "frame"])
                         for name, group in sorted(au.groupby("au"), key=lambda g: int(g[0][2:]))}
    return out


def _va_agreement(va: pd.DataFrame, names: dict[int, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"pairs": [], "icc_form": "ICC(A,1) = ICC(2,1): two-way random, absolute agreement, single rater"}
    wide = {dim: _pivot(va, dim, names, ["track", "frame"]) if not va.empty else pd.DataFrame()
            for dim in ("valence", "arousal")}
    for dim, table in wide.items():
        full = table.dropna() if not table.empty else table
        result[f"icc_{dim}"] = icc_a1(full.to_numpy()) if len(full.columns) >= 2 else None
        result[f"icc_{dim}_frames"] = int(len(full))
    for a, b in combinations(sorted(names), 2):
        cols = [names[a], names[b]]
        row: dict[str, Any] = {"a": names[a], "b": names[b], "frames": 0}
        for dim, table in wide.items():
            both = table[cols].dropna() if set(cols) <= set(table.columns) else pd.DataFrame()
            row[f"ccc_{dim}"] = ccc(both.iloc[:, 0], both.iloc[:, 1]) if len(both) else None
            row["frames"] = int(len(both))
        result["pairs"].append(row)
    return result


def _categorical(frame: pd.DataFrame, value: str, names: dict[int, str], keys: list[str]) -> dict[str, Any]:
    wide = _pivot(frame, value, names, keys) if not frame.empty else pd.DataFrame()
    full = wide.dropna() if not wide.empty else wide
    result: dict[str, Any] = {
        "fleiss_kappa": fleiss_kappa(full.to_numpy().astype(np.int64)) if len(full.columns) >= 2 and len(full) else None,
        "fleiss_frames": int(len(full)),
        "pairs": [],
    }
    for a, b in combinations(sorted(names), 2):
        cols = [names[a], names[b]]
        both = wide[cols].dropna() if set(cols) <= set(wide.columns) else pd.DataFrame()
        kappa = cohen_kappa(both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()) if len(both) else None
        result["pairs"].append({"a": names[a], "b": names[b], "cohen_kappa": kappa, "frames": int(len(both))})
    return result
