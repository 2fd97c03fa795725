"""Reviewing a campaign: every annotator's submitted labels of an item, their consensus,
agreement, reaction lags, flags; the campaign's consensus source; PNG reports.

* Consensus of an item (for display): the per-frame mean of the annotators' VA, or the
  majority class; the stored consensus is made by :func:`affdata.labels.consensus.build_consensus`
  (:func:`campaign_consensus`).
* Agreement: pairwise Lin's CCC for valence and arousal (:func:`affdata.labels.agreement.ccc`),
  pairwise Cohen's kappa for expressions and per AU, on the frames both labelled.
* Reaction lag: people trace a moment after they see the face, each with their own delay. For
  each annotator, the lag (in seconds, positive = later than the others) that maximises the
  cross-correlation of their mean-removed trace with the mean of the others' within
  ``MAX_LAG_S`` (at most a quarter of the video); the valence and arousal lags are averaged.
* Flags: an item whose lowest pairwise CCC (either dimension) or kappa is under ``LOW_AGREEMENT``.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from affdata import vocab
from affdata.annotate.campaigns import Campaign, get_campaign, progress
from affdata.db import Store
from affdata.errors import ConfigError, NotFoundError
from affdata.labels.agreement import ccc, cohen_kappa

LOW_AGREEMENT = 0.4
MAX_LAG_S = 3.0


def _item(store: Store, c: Campaign, item_id: int) -> Any:
    with store.connect() as conn:
        r = conn.execute(text("SELECT i.id, i.video_id, v.name AS video, t.name AS track, i.track_id, v.frame_count "
                              "FROM campaign_item i JOIN video v ON v.id = i.video_id JOIN track t ON t.id = i.track_id "
                              "WHERE i.id = :i AND i.campaign_id = :c"), {"i": item_id, "c": c.id}).first()
    if r is None:
        raise NotFoundError(f"campaign {c.name!r} has no item {item_id}")
    return r


def _submissions(store: Store, item_id: int) -> list[Any]:
    with store.connect() as conn:
        return conn.execute(text("SELECT u.name AS user, s.import_id, s.frames, s.interpolated, s.partial "
                                 "FROM submission s JOIN assignment a ON a.id = s.assignment_id "
                                 "JOIN app_user u ON u.id = a.user_id WHERE a.item_id = :i ORDER BY u.name"),
                            {"i": item_id}).all()


def item_labels(store: Store, c: Campaign, item: Any) -> dict[str, dict[str, np.ndarray]]:
    """user -> arrays over the item's frames (NaN / -1 where unlabelled), from the submissions."""
    n = int(item.frame_count)
    out: dict[str, dict[str, np.ndarray]] = {}
    with store.connect() as conn:
        for s in _submissions(store, item.id):
            if s.import_id is None:
                continue
            if c.task == "va":
                v, a = np.full(n, np.nan), np.full(n, np.nan)
                for r in conn.execute(text("SELECT frame_idx, valence, arousal FROM va_label WHERE import_id = :i"),
                                      {"i": s.import_id}):
                    v[r.frame_idx], a[r.frame_idx] = r.valence, r.arousal
                out[s.user] = {"valence": v, "arousal": a}
            elif c.task == "expr":
                e = np.full(n, -1, dtype=np.int64)
                for r in conn.execute(text("SELECT frame_idx, expr_id FROM expr_label WHERE import_id = :i"),
                                      {"i": s.import_id}):
                    e[r.frame_idx] = r.expr_id
                out[s.user] = {"expr": e}
            else:
                arrays = {f"AU{au}": np.full(n, -1, dtype=np.int64) for au in c.classes}
                for r in conn.execute(text("SELECT frame_idx, au_id, present FROM au_label WHERE import_id = :i"),
                                      {"i": s.import_id}):
                    if f"AU{r.au_id}" in arrays and r.present is not None:
                        arrays[f"AU{r.au_id}"][r.frame_idx] = r.present
                out[s.user] = arrays
    return out


def reaction_lag(trace: np.ndarray, reference: np.ndarray, max_lag: int) -> int | None:
    """Frames by which ``trace`` follows ``reference`` (positive: later), by cross-correlation."""
    both = ~np.isnan(trace) & ~np.isnan(reference)
    if both.sum() < 2 * max(1, max_lag):
        return None
    x = np.where(both, trace - np.nanmean(trace[both]), 0.0)
    y = np.where(both, reference - np.nanmean(reference[both]), 0.0)
    best, best_score = None, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        a, b = (x[lag:], y[:len(y) - lag]) if lag >= 0 else (x[:lag], y[-lag:])
        score = float(np.dot(a, b))
        if score > best_score:
            best, best_score = lag, score
    return best


def _fps(store: Store, video_id: int) -> float:
    with store.connect() as conn:
        r = conn.execute(text("SELECT fps_num, fps_den FROM video WHERE id = :v"), {"v": video_id}).one()
    return r.fps_num / r.fps_den


def review_item(store: Store, campaign: str | int, item_id: int) -> dict[str, Any]:
    """Traces, consensus, pairwise agreement, lags and the flag of one item (JSON-ready)."""
    c = get_campaign(store, campaign)
    item = _item(store, c, item_id)
    labels = item_labels(store, c, item)
    users = sorted(labels)
    out: dict[str, Any] = {"campaign": c.to_dict(), "item": item.id, "video": item.video, "track": item.track,
                           "frame_count": int(item.frame_count), "annotators": users, "pairs": [], "lags_s": {}}
    subs = {s.user: s for s in _submissions(store, item.id)}
    out["submissions"] = {u: {"frames": s.frames, "interpolated": s.interpolated, "partial": bool(s.partial)}
                          for u, s in subs.items()}
    worst: float | None = None
    if c.task == "va":
        out["traces"] = {u: {k: _list(v) for k, v in d.items()} for u, d in labels.items()}
        cons = {dim: _nanmean([labels[u][dim] for u in users], int(item.frame_count)) for dim in ("valence", "arousal")}
        out["consensus"] = {k: _list(v) for k, v in cons.items()}
        for a, b in combinations(users, 2):
            row: dict[str, Any] = {"a": a, "b": b}
            for dim in ("valence", "arousal"):
                both = ~np.isnan(labels[a][dim]) & ~np.isnan(labels[b][dim])
                row[f"ccc_{dim}"] = ccc(labels[a][dim][both], labels[b][dim][both])
                row["frames"] = int(both.sum())
                if row[f"ccc_{dim}"] is not None:
                    worst = row[f"ccc_{dim}"] if worst is None else min(worst, row[f"ccc_{dim}"])
            out["pairs"].append(row)
        fps = _fps(store, item.video_id)
        max_lag = max(1, min(int(round(MAX_LAG_S * fps)), int(item.frame_count) // 4))
        for u in users:
            others = [x for x in users if x != u]
            if not others:
                continue
            lags = []
            for dim in ("valence", "arousal"):
                lag = reaction_lag(labels[u][dim], _nanmean([labels[o][dim] for o in others]), max_lag)
                if lag is not None:
                    lags.append(lag)
            out["lags_s"][u] = None if not lags else round(float(np.mean(lags)) / fps, 3)
    else:
        keys = ["expr"] if c.task == "expr" else [f"AU{au}" for au in c.classes]
        out["labels"] = {u: {k: labels[u][k].tolist() for k in keys} for u in users}
        out["consensus"] = {k: _majority([labels[u][k] for u in users], int(item.frame_count)).tolist() for k in keys}
        for a, b in combinations(users, 2):
            row = {"a": a, "b": b, "kappa": {}}
            for k in keys:
                both = (labels[a][k] >= 0) & (labels[b][k] >= 0)
                kappa = cohen_kappa(labels[a][k][both], labels[b][k][both]) if both.any() else None
                row["kappa"][k] = kappa
                if kappa is not None:
                    worst = kappa if worst is None else min(worst, kappa)
            out["pairs"].append(row)
        if c.task == "expr":
            out["class_names"] = {str(i): vocab.expression_name(i) for i in c.classes}
    out["lowest_agreement"] = worst
    out["flagged"] = worst is not None and worst < LOW_AGREEMENT
    return out


def _nanmean(arrays: list[np.ndarray], n: int = 0) -> np.ndarray:
    if not arrays:
        return np.full(n, np.nan)
    stack = np.stack(arrays)
    counts = (~np.isnan(stack)).sum(axis=0)
    sums = np.nansum(stack, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _majority(arrays: list[np.ndarray], n: int = 0) -> np.ndarray:
    """Per frame the class most annotators gave (-1 where none, or a tie)."""
    if not arrays:
        return np.full(n, -1, dtype=np.int64)
    stack = np.stack(arrays)
    out = np.full(stack.shape[1], -1, dtype=np.int64)
    for f in range(stack.shape[1]):
        vals = stack[:, f][stack[:, f] >= 0]
        if vals.size:
            uniq, counts = np.unique(vals, return_counts=True)
            if (counts == counts.max()).sum() == 1:
                out[f] = uniq[counts.argmax()]
    return out


def _list(a: np.ndarray) -> list[float | None]:
    return [None if x != x else round(float(x), 4) for x in a.tolist()]


def campaign_consensus(store: Store, campaign: str | int) -> dict[str, Any]:
    """Run the stored consensus over the annotators who submitted to this campaign.

    Written as source ``<campaign>-consensus`` (kind consensus), replacing its previous labels;
    like ``affdata labels consensus``, it covers every track those annotators labelled.
    """
    from affdata.labels.consensus import build_consensus

    c = get_campaign(store, campaign)
    with store.connect() as conn:
        names = [r[0] for r in conn.execute(text(
            "SELECT DISTINCT u.name FROM submission s JOIN assignment a ON a.id = s.assignment_id "
            "JOIN campaign_item i ON i.id = a.item_id JOIN app_user u ON u.id = a.user_id "
            "WHERE i.campaign_id = :c ORDER BY u.name"), {"c": c.id})]
    if not names:
        raise ConfigError(f"campaign {c.name!r} has no submission yet")
    return build_consensus(store, name=f"{c.name}-consensus", sources=names).to_dict()


def write_report(store: Store, campaign: str | int, out_dir: Path) -> dict[str, Any]:
    """One PNG per item with submissions (traces or label rows, consensus, agreement) and
    ``summary.json`` (progress and every item's review figures). Returns the summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = get_campaign(store, campaign)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prog = progress(store, c.id)
    items = []
    for it in prog["items"]:
        if not it["submitted"]:
            continue
        r = review_item(store, c.id, it["item"])
        png = out_dir / f"{_safe(r['video'])}__{_safe(r['track'])}.png"
        if c.task == "va":
            fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
            for ax, dim in zip(axes, ("valence", "arousal")):
                for u in r["annotators"]:
                    ax.plot(_arr(r["traces"][u][dim]), lw=1, label=f"{u} (lag {r['lags_s'].get(u)} s)")
                ax.plot(_arr(r["consensus"][dim]), lw=2, color="black", label="mean")
                ax.set_ylim(-1.05, 1.05)
                ax.set_ylabel(dim)
            axes[0].legend(fontsize=7, loc="upper right")
            axes[1].set_xlabel("frame")
        else:
            keys = list(r["consensus"])
            rows = [(u, k) for k in keys for u in r["annotators"]] + [("consensus", k) for k in keys]
            grid = np.array([r["labels"][u][k] if u != "consensus" else r["consensus"][k] for u, k in rows], float)
            fig, ax = plt.subplots(figsize=(10, 1 + 0.3 * len(rows)))
            ax.imshow(np.where(grid < 0, np.nan, grid), aspect="auto", interpolation="nearest", cmap="tab10")
            ax.set_yticks(range(len(rows)), [f"{u} {k}" for u, k in rows], fontsize=7)
            ax.set_xlabel("frame")
        low = r["lowest_agreement"]
        fig.suptitle(f"{c.name}: {r['video']} / {r['track']}; lowest pairwise agreement "
                     f"{'-' if low is None else f'{low:.2f}'}{' (FLAGGED)' if r['flagged'] else ''}", fontsize=9)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
        items.append({k: r[k] for k in ("item", "video", "track", "annotators", "pairs", "lags_s",
                                          "lowest_agreement", "flagged")} | {"png": png.name})
    summary = {"campaign": c.to_dict(), "progress": {"users": prog["users"]}, "items": items}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _arr(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
