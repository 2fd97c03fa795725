from __future__ import annotations

import pytest
import torch

from affmodels import AffectMetrics, ModelConfig, MultiTaskNet, multitask_loss


@pytest.mark.parametrize("trunk", ["cnn", "vgg"])
def test_few_steps_reduce_the_loss(make_batch, trunk):
    """Memorising one fixed batch: every task's loss must fall, through the masks."""
    torch.manual_seed(0)
    width, lr, steps = {"cnn": (8, 3e-3, 25), "vgg": (8, 1e-3, 40)}[trunk]  # no BN in VGG: gentler
    model = MultiTaskNet(
        ModelConfig(trunk=trunk, n_aus=5, n_classes=4, width=width, fc_dim=32, dropout=0.0)
    ).train()
    batch = make_batch(b=16, size=32, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        total, parts = multitask_loss(model(batch["image"]), batch)
        first = first or {k: v.item() for k, v in parts.items()} | {"total": total.item()}
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():
        total, parts = multitask_loss(model(batch["image"]), batch)
    assert total.item() < 0.7 * first["total"], (first, total.item())
    for k, v in parts.items():
        assert v.item() < first[k], (k, first[k], v.item())


def test_learns_a_synthetic_signal_within_seconds():
    """Labels written into the images (a bright square whose position is the class, the
    brightness of one channel the valence): a second of CPU must get all three tasks right
    on held-out images, through the real loss, model and metrics."""
    g = torch.Generator().manual_seed(0)
    n, c, size = 512, 4, 48
    expr = torch.randint(0, c, (n,), generator=g)
    valence = torch.rand(n, generator=g) * 2 - 1
    images = (torch.rand(n, 3, size, size, generator=g) * 80).to(torch.uint8)
    for i in range(n):
        r, q = divmod(int(expr[i]), 2)
        images[i, :, r * 24 + 4 : r * 24 + 20, q * 24 + 4 : q * 24 + 20] = 200
    images[:, 2] = images[:, 2] // 2 + ((valence + 1) * 60).to(torch.uint8)[:, None, None]
    batch_all = {
        "image": images,
        "va": torch.stack([valence, torch.zeros(n)], 1),
        "va_mask": torch.ones(n, dtype=torch.bool),
        "au": (expr[:, None] == torch.arange(c)).float(),  # AU j on iff class j
        "au_mask": torch.ones(n, c, dtype=torch.bool),
        "expr": expr,
        "expr_mask": torch.ones(n, dtype=torch.bool),
    }
    torch.manual_seed(0)
    model = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=c, n_classes=c, width=8, dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train, test = slice(0, 384), slice(384, n)
    for _ in range(4):
        for s in range(0, 384, 32):
            b = {k: v[train][s : s + 32] for k, v in batch_all.items()}
            total, _ = multitask_loss(model.train()(b["image"]), b)
            opt.zero_grad()
            total.backward()
            opt.step()
    metrics = AffectMetrics([f"AU{j}" for j in range(c)], [str(j) for j in range(c)])
    with torch.no_grad():
        b = {k: v[test] for k, v in batch_all.items()}
        metrics.update(model.eval()(b["image"]), b)
    out = metrics.compute()
    assert out["expr_accuracy"] > 0.8, out
    assert out["au_f1_mean"] > 0.6, out
    assert out["ccc_valence"] > 0.5, out
