"""The GAN's judges: KID against a plain reference, and the identity embedding on synthetic people.

The identity test draws the synthetic release's people with its own face renderer
(:class:`affdata.synthetic.face.FaceFrame`, expression prototypes of
:mod:`affdata.synthetic.affect`) on random backgrounds, trains the embedding on 16 people and
checks it on 5 others: the same person with another expression must be closer than another
person with the same expression. It fails for an embedding that reads expression (or nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from affdata.synthetic.affect import PROTOTYPES, RENDER_AUS, VA_MEANS
from affdata.synthetic.face import FaceFrame, sample_identity
from affmodels.gan.evaluate import CopyGenerator, identity_scores
from affmodels.gan.identity import (
    Faces,
    IdentityConfig,
    RandomFeatures,
    apply,
    embed_fn,
    kid,
    load_identity,
    mmd2_unbiased,
    pair_check,
    train_identity,
)

EXPRESSIONS = (0, 1, 2, 3, 4, 5, 6)


def mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as the sums of its definition."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_equals_the_definition() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(13, 5)), rng.normal(0.3, 1.2, size=(17, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_reference(x, y), rel=1e-10, abs=1e-12)
    assert mmd2_unbiased(x, x[::-1]) == pytest.approx(mmd2_reference(x, x[::-1]), abs=1e-12)


def test_kid_is_about_zero_for_one_distribution_and_not_for_two() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 32)), rng.normal(size=(600, 32))
    same = kid(a, b, subsets=40, subset_size=100)
    shifted = kid(a, rng.normal(0.5, 1.0, size=(600, 32)), subsets=40, subset_size=100)
    assert abs(same.mean) < 3 * same.std / np.sqrt(same.subsets) + 1e-3
    assert same.interval[0] < 0 < same.interval[1]
    assert shifted.interval[0] > same.interval[1] and shifted.mean > 20 * abs(same.mean)
    assert kid(a, b, subsets=5, subset_size=50, seed=3) == kid(a, b, subsets=5, subset_size=50, seed=3)


def test_pair_check_orders_triplets() -> None:
    # embedding = person direction + a little expression: ordered right everywhere
    rng = np.random.default_rng(2)
    subj = np.repeat(np.arange(4), 14).astype(str).astype(object)
    expr = np.tile(np.arange(7), 8)
    video = np.array([f"{s}_{i % 2}" for i, s in enumerate(subj)], dtype=object)
    person, face = rng.normal(size=(4, 16)), rng.normal(size=(7, 16))
    good = np.stack([person[int(s)] + 0.2 * face[e] for s, e in zip(subj, expr)])
    bad = np.stack([0.2 * person[int(s)] + face[e] for s, e in zip(subj, expr)])
    norm = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)  # noqa: E731
    g, b = pair_check(norm(good), subj, video, expr, n=56), pair_check(norm(bad), subj, video, expr, n=56)
    assert g.triplets == 56 and g.ordered_right == 1.0 and g.same_person_other_expr < g.other_person_same_expr
    assert b.ordered_right == 0.0 and b.same_person_other_expr > b.other_person_same_expr
    assert g.same_person_same_video == 0.0 and g.subjects == 4


def draw_people(first: int, people: int, per_person: int, seed: int, size: int = 48) -> Faces:
    """``per_person`` faces of each of ``people`` synthetic identities (the release's draw, seed
    ``seed``), each with a random expression prototype, VA near the class mean, a random
    background, position and scale: a stand-in for an export's crops."""
    from affdata.synthetic.plan import STREAM_IDENTITY, rng_for

    rng = np.random.default_rng([seed, first])
    ss, images, subject, expr, video = 4, [], [], [], []
    for s in range(first, first + people):
        ident = sample_identity(rng_for(seed, STREAM_IDENTITY, s))
        for k in range(per_person):
            e = EXPRESSIONS[k % len(EXPRESSIONS)] if k < len(EXPRESSIONS) else int(rng.choice(EXPRESSIONS))
            img = Image.new("RGB", (size * ss, size * ss), tuple(int(c) for c in rng.uniform(40, 220, 3)))
            draw = ImageDraw.Draw(img)
            au = np.zeros(len(RENDER_AUS), np.float32)
            for a, v in PROTOTYPES[e].items():
                au[RENDER_AUS.index(a)] = v * rng.uniform(0.8, 1.0)
            va = np.clip(np.asarray(VA_MEANS[e]) + rng.normal(0, 0.1, 2), -1, 1)
            h = size * ss * rng.uniform(0.72, 0.82)
            face = FaceFrame(draw, ident, size * ss / 2 + rng.normal(0, 2 * ss), size * ss / 2 + rng.normal(0, 2 * ss),
                             h, float(rng.normal(0, 0.04)))
            face.render(au, float(va[0]), float(va[1]), 0.6 if e == 7 else 0.0, 0.0,
                        tuple(float(c) for c in rng.uniform(30, 200, 3)))
            images.append(np.asarray(img.reduce(ss)))
            subject.append(f"p{s}")
            expr.append(e)
            video.append(f"p{s}_{k % 3}")
    n = len(subject)
    return Faces(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), np.asarray(subject, object),
                 np.asarray(video, object), np.asarray(expr, np.int64), np.full((n, 2), np.nan, np.float32),
                 np.full((n, 0), np.nan, np.float32))


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    torch.set_num_threads(1)
    train, val = draw_people(1, 16, 40, seed=11), draw_people(101, 4, 21, seed=11)
    out = tmp_path_factory.mktemp("identity") / "identity.pt"
    result = train_identity(train, val, out, IdentityConfig(width=8, dim=32, epochs=4, batch_size=64))
    return out, result


def test_identity_embedding_orders_unseen_people_by_person_not_expression(identity) -> None:
    out, result = identity
    net, state = load_identity(out)
    assert state["epoch"] == result.best_epoch and len(state["subjects"]) == 16
    test = draw_people(201, 5, 21, seed=11)  # five people neither training nor selection saw
    check = pair_check(apply(embed_fn(net), test.images), test.subject, test.video, test.expr, n=105)
    print(result.history, check)
    assert check.triplets >= 100
    assert check.same_person_other_expr < check.other_person_same_expr
    assert check.ordered_right >= 0.8
    # raw pixels order these triplets far worse: the check is not trivially passed
    pixels = test.images.flatten(1).double()
    pixels = (pixels - pixels.mean(0)).numpy()
    pixels /= np.linalg.norm(pixels, axis=1, keepdims=True)
    assert pair_check(pixels, test.subject, test.video, test.expr, n=105).ordered_right < check.ordered_right - 0.1


def test_copy_baseline_keeps_identity_and_reads_as_real(identity) -> None:
    net, _ = load_identity(identity[0])
    faces = draw_people(301, 4, 24, seed=11)
    src, ref = faces.take(np.arange(0, 96, 2)), faces.take(np.arange(1, 96, 2))
    copies = (CopyGenerator()(src.images, torch.zeros(len(src), 3)).image * 255).round().to(torch.uint8)
    assert torch.equal(copies, src.images)
    e = embed_fn(net)
    s = identity_scores(apply(e, copies), apply(e, src.images), src.subject, apply(e, ref.images), ref.subject,
                        ref.video, src.video)
    assert s.own_distance == pytest.approx(0, abs=1e-6) and s.identified >= 0.9 and s.chance == 0.25
    noise = torch.randint(0, 256, src.images.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rand = RandomFeatures(seed=0)
    real = kid(apply(rand, copies), apply(rand, ref.images), subsets=20, subset_size=40)
    fake = kid(apply(rand, noise), apply(rand, ref.images), subsets=20, subset_size=40)
    assert fake.mean > 10 * max(real.mean, 1e-4) and fake.interval[0] > real.interval[1]
