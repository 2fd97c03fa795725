"""The temporal model (cnn-gru): per-frame trunk, a GRU over each window, the heads per frame,
and the masked losses per frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affmodels.errors import ConfigError
from affmodels.losses import multitask_loss
from affmodels.model import ModelConfig, MultiTaskNet, parse_kind
from affmodels.predict import WindowedFrames

T = 4


def small_gru(**kw) -> MultiTaskNet:
    torch.manual_seed(0)
    return MultiTaskNet(ModelConfig(trunk="cnn", temporal="gru", window=T, gru_hidden=6, n_aus=5, n_classes=4,
                                    width=8, **kw)).eval()


def test_kinds_and_config_are_checked() -> None:
    assert parse_kind("cnn-gru") == ("cnn", "gru") and parse_kind("vgg") == ("vgg", None)
    assert ModelConfig(temporal="gru", window=8).kind == "cnn-gru" and ModelConfig().kind == "cnn"
    with pytest.raises(ConfigError, match="unknown model 'cnn-lstm'"):
        parse_kind("cnn-lstm")
    with pytest.raises(ConfigError, match="needs a temporal model"):
        ModelConfig(window=8)
    with pytest.raises(ConfigError, match="unknown temporal"):
        ModelConfig(temporal="lstm", window=8)


def test_windows_flat_or_stacked_give_per_frame_predictions() -> None:
    model = small_gru()
    images = torch.randint(0, 256, (3 * T, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        flat = model(images)
        stacked = model(images.view(3, T, 3, 32, 32))
    assert flat.va.shape == (3 * T, 2) and flat.au_logits.shape == (3 * T, 5) and flat.expr_logits.shape == (3 * T, 4)
    for x, y in zip(flat, stacked):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="not whole windows of 4"):
        model(images[:5])


def test_a_frame_depends_on_its_past_in_the_window_only() -> None:
    """Windows are independent, and (causal GRU) changing later frames, as padding does, leaves
    the earlier frames' outputs unchanged, while a change in the past does move them."""
    model = small_gru()
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2 * T, 3, 32, 32), dtype=torch.uint8, generator=g)
    later, earlier, other = images.clone(), images.clone(), images.clone()
    later[2:T] = later[1]  # window 0 padded after its frame 1 with copies of it
    earlier[0] = 255 - earlier[0]
    other[T:] = 0  # window 1 only
    with torch.no_grad():
        base, a, b, c = model(images), model(later), model(earlier), model(other)
    assert torch.allclose(base.va[:2], a.va[:2], atol=1e-6) and torch.allclose(base.au_logits[:2], a.au_logits[:2], atol=1e-6)
    assert not torch.allclose(base.va[1], b.va[1])  # frame 1 sees frame 0 through the GRU
    assert torch.allclose(base.va[:T], c.va[:T], atol=1e-6)  # window 0 does not see window 1


@pytest.mark.parametrize("task", ["va", "au", "expr"])
def test_unlabelled_frames_give_zero_gradient(make_batch, task: str) -> None:
    """Per-frame masked losses through the GRU: an unlabelled frame's outputs get exactly zero
    gradient, and its label, whatever it is, changes neither the loss nor any parameter's gradient."""
    model = small_gru().train()
    for m in model.modules():  # dropout and batch statistics off, so two passes are the same function
        if isinstance(m, (torch.nn.Dropout, torch.nn.BatchNorm2d)):
            m.eval()
    batch = make_batch(b=2 * T, seed=3)
    i = 5  # a frame in the middle of window 1
    key = {"va": "va_mask", "au": "au_mask", "expr": "expr_mask"}[task]
    batch[key][i] = False
    if task == "expr":
        batch["expr"][i] = -1

    def grads(b: dict) -> tuple:
        model.zero_grad()
        pred = model(b["image"])
        for t in pred:
            t.retain_grad()
        total, _ = multitask_loss(pred, b)
        total.backward()
        return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, pred

    loss, g1, pred = grads(batch)
    out = {"va": pred.va, "au": pred.au_logits, "expr": pred.expr_logits}[task]
    assert torch.equal(out.grad[i], torch.zeros_like(out.grad[i]))
    assert out.grad.abs().sum() > 0
    assert g1["temporal.gru.weight_hh_l0"].abs().sum() > 0  # the GRU does train
    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    changed[task][i] = {"va": torch.tensor([0.9, -0.9]), "au": torch.ones(5), "expr": torch.tensor(3)}[task]
    loss2, g2, _ = grads(changed)
    assert torch.equal(loss, loss2)
    for name in g1:
        assert torch.equal(g1[name], g2[name]), name


def test_windowed_frames_predict_every_frame_once_from_its_first_window() -> None:
    """A video's frames fed in chunks: one output per frame, equal to running the model on the
    frame's first window (the rule the export's overlapping windows follow)."""
    model = small_gru()
    g = np.random.default_rng(0)
    frames = [g.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(11)]
    with torch.no_grad():
        run = WindowedFrames(model, T, 2, "cpu")
        outs = run.feed(frames[:5]) + run.feed(frames[5:7]) + run.feed(frames[7:]) + run.finish()
        va = torch.cat([o.va for o in outs])
        assert len(va) == 11

        def window(a: int) -> torch.Tensor:
            w = frames[a:a + T]
            w = w + [w[-1]] * (T - len(w))
            return model(torch.from_numpy(np.stack(w)).permute(0, 3, 1, 2)).va

        # anchors 0, 2, 4, 6, 8: frame r comes from window max(0, ceil((r - T + 1) / 2))
        for r in range(11):
            a = 2 * max(0, -(-(r - T + 1) // 2))
            assert torch.allclose(va[r], window(a)[r - a], atol=1e-6), r
        short = WindowedFrames(model, T, 2, "cpu")
        assert sum(len(o.va) for o in short.feed(frames[:3]) + short.finish()) == 3
