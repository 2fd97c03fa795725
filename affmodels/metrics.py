"""Evaluation metrics over a whole evaluation set (never averaged per batch).

CCC and F1 do not decompose over batches: the mean of per-batch CCCs is not the CCC of
the set. :class:`AffectMetrics` therefore stores every prediction and target on the CPU
and computes once, each task over only the frames that carry its label (per AU for AUs).

Conventions (each tested against scikit-learn or the numpy formula):

* CCC in float64 with population moments: 2 cov / (var_x + var_y + (mean_x - mean_y)^2);
  NaN when undefined (no frame, or both series one and the same constant).
* AU decisions: positive iff sigmoid(logit) >= threshold (0.5 -> logit >= 0, compared on
  the logit so float rounding of the sigmoid cannot flip a decision). Binary F1 with
  sklearn's ``zero_division=0``: an AU with neither true nor predicted positives scores 0.
  An AU with no annotated frame is NaN and left out of the mean.
* Expression macro-F1 averages over the classes present in the targets or the
  predictions, i.e. sklearn's ``f1_score(average="macro")`` with ``labels=None``; a class
  absent from both is excluded (not counted as 0), as in the ABAW evaluation scripts. Pass
  ``labels=`` to :func:`macro_f1` to average over a fixed class list instead.
* ABAW 2020 composites: expr 0.67 F1 + 0.33 accuracy; AU 0.5 mean F1 + 0.5 accuracy pooled
  over all annotated (frame, AU) entries. Later challenges: VA mean CCC, expr macro-F1, AU
  mean F1, and for the multi-task track their sum (``abaw_mtl``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from affmodels.model import Predictions

NAN = float("nan")


# ----------------------------------------------------------------------------- pure functions


def ccc(x: Any, y: Any) -> float:
    """Concordance correlation coefficient of two 1-D series, in float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"ccc: series of different lengths {x.size} and {y.size}")
    if x.size == 0:
        return NAN
    mx, my = x.mean(), y.mean()
    vx, vy = np.mean((x - mx) ** 2), np.mean((y - my) ** 2)
    cov = np.mean((x - mx) * (y - my))
    denom = vx + vy + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else NAN


def f1_binary(y_true: Any, y_pred: Any) -> float:
    """F1 of the positive class; 0 when there are no true and no predicted positives."""
    t = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(y_pred).astype(bool).ravel()
    tp = np.count_nonzero(t & p)
    denom = 2 * tp + np.count_nonzero(~t & p) + np.count_nonzero(t & ~p)
    return 2 * tp / denom if denom else 0.0


def per_class_f1(y_true: Any, y_pred: Any, labels: Sequence[int]) -> np.ndarray:
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return np.array([f1_binary(t == c, p == c) for c in labels], dtype=np.float64)


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean F1 over ``labels``, by default the classes in targets or predictions."""
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if labels is None:
        labels = np.union1d(t, p).tolist()
    if len(labels) == 0:
        return NAN
    return float(per_class_f1(t, p, labels).mean())


def accuracy(y_true: Any, y_pred: Any) -> float:
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return float(np.mean(t == p)) if t.size else NAN


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else NAN


# ----------------------------------------------------------------------------- accumulator


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


class AffectMetrics:
    """Accumulates predictions and labels batch by batch; ``compute()`` over everything.

    ``update(pred, batch)`` takes the model's :class:`Predictions` (or a mapping with the
    same fields) and a batch in the dataset's format; if the batch has ``"video"`` (list of
    str, or int64 ids) ``per_video()`` breaks the metrics down by video.
    """

    def __init__(
        self, au_names: Sequence[str], class_names: Sequence[str], au_threshold: float = 0.5
    ) -> None:
        if not 0.0 < au_threshold < 1.0:
            raise ValueError(f"au_threshold must be in (0, 1), got {au_threshold}")
        self.au_names = list(au_names)
        self.class_names = list(class_names)
        self.au_logit_threshold = math.log(au_threshold / (1.0 - au_threshold))
        self.reset()

    def reset(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {}
        self._videos: list[Any] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @torch.no_grad()
    def update(self, pred: Predictions | Mapping[str, Tensor], batch: Mapping[str, Any]) -> None:
        if isinstance(pred, Mapping):
            pred = Predictions(pred["va"], pred["au_logits"], pred["expr_logits"])
        b, k, c = pred.va.shape[0], len(self.au_names), len(self.class_names)
        if pred.va.shape != (b, 2) or pred.au_logits.shape != (b, k) or pred.expr_logits.shape != (b, c):
            raise ValueError(
                f"predictions of shapes va {tuple(pred.va.shape)}, au {tuple(pred.au_logits.shape)},"
                f" expr {tuple(pred.expr_logits.shape)} do not match ({b}, 2), ({b}, {k}), ({b}, {c})"
                f" for {k} AUs and {c} classes"
            )
        expr = _np(batch["expr"]).astype(np.int64)
        rows = {
            "va_pred": _np(pred.va.float()),
            "va": _np(batch["va"]).astype(np.float32),
            "va_mask": _np(batch["va_mask"]).astype(bool),
            "au_pos": _np(pred.au_logits.float() >= self.au_logit_threshold),
            "au": _np(batch["au"]).astype(np.float32) > 0.5,
            "au_mask": _np(batch["au_mask"]).astype(bool),
            "expr_pred": _np(pred.expr_logits.argmax(1)) if c else np.zeros(b, np.int64),
            "expr": expr,
            "expr_mask": _np(batch["expr_mask"]).astype(bool) & (expr >= 0),
        }
        for name, arr in rows.items():
            if arr.shape[0] != b:
                raise ValueError(f"batch[{name!r}] has {arr.shape[0]} rows, predictions {b}")
            self._chunks.setdefault(name, []).append(arr)
        videos = batch.get("video")
        self._videos.extend(_np(videos).tolist() if videos is not None else [None] * b)
        self._n += b

    def _arrays(self) -> dict[str, np.ndarray]:
        if not self._chunks:
            raise ValueError("AffectMetrics.compute() before any update()")
        for name, chunks in self._chunks.items():
            if len(chunks) > 1:  # consolidate once so repeated compute() calls stay cheap
                self._chunks[name] = [np.concatenate(chunks)]
        return {name: chunks[0] for name, chunks in self._chunks.items()}

    def compute(self) -> dict[str, float]:
        """All metrics over every frame seen since the last reset."""
        return self._compute(self._arrays())

    def per_video(self) -> dict[Any, dict[str, float]]:
        """``{video id: compute()-style dict over that video's frames}``."""
        arrays = self._arrays()
        if any(v is None for v in self._videos):
            raise ValueError("per_video() needs batch['video'] in every update()")
        ids, inverse = np.unique(np.asarray(self._videos), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1])
        return {
            vid.item(): self._compute({k: a[idx] for k, a in arrays.items()})
            for vid, idx in zip(ids, groups)
        }

    def _compute(self, a: dict[str, np.ndarray]) -> dict[str, float]:
        out: dict[str, float] = {}
        # -- valence-arousal
        m = a["va_mask"]
        p, t = a["va_pred"][m].astype(np.float64), a["va"][m].astype(np.float64)
        out["ccc_valence"], out["ccc_arousal"] = ccc(p[:, 0], t[:, 0]), ccc(p[:, 1], t[:, 1])
        out["ccc_mean"] = (out["ccc_valence"] + out["ccc_arousal"]) / 2
        mse = ((p - t) ** 2).mean(0) if len(p) else np.full(2, NAN)
        out["mse_valence"], out["mse_arousal"] = float(mse[0]), float(mse[1])
        out["mse_mean"] = float(mse.mean())
        out["va_count"] = int(m.sum())
        # -- action units, each over its own annotated frames
        pos, au, am = a["au_pos"], a["au"], a["au_mask"]
        f1s = []
        for j, name in enumerate(self.au_names):
            mj = am[:, j]
            f1s.append(f1_binary(au[mj, j], pos[mj, j]) if mj.any() else NAN)
            out[f"au_f1/{name}"] = f1s[-1]
            out[f"au_accuracy/{name}"] = accuracy(au[mj, j], pos[mj, j])
            out[f"au_count/{name}"] = int(mj.sum())
        out["au_f1_mean"] = _nanmean(f1s)
        out["au_accuracy"] = accuracy(au[am], pos[am])  # pooled over (frame, AU) entries
        out["au_count"] = int(am.sum())
        out["au_frames"] = int(am.any(1).sum())
        # -- expressions
        m = a["expr_mask"]
        t, p = a["expr"][m], a["expr_pred"][m]
        present = set(np.union1d(t, p).tolist())
        for j, (name, f1) in enumerate(
            zip(self.class_names, per_class_f1(t, p, range(len(self.class_names))))
        ):
            out[f"expr_f1/{name}"] = float(f1) if j in present else NAN
        out["expr_f1_macro"] = macro_f1(t, p)
        out["expr_accuracy"] = accuracy(t, p)
        out["expr_count"] = int(m.sum())
        # -- challenge scores
        out["abaw2020_expr"] = 0.67 * out["expr_f1_macro"] + 0.33 * out["expr_accuracy"]
        out["abaw2020_au"] = 0.5 * out["au_f1_mean"] + 0.5 * out["au_accuracy"]
        out["abaw_va"] = out["ccc_mean"]
        out["abaw_expr"] = out["expr_f1_macro"]
        out["abaw_au"] = out["au_f1_mean"]
        out["abaw_mtl"] = out["abaw_va"] + out["abaw_expr"] + out["abaw_au"]
        return out


__all__ = ["AffectMetrics", "accuracy", "ccc", "f1_binary", "macro_f1", "per_class_f1"]
