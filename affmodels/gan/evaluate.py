"""Scoring a GAN: do its faces show their targets, and do they stay the same person?

A separately trained multi-task network (the *evaluator*) looks at generated faces: CCC of its
valence and arousal to the target's, its AU F1 against the target AUs, its expression accuracy
and macro-F1 against the target class (targets' classes are uniform over the classes that occur,
so chance is 1 / number of classes).
Identity: the distance (1 - cosine similarity) between the evaluator's trunk features of the
source face and of the face generated from it, divided by the same distance between two
different source faces; below 1, the generated face is closer to its source than other faces
are. The same figures for an untrained generator (same architecture, fresh weights) show what
training bought. The discriminator is also scored as a recogniser with the multi-task metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from affmodels.checkpoint import CheckpointError, load_gan, load_model
from affmodels.data import AffectStream, load_manifest
from affmodels.evaluate import evaluate_model
from affmodels.gan.discriminator import Recognizer
from affmodels.gan.generator import Generator, GeneratorConfig, to_uint8
from affmodels.gan.targets import TargetSampler, label_arrays, observed_classes, sample_targets
from affmodels.metrics import ccc, f1_binary, macro_f1


@dataclass(frozen=True)
class GeneratorScores:
    """How well one generator's faces show their targets, as the evaluator sees them."""

    faces: int
    ccc_valence: float
    ccc_arousal: float
    au_f1_mean: float
    expr_accuracy: float
    expr_f1_macro: float
    expr_chance: float  # 1 / classes drawn as targets
    identity_distance: float
    other_face_distance: float
    identity_ratio: float  # identity_distance / other_face_distance; below 1: the person stays


@dataclass(frozen=True)
class GanEvaluation:
    """``evaluate_gan``: the trained generator, an untrained one, and D as a recogniser."""

    trained: GeneratorScores
    untrained: GeneratorScores
    discriminator: dict[str, float]  # the multi-task figures of ``evaluate_model``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def _score_generator(G: Generator, E: torch.nn.Module, data: Path, sampler: TargetSampler, classes: torch.Tensor,
                     *, n: int, batch_size: int, seed: int, device: str) -> GeneratorScores:
    g = torch.Generator().manual_seed(seed)
    va_t, va_p, au_t, au_p, ex_t, ex_p, own, feats, videos = [], [], [], [], [], [], [], [], []
    seen = 0
    sources = AffectStream(data, shuffle=True, seed=seed, batch_size=batch_size, rank=0, world_size=1)
    for batch in sources:  # shuffled: the sources come from across the export, not one video
        x = batch["image"][: n - seen].to(device)
        target = sample_targets(sampler, len(x), classes, g)
        fake = to_uint8(G(x, target.to(device).condition()).image)
        pred = E(fake)
        va_t.append(target.va.numpy())
        va_p.append(pred.va.float().cpu().numpy())
        au_t.append(target.au.numpy() > 0.5)
        au_p.append((pred.au_logits >= 0).cpu().numpy())
        ex_t.append(target.expr.numpy())
        ex_p.append(pred.expr_logits.argmax(1).cpu().numpy())
        f_src = F.normalize(E.forward_features(x).float(), dim=1)
        f_gen = F.normalize(E.forward_features(fake).float(), dim=1)
        own.append((1 - (f_src * f_gen).sum(1)).cpu().numpy())
        feats.append(f_src.cpu().numpy())
        videos += list(batch["video"][: len(x)])
        seen += len(x)
        if seen >= n:
            break
    va_t, va_p = np.concatenate(va_t), np.concatenate(va_p)
    au_t, au_p = np.concatenate(au_t), np.concatenate(au_p)
    ex_t, ex_p = np.concatenate(ex_t), np.concatenate(ex_p)
    au_f1 = [f1_binary(au_t[:, k], au_p[:, k]) for k in range(au_t.shape[1])]
    own_d, other_d = float(np.concatenate(own).mean()), _other_face_distance(np.concatenate(feats), videos)
    return GeneratorScores(
        faces=int(len(ex_t)),
        ccc_valence=float(ccc(va_p[:, 0], va_t[:, 0])), ccc_arousal=float(ccc(va_p[:, 1], va_t[:, 1])),
        au_f1_mean=float(np.nanmean(au_f1)) if au_f1 else float("nan"),
        expr_accuracy=float((ex_t == ex_p).mean()) if len(ex_t) else float("nan"),
        expr_f1_macro=float(macro_f1(ex_t, ex_p)) if len(ex_t) else float("nan"),
        expr_chance=1.0 / max(len(classes), 1),
        identity_distance=own_d, other_face_distance=other_d,
        identity_ratio=own_d / other_d if other_d > 0 else float("nan"),
    )


def _other_face_distance(feats: np.ndarray, videos: list[str]) -> float:
    """Mean feature distance between each source and a source from another video."""
    n, dists = len(feats), []
    for i in range(n):
        for step in range(1, n):
            j = (i + n // 2 + step) % n
            if videos[j] != videos[i]:
                dists.append(1 - float(feats[i] @ feats[j]))
                break
    return float(np.mean(dists)) if dists else float("nan")


def evaluate_gan(checkpoint: str | Path, evaluator: str | Path, data: str | Path, *, n: int = 256,
                 batch_size: int = 64, seed: int = 0, device: str = "cpu") -> GanEvaluation:
    """Figures for the trained generator, an untrained one, and the discriminator as recogniser."""
    G, D, state = load_gan(checkpoint, device)
    E, e_state = load_model(evaluator, device)
    if state["vocabulary"] != e_state["vocabulary"]:
        raise CheckpointError(f"{evaluator} recognises {e_state['vocabulary']}, the GAN draws {state['vocabulary']}")
    if state["image_size"] != e_state["model_config"]["image_size"]:
        raise CheckpointError(f"the GAN draws {state['image_size']} px faces, {evaluator} reads "
                              f"{e_state['model_config']['image_size']} px")
    manifest = load_manifest(data)
    labels = label_arrays(manifest)
    sampler = TargetSampler(labels["va"], labels["au"], labels["au_mask"], labels["expr"], labels["expr_mask"],
                            n_classes=len(state["vocabulary"]["expressions"]), va_mask=labels["va_mask"])
    torch.manual_seed(seed)
    untrained = Generator(GeneratorConfig(**state["generator_config"])).to(device).eval()
    classes = observed_classes(labels)
    common = dict(n=n, batch_size=batch_size, seed=seed, device=device)
    return GanEvaluation(
        trained=_score_generator(G, E, Path(data), sampler, classes, **common),
        untrained=_score_generator(untrained, E, Path(data), sampler, classes, **common),
        discriminator={k: v for k, v in evaluate_model(Recognizer(D), data, batch_size=batch_size,
                                                       device=device).items() if isinstance(v, (int, float))},
    )
