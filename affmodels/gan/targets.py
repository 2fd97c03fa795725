"""Target affects: the conditioning vector, the cycle's source rule, and a sampler of targets.

Conditioning vector layout (what the generator is fed, tiled over the image)::

    c = [valence, arousal, au_1, ..., au_K, onehot_1, ..., onehot_C]      # 2 + K + C floats
         [-1, 1]   [-1, 1]   0/1 each        exactly one 1 (C = 0: none)

Source rule (for the cycle ``G(G(x, c_target), c_source) ~ x``): a real frame rarely has all
three labels, so :func:`source_target` fills each missing part from the discriminator's
predictions on that real image, detached (they are estimates, not something to train D on):
missing VA -> D's VA (already in [-1, 1]); each missing AU entry -> 1 iff D's logit >= 0
(sigmoid >= 0.5, the metrics' decision rule; hard, because targets are 0/1 and G never sees
fractional AUs); missing expression (mask false or -1) -> one-hot of D's argmax. Labelled
entries always win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from affmodels.data.manifest import Manifest
from affmodels.data.reader import ShardReader
from affmodels.model import Predictions


@dataclass(frozen=True)
class Target:
    """A batch of complete affects: every task present. ``n_classes`` fixes the one-hot width."""

    va: Tensor  # (B, 2) float32 in [-1, 1]
    au: Tensor  # (B, K) float32, 0/1
    expr: Tensor  # (B,) int64 in [0, C)
    n_classes: int

    def __len__(self) -> int:
        return len(self.expr)

    def __getitem__(self, idx: Any) -> Target:
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Target(self.va[idx], self.au[idx], self.expr[idx], self.n_classes)

    def to(self, device: torch.device | str) -> Target:
        return Target(self.va.to(device), self.au.to(device), self.expr.to(device), self.n_classes)

    def condition(self) -> Tensor:
        """The (B, 2 + K + C) conditioning vector."""
        return encode_target(self.va, self.au, self.expr, self.au.shape[1], self.n_classes)

    def as_batch(self) -> dict[str, Tensor]:
        """In the dataset's batch format with every mask true (the generator's task loss)."""
        b, k = self.au.shape
        dev = self.va.device
        has_expr = self.n_classes > 0  # an export without classes: no expression task at all
        return {
            "va": self.va,
            "va_mask": torch.ones(b, dtype=torch.bool, device=dev),
            "au": self.au,
            "au_mask": torch.ones(b, k, dtype=torch.bool, device=dev),
            "expr": self.expr if has_expr else torch.full_like(self.expr, -1),
            "expr_mask": torch.full((b,), has_expr, dtype=torch.bool, device=dev),
        }


def encode_target(va: Tensor, au: Tensor, expr: Tensor, n_aus: int, n_classes: int) -> Tensor:
    """``[valence, arousal, au (K), one-hot expression (C)]`` as float32 (B, 2 + K + C)."""
    b = len(expr)
    if va.shape != (b, 2) or au.shape != (b, n_aus):
        raise ValueError(
            f"expected va (B, 2), au (B, {n_aus}), expr (B,), got {tuple(va.shape)}, "
            f"{tuple(au.shape)}, {tuple(expr.shape)}"
        )
    expr = expr.long()
    if expr.device.type == "cpu" and n_classes and ((expr < 0) | (expr >= n_classes)).any():
        raise ValueError(f"expression classes must lie in [0, {n_classes}), got {expr.tolist()}")
    onehot = expr[:, None] == torch.arange(n_classes, device=expr.device)  # no device sync
    return torch.cat([va.float(), au.float(), onehot.to(va.device).float()], 1)


def decode_condition(cond: Tensor, n_aus: int, n_classes: int) -> Target:
    """Inverse of :func:`encode_target` (expression: argmax of the one-hot part)."""
    if cond.ndim != 2 or cond.shape[1] != 2 + n_aus + n_classes:
        raise ValueError(f"cond must be (B, {2 + n_aus + n_classes}), got {tuple(cond.shape)}")
    onehot = cond[:, 2 + n_aus :]
    expr = onehot.argmax(1) if n_classes else cond.new_zeros(len(cond), dtype=torch.long)
    return Target(cond[:, :2], cond[:, 2 : 2 + n_aus], expr, n_classes)


def source_target(batch: Mapping[str, Tensor], d_pred: Predictions) -> Target:
    """The source affect of a real batch: labels where present, D's estimate elsewhere.

    See the module docstring for the exact rule. ``d_pred`` is D's output on
    ``batch["image"]``; it is detached here. Unlabelled entries' values (0, NaN, -1) are
    never read.
    """
    va_hat, au_logits, expr_logits = (t.detach() for t in d_pred)
    dev = va_hat.device
    va_mask = batch["va_mask"].to(dev).bool()
    au_mask = batch["au_mask"].to(dev).bool()
    expr = batch["expr"].to(dev).long()
    expr_mask = batch["expr_mask"].to(dev).bool() & (expr >= 0)
    va = torch.where(va_mask[:, None], batch["va"].to(dev, va_hat.dtype), va_hat)
    au = torch.where(au_mask, batch["au"].to(dev, va_hat.dtype), (au_logits >= 0).to(va_hat.dtype))
    n_classes = expr_logits.shape[1]
    if n_classes:
        expr = torch.where(expr_mask, expr, expr_logits.argmax(1))
    else:
        expr = torch.zeros_like(expr)
    return Target(va, au, expr, n_classes)


def source_condition(batch: Mapping[str, Tensor], d_pred: Predictions) -> Tensor:
    """:func:`source_target` encoded as a conditioning vector (B, 2 + K + C)."""
    return source_target(batch, d_pred).condition()


# ----------------------------------------------------------------------------- sampler


def _by_class(rows: Tensor, classes: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """CSR grouping: rows sorted by class, and offsets (C + 1,)."""
    order = torch.argsort(classes, stable=True)
    counts = torch.bincount(classes, minlength=n_classes)
    return rows[order], torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _uniform(u: Tensor, count: Tensor | int) -> Tensor:
    """floor(u * count) for u in [0, 1), kept below count (float rounding)."""
    count = torch.as_tensor(count)
    return torch.minimum((u * count).long(), (count - 1).clamp(min=0))


def _pick(sorted_rows: Tensor, offsets: Tensor, classes: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """A uniform row of each sample's class (u in [0, 1)), and whether the class has any row
    (where it has none the row returned is a placeholder)."""
    start, count = offsets[classes], offsets[classes + 1] - offsets[classes]
    ok = count > 0
    if len(sorted_rows) == 0:
        return torch.zeros_like(classes), ok
    return sorted_rows[torch.where(ok, start + _uniform(u, count), 0)], ok


class TargetSampler:
    """Draws target affects from label combinations that occur in the training set.

    Rule: a target is anchored on one training row *with an expression label*, drawn
    uniformly (classes appear at their training frequency; pass ``classes=`` to choose
    them). The anchor's VA and labelled AUs are kept. What the anchor lacks is filled
    within its expression class, so no part contradicts the class:

    * missing VA: the VA of a uniformly drawn row of the same class that has VA; if the
      class has none, of any row with VA (the marginal); if no row has VA, (0, 0);
    * missing AU j: AU j's label in a uniformly drawn row of the same class that has AU j,
      i.e. Bernoulli(class-conditional rate of AU j); else the global rate; else 0.

    Rows without an expression are never anchors (their VA/AU cannot be paired with a class
    they were observed with) but do feed the marginals. If no row has an expression at all,
    anchors are all rows with any label and the class is uniform.

    Stateless: all randomness comes from the ``generator`` passed to :meth:`sample`, which
    always draws the same amount of random numbers per call, so saving and restoring that
    generator's ``get_state()`` resumes the sequence exactly.
    """

    def __init__(
        self,
        va: Any,
        au: Any,
        au_mask: Any,
        expr: Any,
        expr_mask: Any,
        *,
        n_classes: int,
        va_mask: Any = None,
    ) -> None:
        va = torch.as_tensor(np.asarray(va, dtype=np.float32))
        au = torch.as_tensor(np.asarray(au, dtype=np.float32))
        au_mask = torch.as_tensor(np.asarray(au_mask, dtype=bool))
        expr = torch.as_tensor(np.asarray(expr, dtype=np.int64))
        expr_mask = torch.as_tensor(np.asarray(expr_mask, dtype=bool))
        n, k = au.shape
        if va.shape != (n, 2) or au_mask.shape != (n, k) or expr.shape != (n,) or expr_mask.shape != (n,):
            raise ValueError("va (N, 2), au (N, K), au_mask (N, K), expr (N,), expr_mask (N,) expected")
        va_ok = torch.isfinite(va).all(1)
        if va_mask is not None:
            va_ok &= torch.as_tensor(np.asarray(va_mask, dtype=bool))
        au_ok = au_mask & torch.isfinite(au)
        ex_ok = expr_mask & (expr >= 0) & (expr < n_classes)
        self.n_classes, self.n_aus = n_classes, k
        self.va = torch.where(va_ok[:, None], va, 0.0).clamp(-1, 1)
        self.au = torch.where(au_ok, (au > 0.5).float(), 0.0)
        self.expr = torch.where(ex_ok, expr, 0)
        self.va_ok, self.au_ok, self.has_expr = va_ok, au_ok, bool(ex_ok.any())

        anchors = torch.nonzero(ex_ok if self.has_expr else va_ok | au_ok.any(1)).flatten()
        if len(anchors) == 0:
            raise ValueError("TargetSampler: no row carries any label")
        self.anchors = anchors
        self.anchor_rows, self.anchor_off = _by_class(anchors, self.expr[anchors], max(n_classes, 1))
        va_cls = torch.nonzero(va_ok & ex_ok).flatten()
        self.va_rows, self.va_off = _by_class(va_cls, self.expr[va_cls], max(n_classes, 1))
        self.va_all = torch.nonzero(va_ok).flatten()

        onehot = F.one_hot(self.expr, max(n_classes, 1)).float() * ex_ok[:, None]  # (N, C)
        lab, pos = au_ok.float(), self.au * au_ok
        n_cls, p_cls = onehot.T @ lab, onehot.T @ pos  # (C, K) annotated / positive counts
        n_all, p_all = lab.sum(0), pos.sum(0)
        glob = torch.where(n_all > 0, p_all / n_all.clamp(min=1), 0.0)
        self.au_rate = torch.where(n_cls > 0, p_cls / n_cls.clamp(min=1), glob)  # (C, K)

    def __len__(self) -> int:
        return len(self.anchors)

    def sample(
        self, n: int, generator: torch.Generator | None = None, classes: Tensor | None = None
    ) -> Target:
        """``n`` targets; ``classes`` (n,) forces each one's expression (e.g. one per class)."""
        g = generator
        k, c = self.n_aus, max(self.n_classes, 1)
        pick = torch.randint(len(self.anchors), (n,), generator=g)
        u_anchor, u_class = torch.rand(n, generator=g), torch.rand(n, generator=g)
        u_va, u_va_all = torch.rand(n, generator=g), torch.rand(n, generator=g)
        u_au = torch.rand(n, k, generator=g)
        if classes is not None:
            classes = torch.as_tensor(classes, dtype=torch.long).reshape(n)
            if ((classes < 0) | (classes >= c)).any():
                raise ValueError(f"classes must lie in [0, {self.n_classes})")
        if classes is not None and self.has_expr:
            rows, ok = _pick(self.anchor_rows, self.anchor_off, classes, u_anchor)
            if not ok.all():
                missing = sorted(set(classes[~ok].tolist()))
                raise ValueError(f"no training row has expression class(es) {missing}")
        else:
            rows = self.anchors[pick]
        if self.has_expr:
            expr = self.expr[rows]
        else:  # no expression labels anywhere: the class is the caller's, or uniform
            expr = classes if classes is not None else _uniform(u_class, c)

        donor, ok = _pick(self.va_rows, self.va_off, expr, u_va)  # same class, with VA
        if len(self.va_all):
            donor = torch.where(ok, donor, self.va_all[_uniform(u_va_all, len(self.va_all))])
            fill_va = self.va[donor]
        else:
            fill_va = torch.zeros(n, 2)
        va = torch.where(self.va_ok[rows, None], self.va[rows], fill_va)
        fill_au = (u_au < self.au_rate[expr]).float()
        au = torch.where(self.au_ok[rows], self.au[rows], fill_au)
        if self.n_classes == 0:
            expr = torch.zeros(n, dtype=torch.long)
        return Target(va, au, expr, self.n_classes)


__all__ = [
    "Target",
    "TargetSampler",
    "decode_condition",
    "encode_target",
    "source_condition",
    "source_target",
]


def label_arrays(manifest: Manifest) -> dict[str, np.ndarray]:
    """Every training row's labels (no pixels): what the target sampler draws combinations from."""
    reader = ShardReader(manifest)
    try:
        b = reader.read_labels()
    finally:
        reader.close()
    return {"va": b.va, "au": b.au, "au_mask": b.au_mask, "expr": b.expr, "va_mask": b.va_mask,
            "expr_mask": b.expr_mask}


def observed_classes(labels: dict[str, np.ndarray]) -> torch.Tensor:
    """The expression classes that occur in the training rows."""
    return torch.from_numpy(np.unique(labels["expr"][labels["expr_mask"] & (labels["expr"] >= 0)]))


def sample_targets(sampler: TargetSampler, n: int, classes: torch.Tensor, g: torch.Generator) -> Target:
    """Targets whose expression is uniform over the observed classes, the rest drawn from rows of
    that class: every class is asked for equally often, whatever its share of the data."""
    if not len(classes):
        return sampler.sample(n, generator=g)
    return sampler.sample(n, generator=g, classes=classes[torch.randint(len(classes), (n,), generator=g)])
