from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from affmodels import (
    Predictions,
    au_bce_loss,
    expr_ce_loss,
    multitask_loss,
    va_ccc_loss,
)
from affmodels.gan import (
    GanLossWeights,
    Target,
    attention_mask_loss,
    attention_tv_loss,
    cycle_loss,
    d_adversarial_loss,
    d_task_loss,
    discriminator_step_losses,
    discriminator_warmup_losses,
    frozen,
    g_adversarial_loss,
    g_task_loss,
    generator_step_losses,
    identity_loss,
    source_condition,
)

from .conftest import C, K, tiny_d, tiny_g

# ----------------------------------------------------------------------------- adversarial


def test_hinge_hand_values():
    t = torch.tensor
    assert d_adversarial_loss(t([0.0]), t([0.0])).item() == 2.0
    assert d_adversarial_loss(t([1.5, 3.0]), t([-1.0, -2.0])).item() == 0.0  # beyond the margin
    assert d_adversarial_loss(t([0.5]), t([0.5])).item() == pytest.approx(0.5 + 1.5)
    assert g_adversarial_loss(t([2.0, 0.0])).item() == -1.0  # G wants D to call fakes real
    fake = t([-3.0], requires_grad=True)
    g_adversarial_loss(fake).backward()
    assert fake.grad.item() == -1.0  # G still gets a gradient where D's hinge is saturated


def test_a_few_d_steps_increase_the_margin_on_separable_data():
    g = torch.Generator().manual_seed(0)
    real = (150 + torch.rand(8, 3, 32, 32, generator=g) * 100).to(torch.uint8)  # bright
    fake = torch.rand(8, 3, 32, 32, generator=g) * 0.3  # dark, float like G's output
    D = tiny_d()
    opt = torch.optim.Adam(D.parameters(), lr=2e-3)

    def margin_and_loss():
        r, f = D(real)[0], D(fake)[0]
        return (r.mean() - f.mean()).item(), d_adversarial_loss(r, f).item()

    m0, l0 = margin_and_loss()
    for _ in range(10):
        loss = d_adversarial_loss(D(real)[0], D(fake)[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m1, l1 = margin_and_loss()
    assert m1 > m0 + 0.5 and l1 < l0, (m0, m1, l0, l1)


# ----------------------------------------------------------------------------- D task masking


MASK = {"va": "va_mask", "au": "au_mask", "expr": "expr_mask"}


def _d_grads(D, batch, fake, step: bool):
    D.zero_grad()
    if step:
        total, _ = discriminator_step_losses(D, batch, fake)
        pred = None
    else:
        _, pred = D(batch["image"])
        for t in pred:
            t.retain_grad()
        total, _ = d_task_loss(pred, batch)
    total.backward()
    grads = {n: torch.zeros_like(p) if p.grad is None else p.grad.clone() for n, p in D.named_parameters()}
    return total.detach(), grads, pred


@pytest.mark.parametrize("task", ["va", "au", "expr"])
@pytest.mark.parametrize("step", [False, True])
def test_unlabelled_real_frame_gives_zero_gradient_through_its_task(make_batch, task, step):
    """As in tests/affmodels/model/test_losses.py, through the whole discriminator: frame i without
    the task's label gets zero gradient on that output, and its label value can be anything
    without changing any of D's gradients."""
    batch = make_batch(b=6, seed=3)
    i = 4
    batch[MASK[task]][i] = False
    batch[task][i] = {"va": torch.tensor([float("nan")] * 2), "au": torch.full((K,), float("nan")),
                      "expr": torch.tensor(-1)}[task]
    D = tiny_d().eval()  # eval: spectral norm's power iteration holds still between calls
    fake = torch.rand(6, 3, 32, 32)
    loss, grads, pred = _d_grads(D, batch, fake, step)
    if pred is not None:
        out = {"va": pred.va, "au": pred.au_logits, "expr": pred.expr_logits}[task]
        assert torch.equal(out.grad[i], torch.zeros_like(out.grad[i]))
        assert out.grad.abs().sum() > 0  # labelled frames do train the head

    changed = {k: v.clone() for k, v in batch.items()}
    changed[task][i] = {"va": torch.tensor([0.9, -0.9]), "au": torch.ones(K), "expr": torch.tensor(2)}[task]
    loss2, grads2, _ = _d_grads(D, changed, fake, step)
    assert torch.isfinite(loss) and torch.equal(loss, loss2)
    for name in grads:
        assert torch.isfinite(grads[name]).all(), name
        assert torch.equal(grads[name], grads2[name]), name
    head = {"va": "heads.va.", "au": "heads.au.", "expr": "heads.expr."}[task]
    assert any(grads[n].abs().sum() > 0 for n in grads if n.startswith(head))


def test_d_task_loss_is_the_multitask_loss(make_batch):
    batch = make_batch(seed=2)
    _, pred = tiny_d()(batch["image"])
    total, parts = d_task_loss(pred, batch)
    ref, ref_parts = multitask_loss(pred, batch)
    assert torch.equal(total, ref) and parts.keys() == ref_parts.keys()


def test_discriminator_step_parts(make_batch):
    batch = make_batch(seed=2)
    total, parts = discriminator_step_losses(tiny_d(), batch, torch.rand(8, 3, 32, 32))
    assert {"d_adv", "d_task", "d_va", "d_au", "d_expr", "d_real", "d_fake"} <= parts.keys()
    assert not any(p.requires_grad for p in parts.values())
    assert total.item() == pytest.approx(parts["d_adv"].item() + parts["d_task"].item(), rel=1e-6)
    assert parts["d_adv"].item() == pytest.approx(2.0, abs=0.2)  # logits ~0 at init


def test_discriminator_step_detaches_the_fake():
    G, D = tiny_g(), tiny_d()
    batch = {"image": torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8),
             "va": torch.zeros(2, 2), "va_mask": torch.ones(2, dtype=torch.bool),
             "au": torch.zeros(2, K), "au_mask": torch.ones(2, K, dtype=torch.bool),
             "expr": torch.zeros(2, dtype=torch.long), "expr_mask": torch.ones(2, dtype=torch.bool)}
    cond = Target(torch.zeros(2, 2), torch.zeros(2, K), torch.zeros(2, dtype=torch.long), C).condition()
    total, _ = discriminator_step_losses(D, batch, G(batch["image"], cond).image)
    total.backward()
    assert all(p.grad is None for p in G.parameters())


# ----------------------------------------------------------------------------- G terms


def test_generator_task_loss_uses_the_full_target():
    g = torch.Generator().manual_seed(0)
    b = 6
    target = Target(torch.rand(b, 2, generator=g) * 2 - 1, (torch.rand(b, K, generator=g) < 0.5).float(),
                    torch.randint(0, C, (b,), generator=g), C)
    leaves = [torch.randn(b, 2, generator=g).requires_grad_(), torch.randn(b, K, generator=g).requires_grad_(),
              torch.randn(b, C, generator=g).requires_grad_()]
    pred = Predictions(torch.tanh(leaves[0]), leaves[1], leaves[2])
    total, parts = g_task_loss(pred, target)
    ones = torch.ones(b, dtype=torch.bool)
    torch.testing.assert_close(parts["va"], va_ccc_loss(pred.va, target.va, ones))
    torch.testing.assert_close(parts["au"], F.binary_cross_entropy_with_logits(pred.au_logits, target.au))
    torch.testing.assert_close(parts["expr"], F.cross_entropy(pred.expr_logits, target.expr))
    total.backward()
    for leaf in leaves:  # every frame, every AU is trained: nothing masked
        assert (leaf.grad.abs().sum(1) > 0).all()
    # and it differs from a masked loss that would skip a frame
    partial = target.as_batch() | {"au_mask": torch.zeros(b, K, dtype=torch.bool)}
    assert au_bce_loss(pred.au_logits, target.au, partial["au_mask"]).item() == 0.0
    assert expr_ce_loss(pred.expr_logits, target.expr, ones).item() == pytest.approx(parts["expr"].item())


def test_image_and_mask_terms_hand_values():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert cycle_loss(torch.full((1, 3, 2, 2), 0.75), x).item() == pytest.approx(0.25)
    assert identity_loss(torch.ones(1, 3, 2, 2), x).item() == 0.0
    mask = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert attention_mask_loss(mask).item() == 0.5
    assert attention_tv_loss(mask).item() == 1.0  # every horizontal step is 1, vertical 0
    assert attention_tv_loss(torch.full((1, 1, 4, 4), 0.3)).item() == 0.0


class _Recorder(torch.nn.Module):
    """Wraps G and records the conditions it is called with."""

    def __init__(self, G):
        super().__init__()
        self.G, self.conds = G, []

    def forward(self, images, cond):
        self.conds.append(cond.detach().clone())
        return self.G(images, cond)


def test_cycle_goes_back_to_the_source_with_d_estimates_where_labels_are_missing(make_batch):
    batch = make_batch(b=6, seed=4)
    G, D = _Recorder(tiny_g()), tiny_d().eval()
    target = Target(torch.zeros(6, 2), torch.ones(6, K), torch.full((6,), 3), C)
    total, parts = generator_step_losses(G, D, batch, target)
    assert len(G.conds) == 2  # target pass, cycle pass; identity weight 0 adds none
    assert torch.equal(G.conds[0], target.condition())
    with torch.no_grad():
        expected = source_condition(batch, D(batch["image"])[1])
    assert torch.equal(G.conds[1], expected)
    # labels win where present: VA of labelled frames, AUs, expression one-hots
    vm, am, em = batch["va_mask"], batch["au_mask"], batch["expr_mask"]
    assert torch.equal(G.conds[1][vm, :2], batch["va"][vm])
    assert torch.equal(G.conds[1][:, 2 : 2 + K][am], batch["au"][am])
    assert torch.equal(G.conds[1][em, 2 + K :].argmax(1), batch["expr"][em])
    assert torch.isfinite(total) and parts["identity"].item() == 0.0


def test_generator_step_sum_and_identity_switch(make_batch):
    batch = make_batch(b=4, seed=6)
    G, D = _Recorder(tiny_g()), tiny_d().eval()
    target = Target(torch.zeros(4, 2), torch.zeros(4, K), torch.zeros(4, dtype=torch.long), C)
    w = GanLossWeights(identity=2.0, mask_tv=3.0)
    total, p = generator_step_losses(G, D, batch, target, w)
    assert len(G.conds) == 3 and torch.equal(G.conds[2], G.conds[1])  # G(x, c_source)
    assert p["identity"].item() > 0 and not any(v.requires_grad for v in p.values())
    expected = (p["g_adv"] + p["g_task"] + 10 * p["cycle"] + 2 * p["identity"] + 0.1 * p["mask"]
                + 3 * p["mask_tv"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_frozen_d_still_passes_gradient_to_g(make_batch):
    batch = make_batch(b=4, seed=6)
    G, D = tiny_g(), tiny_d()
    D.heads.va.weight.requires_grad_(False)  # a flag that must survive the block
    target = Target(torch.zeros(4, 2), torch.zeros(4, K), torch.zeros(4, dtype=torch.long), C)
    with frozen(D):
        total, _ = generator_step_losses(G, D, batch, target)
    total.backward()
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())
    assert not D.heads.va.weight.requires_grad and D.heads.au.weight.requires_grad


def test_warmup_loss_is_the_task_loss_on_real_frames_only(make_batch):
    batch = make_batch(b=6, seed=7)
    D = tiny_d()
    total, parts = discriminator_warmup_losses(D, batch)
    expected, _ = multitask_loss(D.predict(batch["image"]), batch)
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"d_task", "d_va", "d_au", "d_expr"}
    total.backward()
    assert D.realness.parametrizations.weight.original.grad is None  # nothing adversarial
    assert D.heads.expr.weight.grad is not None
