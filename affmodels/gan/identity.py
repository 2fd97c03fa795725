"""Measuring identity and realism of faces without downloaded weights.

The multi-task evaluator's features measure affect, not identity: in its space the same person
with another expression was 0.77 apart and two people with the same expression 0.17. So identity
gets its own network, a **subject embedding** trained to tell people apart:

- trained on a synthetic release drawn with *another seed* (``benchmarks/gan_quality.py`` uses
  seed 1): other people altogether, disjoint from the GAN's training subjects and from the test
  subjects it is scored on. It must therefore generalise to unseen people, which is what it is
  asked to do on the test subjects;
- loss: a cosine classifier with an additive margin (CosFace) over the training subjects; the
  embedding is the L2-normalised layer before the classifier, so distances between people who
  were never classes still mean something (the classifier's weights are thrown away);
- the epoch is chosen on the id release's own val subjects (also unseen), by the fraction of
  triplets ordered right (:func:`pair_check`);
- checked before use on real pairs of the test subjects: the same person with another
  expression must be closer than another person with the same expression.

Realism: the kernel inception distance (KID: unbiased MMD^2 with the cubic polynomial kernel,
Binkowski et al. 2018) between generated and real faces, computed over random subsets to give
a spread, in fixed feature spaces: the frozen identity network's trunk (trained on faces like
these, by other people) and a randomly initialised convolutional network with a fixed seed
(no training at all; it compares colour and local texture statistics, so it sees blotches and
blur but not semantics).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from affmodels.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from affmodels.model import CompactCNN, Normalize

Embed = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- faces of an export


@dataclass
class Faces:
    """Every row of an export in memory: uint8 images (N, 3, H, W) and who/what each shows."""

    images: torch.Tensor
    subject: np.ndarray  # str; the track's subject, else "video/track"
    video: np.ndarray  # str
    expr: np.ndarray  # int64 class index, -1 where unlabelled
    va: np.ndarray  # (N, 2) float32, NaN where unlabelled
    au: np.ndarray  # (N, K) float32, NaN where unlabelled

    def __len__(self) -> int:
        return len(self.subject)

    @staticmethod
    def concat(parts: list[Faces]) -> Faces:
        return Faces(torch.cat([p.images for p in parts]), *(np.concatenate([getattr(p, k) for p in parts])
                                                              for k in ("subject", "video", "expr", "va", "au")))

    def take(self, index: np.ndarray) -> Faces:
        index = np.asarray(index, dtype=np.int64)
        return Faces(self.images[torch.from_numpy(index)], self.subject[index], self.video[index],
                     self.expr[index], self.va[index], self.au[index])


def load_faces(export: str | Path, *, every: int = 1) -> Faces:
    """The rows of an export (every ``every``-th, in export order), decoded. Small exports only:
    everything is held in memory (48 px: 7 KB a face)."""
    import pyarrow.parquet as pq

    from affmodels.data import load_manifest
    from affmodels.data.decode import decode

    manifest = load_manifest(export)
    images, subject, video, expr, va, au = [], [], [], [], [], []
    offset = 0
    for shard in manifest.shards:
        table = pq.read_table(manifest.root / shard.path,
                              columns=["video", "track", "subject", "image", "expr", "valence", "arousal", "au",
                                       "au_mask"])
        keep = [i for i in range(table.num_rows) if (offset + i) % every == 0]
        offset += table.num_rows
        t = table.take(keep).to_pydict()
        for i in range(len(keep)):
            images.append(decode(t["image"][i], manifest.image_size, manifest.encoding))
            video.append(t["video"][i])
            subject.append(t["subject"][i] or f"{t['video'][i]}/{t['track'][i]}")
            expr.append(-1 if t["expr"][i] is None else int(t["expr"][i]))
            v, a = t["valence"][i], t["arousal"][i]
            va.append([np.nan, np.nan] if v is None else [v, a])
            au.append([float(x) if m else np.nan for x, m in zip(t["au"][i], t["au_mask"][i])])
    k = len(manifest.au_names)
    return Faces(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous() if images
                 else torch.zeros(0, 3, manifest.image_size, manifest.image_size, dtype=torch.uint8),
                 np.asarray(subject, dtype=object), np.asarray(video, dtype=object),
                 np.asarray(expr, dtype=np.int64), np.asarray(va, dtype=np.float32).reshape(-1, 2),
                 np.asarray(au, dtype=np.float32).reshape(-1, k))


# ----------------------------------------------------------------------------- the identity network


@dataclass
class IdentityConfig:
    width: int = 16  # CompactCNN width: 8 * width trunk features
    dim: int = 64  # embedding size
    scale: float = 16.0  # cosine classifier's logit scale
    margin: float = 0.2  # additive cosine margin (CosFace)
    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    threads: int | None = None


class IdentityNet(nn.Module):
    """Normalize -> CompactCNN trunk -> linear -> L2-normalised embedding."""

    def __init__(self, cfg: IdentityConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalize = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        self.trunk = CompactCNN(cfg.width, grid=3)
        self.embed = nn.Linear(self.trunk.out_features, cfg.dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Trunk features (B, 8 * width): the space KID is measured in."""
        return self.trunk(self.normalize(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(self.features(images)), dim=1)


class RandomFeatures(nn.Module):
    """A fixed, untrained convolutional network (seeded): three stride-2 conv + ReLU layers,
    pooled to 2 x 2 (512 features). A reproducible feature space that needs no weights file."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.normalize = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        layers: list[nn.Module] = []
        for c_in, c_out in ((3, 32), (32, 64), (64, 128)):
            conv = nn.Conv2d(c_in, c_out, 3, 2, 1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2 / (c_in * 9)))
                conv.bias.zero_()
            layers += [conv, nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(images))


@torch.no_grad()
def apply(fn: Embed, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """``fn`` over ``images`` in batches, as float64 numpy."""
    out = [fn(images[i:i + batch_size]).double().cpu().numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0))


@dataclass(frozen=True)
class PairCheck:
    """Triplets of real faces: an anchor, the same person with another expression (from another
    video where the person has one), another person with the anchor's expression."""

    triplets: int
    same_person_other_expr: float  # mean distance (1 - cosine)
    other_person_same_expr: float
    ordered_right: float  # fraction of triplets with same-person distance < other-person distance
    same_person_same_video: float  # share of same-person faces that had to come from the anchor's video
    subjects: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_check(emb: np.ndarray, subject: np.ndarray, video: np.ndarray, expr: np.ndarray, *,
               n: int = 1000, seed: int = 0) -> PairCheck:
    """The ordering check on embeddings ``emb`` (rows L2-normalised) of expression-labelled faces."""
    rng = np.random.default_rng(seed)
    lab = np.flatnonzero(expr >= 0)
    d_same, d_other, same_video = [], [], 0
    if lab.size:
        for a in rng.choice(lab, size=min(n, lab.size), replace=False):
            same = lab[(subject[lab] == subject[a]) & (expr[lab] != expr[a])]
            other = lab[(subject[lab] != subject[a]) & (expr[lab] == expr[a])]
            if not same.size or not other.size:
                continue
            elsewhere = same[video[same] != video[a]]
            same_video += not elsewhere.size
            p = rng.choice(elsewhere if elsewhere.size else same)
            q = rng.choice(other)
            d_same.append(1 - float(emb[a] @ emb[p]))
            d_other.append(1 - float(emb[a] @ emb[q]))
    ds, do = np.asarray(d_same), np.asarray(d_other)
    k = len(ds)
    return PairCheck(triplets=k, same_person_other_expr=float(ds.mean()) if k else math.nan,
                     other_person_same_expr=float(do.mean()) if k else math.nan,
                     ordered_right=float((ds < do).mean()) if k else math.nan,
                     same_person_same_video=same_video / k if k else math.nan,
                     subjects=int(len(set(subject[lab].tolist()))))


def embed_fn(model: nn.Module, device: str | torch.device = "cpu") -> Embed:
    def fn(images: torch.Tensor) -> torch.Tensor:
        return model(images.to(device))
    return fn


@dataclass
class IdentityTrainResult:
    out: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    val_check: PairCheck | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Horizontal flip, a shift of up to 1/12 of the size (as a detector's box moves), and a
    brightness gain and colour tint per face in the ranges the synthetic scenes light each
    video with (gain 0.8-1.15, each channel 0.92-1.08): one person's videos differ by exactly
    that, so without it the embedding reads the video's light as part of the skin colour."""
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, h // 12)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
    x = padded[:, :, dy:dy + h, dx:dx + w]
    gain = (0.8 + 0.35 * torch.rand(b, 1, 1, 1, generator=g)) * (0.92 + 0.16 * torch.rand(b, 3, 1, 1, generator=g))
    return (x.float() * gain).clamp(0, 255).round().to(torch.uint8)


def train_identity(train: Faces, val: Faces, out: str | Path, cfg: IdentityConfig | None = None,
                   device: str = "cpu") -> IdentityTrainResult:
    """Train the embedding on ``train``'s subjects; keep the epoch whose embedding best orders
    :func:`pair_check` triplets of ``val``'s subjects (people it never saw; the last epoch where
    ``val`` forms no triplet, e.g. one person); ``out`` gets the checkpoint (kind ``identity``)."""
    cfg = cfg or IdentityConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    names = sorted(set(train.subject.tolist()))
    if len(names) < 2:
        raise ValueError(f"an identity embedding needs at least 2 training subjects, got {len(names)}")
    y = torch.tensor([names.index(s) for s in train.subject], dtype=torch.long)
    net = IdentityNet(cfg).to(device)
    classes = nn.Parameter(torch.randn(len(names), cfg.dim, generator=g) * 0.1)
    opt = torch.optim.Adam([*net.parameters(), classes], lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = IdentityTrainResult(out)
    t0, best = time.perf_counter(), -1.0
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(train), generator=g)
        total, seen = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:
                continue
            x = _augment(train.images[idx], g).to(device)
            cos = net(x) @ F.normalize(classes, dim=1).T.to(device)
            target = y[idx].to(device)
            logits = cfg.scale * (cos - cfg.margin * F.one_hot(target, len(names)))
            loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        net.eval()
        check = pair_check(apply(embed_fn(net, device), val.images), val.subject, val.video, val.expr, seed=epoch)
        result.history.append({"epoch": epoch + 1, "loss": round(total / max(seen, 1), 4),
                               "val_ordered_right": round(check.ordered_right, 4)})
        if math.isnan(check.ordered_right) or check.ordered_right > best:  # no triplets in val: keep the last
            best, result.best_epoch, result.val_check = check.ordered_right, epoch + 1, check
            save_checkpoint(out, {"kind": "identity", "config": asdict(cfg), "model": net.state_dict(),
                                  "subjects": names, "epoch": epoch + 1, "val_check": check.to_dict(),
                                  "image_size": int(train.images.shape[-1])})
    result.seconds = round(time.perf_counter() - t0, 1)
    return result


def load_identity(path: str | Path, device: str | torch.device = "cpu") -> tuple[IdentityNet, dict[str, Any]]:
    state = load_checkpoint(Path(path), map_location=device)
    if state.get("kind") != "identity":
        raise CheckpointError(f"{path}: a {state.get('kind')} checkpoint, not an identity embedding")
    net = IdentityNet(IdentityConfig(**state["config"]))
    net.load_state_dict(state["model"])
    return net.to(device).eval(), state


# ----------------------------------------------------------------------------- KID


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x . y / d + 1) ** 3``, the kernel of KID."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between samples ``x`` (m, d) and ``y`` (n, d) with the cubic kernel."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


@dataclass(frozen=True)
class Kid:
    """KID over ``subsets`` random subsets of ``subset_size`` faces from each side: the mean,
    their standard deviation, and the 2.5 and 97.5 percentiles (the spread of one estimate
    at that subset size: wider than an interval for the mean)."""

    mean: float
    std: float
    interval: tuple[float, float]
    subsets: int
    subset_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kid(x: np.ndarray, y: np.ndarray, *, subsets: int = 50, subset_size: int = 100, seed: int = 0) -> Kid:
    """KID between feature sets ``x`` and ``y`` (rows are faces)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 faces a side, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    vals = np.array([mmd2_unbiased(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
                     for _ in range(subsets)])
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return Kid(float(vals.mean()), float(vals.std(ddof=1)) if subsets > 1 else 0.0, (float(lo), float(hi)),
               subsets, m)


__all__ = [
    "Faces",
    "IdentityConfig",
    "IdentityNet",
    "IdentityTrainResult",
    "Kid",
    "PairCheck",
    "RandomFeatures",
    "apply",
    "embed_fn",
    "kid",
    "load_faces",
    "load_identity",
    "mmd2_unbiased",
    "pair_check",
    "polynomial_kernel",
    "train_identity",
]
