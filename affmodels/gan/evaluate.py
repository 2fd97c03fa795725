"""Scoring a GAN: do its faces show their targets, do they stay the same person, do they look real?

Every figure is computed for three generators on the same sources and the same targets, so each
says what it means: the trained generator; an untrained one (same architecture, fresh weights);
and **copy**, which returns its input unchanged (perfect identity and realism, no target affect).

- *Target affect*: a separately trained multi-task network (the *evaluator*) looks at generated
  faces: CCC of its valence and arousal to the target's, its AU F1 against the target AUs, its
  expression accuracy and macro-F1 against the target class (targets' classes are uniform over
  the classes that occur, so chance is 1 / number of classes).
- *Identity* (with an identity network, :mod:`affmodels.gan.identity`): the embedding distance
  from each generated face to its source; ``verified``, the share of generated faces closer to
  another real face of their source's person (from another video where there is one) than to a
  real face of another person; ``identified``, the share whose nearest person centroid (built
  from the real reference faces) is their source's person. The same ordering check on real
  faces (``identity_check``) is the ceiling and proves the embedding measures identity.
- *Realism*: KID between generated faces and real reference faces (test faces that were not
  used as sources) in the identity network's trunk features and in a fixed random network's.
- ``evaluator_feature_ratio`` (the earlier "identity ratio": the evaluator-feature distance to
  the source over the distance between faces of different videos) is kept for comparison; it
  measures expression more than identity (``evaluator_feature_check`` shows it).

The discriminator is also scored as a recogniser with the multi-task metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from affmodels.checkpoint import CheckpointError, load_gan, load_model
from affmodels.data import load_manifest
from affmodels.evaluate import evaluate_model
from affmodels.gan.discriminator import Recognizer
from affmodels.gan.generator import Generated, Generator, GeneratorConfig, to_float01, to_uint8
from affmodels.gan.identity import (
    Faces,
    Kid,
    PairCheck,
    RandomFeatures,
    apply,
    kid,
    load_faces,
    load_identity,
    pair_check,
)
from affmodels.gan.targets import Target, TargetSampler, label_arrays, observed_classes, sample_targets
from affmodels.metrics import ccc, f1_binary, macro_f1


class CopyGenerator(nn.Module):
    """The copy-the-input baseline: every target gets the source face back, unchanged."""

    def forward(self, images: torch.Tensor, cond: torch.Tensor) -> Generated:
        x = to_float01(images)
        return Generated(x, torch.ones_like(x[:, :1]), x)


@dataclass(frozen=True)
class IdentityScores:
    """Identity of generated faces in the identity embedding (distances are 1 - cosine)."""

    own_distance: float  # generated face to its source
    same_person_distance: float  # generated face to another real face of the source's person
    other_person_distance: float  # generated face to a real face of another person
    verified: float  # share with same_person < other_person (real faces: PairCheck.ordered_right)
    identified: float  # share whose nearest person centroid is the source's person
    chance: float  # 1 / persons among the reference faces


@dataclass(frozen=True)
class GeneratorScores:
    """How well one generator's faces show their targets, keep the person and look real."""

    faces: int
    ccc_valence: float
    ccc_arousal: float
    au_f1_mean: float
    expr_accuracy: float
    expr_f1_macro: float
    expr_chance: float  # 1 / classes drawn as targets
    evaluator_feature_ratio: float  # the earlier "identity ratio": measures expression, see module doc
    identity: IdentityScores | None
    kid_identity: Kid | None  # KID in the identity network's trunk features
    kid_random: Kid  # KID in a fixed random network's features


@dataclass(frozen=True)
class GanEvaluation:
    """``evaluate_gan``: three generators (trained, untrained, copy), the checks that say whether
    the identity measure measures identity, and D as a recogniser."""

    trained: GeneratorScores
    untrained: GeneratorScores
    copy: GeneratorScores
    identity_check: PairCheck | None  # real faces, identity embedding
    evaluator_feature_check: PairCheck  # real faces, evaluator trunk features
    discriminator: dict[str, float]  # the multi-task figures of ``evaluate_model``
    sources: int
    reference: int  # real faces KID and identity compare against (not sources)
    subjects: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def generate_faces(G: nn.Module, images: torch.Tensor, target: Target, *, batch_size: int = 64,
                   device: str = "cpu") -> torch.Tensor:
    """uint8 faces drawn by ``G`` from ``images`` for ``target`` (row by row), on the CPU."""
    out = []
    for i in range(0, len(images), batch_size):
        t = target[i:i + batch_size].to(device)
        out.append(to_uint8(G(images[i:i + batch_size].to(device), t.condition()).image).cpu())
    return torch.cat(out)


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def identity_scores(gen: np.ndarray, src: np.ndarray, src_subject: np.ndarray, ref: np.ndarray,
                    ref_subject: np.ndarray, ref_video: np.ndarray, src_video: np.ndarray,
                    seed: int = 0) -> IdentityScores:
    """Identity figures from L2-normalised embeddings of generated faces, their sources and real
    reference faces (none of them a source)."""
    rng = np.random.default_rng(seed)
    own = 1 - (gen * src).sum(1)
    people = sorted(set(ref_subject.tolist()))
    centroids = _normalized(np.stack([ref[ref_subject == p].mean(0) for p in people]))
    nearest = np.asarray(people, dtype=object)[(gen @ centroids.T).argmax(1)]
    same_d, other_d = [], []
    for i in range(len(gen)):
        same = np.flatnonzero(ref_subject == src_subject[i])
        other = np.flatnonzero(ref_subject != src_subject[i])
        if not same.size or not other.size:
            continue
        elsewhere = same[ref_video[same] != src_video[i]]
        p, q = rng.choice(elsewhere if elsewhere.size else same), rng.choice(other)
        same_d.append(1 - float(gen[i] @ ref[p]))
        other_d.append(1 - float(gen[i] @ ref[q]))
    sd, od = np.asarray(same_d), np.asarray(other_d)
    return IdentityScores(own_distance=float(own.mean()), same_person_distance=float(sd.mean()) if sd.size else np.nan,
                          other_person_distance=float(od.mean()) if od.size else np.nan,
                          verified=float((sd < od).mean()) if sd.size else np.nan,
                          identified=float((nearest == src_subject).mean()),
                          chance=1.0 / max(len(people), 1))


@torch.no_grad()
def _score(G: nn.Module, E: nn.Module, sources: Faces, reference: Faces, target: Target, classes: torch.Tensor,
           spaces: dict[str, Any], *, batch_size: int, seed: int, device: str) -> GeneratorScores:
    fakes = generate_faces(G, sources.images, target, batch_size=batch_size, device=device)
    va_p, au_p, ex_p, f_gen = [], [], [], []
    for i in range(0, len(fakes), batch_size):
        x = fakes[i:i + batch_size].to(device)
        f = E.forward_features(x)
        pred = E.forward_head(f)
        va_p.append(pred.va.float().cpu().numpy())
        au_p.append((pred.au_logits >= 0).cpu().numpy())
        ex_p.append(pred.expr_logits.argmax(1).cpu().numpy())
        f_gen.append(F.normalize(f.float(), dim=1).cpu().numpy())
    va_p, au_p, ex_p = np.concatenate(va_p), np.concatenate(au_p), np.concatenate(ex_p)
    va_t, au_t, ex_t = target.va.numpy(), target.au.numpy() > 0.5, target.expr.numpy()
    au_f1 = [f1_binary(au_t[:, k], au_p[:, k]) for k in range(au_t.shape[1])]
    f_src = spaces["evaluator_src"]
    own = float((1 - (np.concatenate(f_gen) * f_src).sum(1)).mean())
    other = _other_face_distance(f_src, list(sources.video))
    ident = kid_id = None
    if "identity" in spaces:
        emb, net = spaces["identity"], spaces["identity_net"]
        gen_emb = apply(lambda x: net(x.to(device)), fakes)
        ident = identity_scores(gen_emb, emb["src"], sources.subject, emb["ref"], reference.subject, reference.video,
                                sources.video, seed=seed)
        kid_id = kid(apply(lambda x: net.features(x.to(device)), fakes), emb["ref_features"], seed=seed,
                     **spaces["kid"])
    kid_rand = kid(apply(lambda x: spaces["random_net"](x.to(device)), fakes), spaces["random_ref"], seed=seed,
                   **spaces["kid"])
    return GeneratorScores(
        faces=int(len(fakes)),
        ccc_valence=float(ccc(va_p[:, 0], va_t[:, 0])), ccc_arousal=float(ccc(va_p[:, 1], va_t[:, 1])),
        au_f1_mean=float(np.nanmean(au_f1)) if au_f1 else float("nan"),
        expr_accuracy=float((ex_t == ex_p).mean()) if len(ex_t) else float("nan"),
        expr_f1_macro=float(macro_f1(ex_t, ex_p)) if len(ex_t) else float("nan"),
        expr_chance=1.0 / max(len(classes), 1),
        evaluator_feature_ratio=own / other if other > 0 else float("nan"),
        identity=ident, kid_identity=kid_id, kid_random=kid_rand,
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


def split_sources(faces: Faces, n: int, seed: int) -> tuple[Faces, Faces]:
    """``n`` sources drawn at random and the rest as the real reference (at least as many
    reference faces as sources where the export allows: KID and identity need both)."""
    n = min(n, len(faces) // 2)
    order = np.random.default_rng(seed).permutation(len(faces))
    return faces.take(order[:n]), faces.take(order[n:])


def evaluate_gan(checkpoint: str | Path, evaluator: str | Path, data: str | Path, *, identity: str | Path | None = None,
                 n: int = 256, batch_size: int = 64, seed: int = 0, device: str = "cpu",
                 kid_subsets: int = 50, kid_subset_size: int = 100) -> GanEvaluation:
    """Figures for the trained generator, an untrained one and the copy baseline on ``data``
    (meant to be test subjects that neither the GAN, the evaluator nor the identity network saw),
    the checks of the measures on real faces, and the discriminator as recogniser."""
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
    faces = load_faces(data)
    sources, reference = split_sources(faces, n, seed)
    target = sample_targets(sampler, len(sources), classes, torch.Generator().manual_seed(seed))

    def e_feats(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(E.forward_features(x.to(device)).float(), dim=1)

    random_net = RandomFeatures(seed=0).to(device)
    spaces: dict[str, Any] = {
        "evaluator_src": apply(e_feats, sources.images), "random_net": random_net,
        "random_ref": apply(lambda x: random_net(x.to(device)), reference.images),
        "kid": {"subsets": kid_subsets, "subset_size": kid_subset_size}}
    id_check = None
    if identity is not None:
        net, id_state = load_identity(identity, device)
        if id_state["image_size"] != state["image_size"]:
            raise CheckpointError(f"{identity} was trained on {id_state['image_size']} px faces, the GAN draws "
                                  f"{state['image_size']} px")
        spaces["identity_net"] = net
        spaces["identity"] = {"src": apply(lambda x: net(x.to(device)), sources.images),
                              "ref": apply(lambda x: net(x.to(device)), reference.images),
                              "ref_features": apply(lambda x: net.features(x.to(device)), reference.images)}
        id_check = pair_check(apply(lambda x: net(x.to(device)), faces.images), faces.subject, faces.video,
                              faces.expr, seed=seed)
    e_check = pair_check(apply(e_feats, faces.images), faces.subject, faces.video, faces.expr, seed=seed)
    common = dict(batch_size=batch_size, seed=seed, device=device)
    return GanEvaluation(
        trained=_score(G, E, sources, reference, target, classes, spaces, **common),
        untrained=_score(untrained, E, sources, reference, target, classes, spaces, **common),
        copy=_score(CopyGenerator(), E, sources, reference, target, classes, spaces, **common),
        identity_check=id_check, evaluator_feature_check=e_check,
        discriminator={k: v for k, v in evaluate_model(Recognizer(D), data, batch_size=batch_size,
                                                       device=device).items() if isinstance(v, (int, float))},
        sources=len(sources), reference=len(reference), subjects=int(len(set(faces.subject.tolist()))),
    )
