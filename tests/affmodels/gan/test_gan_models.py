from __future__ import annotations

import pytest
import torch

from affmodels import Predictions, TaskHeads, num_params
from affmodels.gan import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    Target,
    to_float01,
    to_uint8,
)

from .conftest import C, K, tiny_d, tiny_g


def _cond(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = Target(torch.rand(b, 2, generator=g) * 2 - 1, (torch.rand(b, K, generator=g) < 0.5).float(),
               torch.randint(0, C, (b,), generator=g), C)
    return t.condition()


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("attention", [True, False])
def test_generator_keeps_size_and_range(size, attention):
    G = tiny_g(attention=attention)
    x = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)
    out = G(x, _cond(3))
    assert out.image.shape == x.shape and out.image.dtype == torch.float32
    assert out.image.min() >= 0 and out.image.max() <= 1
    assert out.color.shape == x.shape
    if attention:
        assert out.mask.shape == (3, 1, size, size) and 0 <= out.mask.min() <= out.mask.max() <= 1
    else:
        assert out.mask is None and torch.equal(out.image, out.color)


def test_generator_uint8_and_float_inputs_agree():
    G = tiny_g().eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    c = _cond(2)
    torch.testing.assert_close(G(x, c).image, G(x.float() / 255, c).image)


def test_generator_output_depends_on_the_condition():
    G = tiny_g().eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert not torch.allclose(G(x, _cond(2, 0)).image, G(x, _cond(2, 1)).image)


def test_attention_mask_of_one_copies_the_input_exactly():
    """out = A * x + (1 - A) * C: A = 1 must reproduce x, whatever C is."""
    G = tiny_g(mask_bias=50.0).eval()  # sigmoid(50) == 1.0 in float32
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out = G(x, _cond(2))
    assert torch.equal(to_uint8(out.image), x)
    assert not torch.allclose(out.color, to_float01(x), atol=0.05)  # C itself is no copy


def test_generator_rejects_bad_sizes_and_conditions():
    G = tiny_g()
    with pytest.raises(ValueError, match="divisible"):
        G(torch.zeros(1, 3, 30, 30), _cond(1))
    with pytest.raises(ValueError, match="cond"):
        G(torch.zeros(1, 3, 32, 32), torch.zeros(1, 2 + K))
    assert GeneratorConfig(n_aus=K, n_classes=C).cond_dim == 2 + K + C


@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_outputs_realness_and_predictions(size):
    D = tiny_d()
    x = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)
    realness, pred = D(x)
    side = size // 2**D.cfg.n_down
    assert realness.shape == (3, 1, side, side)
    assert isinstance(pred, Predictions)
    assert pred.va.shape == (3, 2) and pred.va.abs().max() <= 1
    assert pred.au_logits.shape == (3, K) and pred.expr_logits.shape == (3, C)
    assert isinstance(D.heads, TaskHeads)
    D.eval()
    for a, b in zip(D.predict(x), D(x)[1]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(D(x)[0], D(x.float() / 255)[0])  # real uint8 = fake float


def test_discriminator_spectral_norm_bounds_trunk_layers():
    D = tiny_d()
    D.train()
    x = torch.rand(2, 3, 32, 32)
    for _ in range(30):  # power iteration converges while training
        D(x)
    conv = D.trunk[0]
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)
    plain = Discriminator(DiscriminatorConfig(n_aus=K, n_classes=C, width=4, n_down=3, spectral_norm=False))
    assert not hasattr(plain.trunk[0], "parametrizations")


def test_default_sizes_are_cpu_sized():
    g = num_params(Generator(GeneratorConfig()))
    d = num_params(Discriminator(DiscriminatorConfig()))
    assert 0.5e6 < g < 3e6 and 0.5e6 < d < 4e6, (g, d)


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([-0.5, 0.0, 0.6 / 255, 1.0, 2.0]).view(1, 1, 1, 5)
    assert to_uint8(x).flatten().tolist() == [0, 0, 1, 255, 255]
    with pytest.raises(TypeError):
        to_float01(torch.zeros(1, 3, 2, 2, dtype=torch.int32))


def test_channels_last_is_only_a_layout():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    c = _cond(2)
    g_nhwc, g_nchw = tiny_g(channels_last=True).eval(), tiny_g(channels_last=False).eval()
    g_nchw.load_state_dict(g_nhwc.state_dict())
    assert g_nhwc.to_color.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(g_nhwc(x, c).image, g_nchw(x, c).image, atol=1e-5, rtol=1e-4)
    d_nhwc, d_nchw = tiny_d(channels_last=True).eval(), tiny_d(channels_last=False).eval()
    d_nchw.load_state_dict(d_nhwc.state_dict())
    torch.testing.assert_close(d_nhwc(x)[0], d_nchw(x)[0], atol=1e-5, rtol=1e-4)


def test_discriminator_groupnorm_keeps_images_independent_of_the_batch():
    D = tiny_d().eval()
    assert any(isinstance(m, torch.nn.GroupNorm) for m in D.trunk)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in tiny_d(norm="none").trunk)
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    whole_logits, whole_pred = D(x)
    one_logits, one_pred = D(x[2:3])
    torch.testing.assert_close(one_logits, whole_logits[2:3], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(one_pred.expr_logits, whole_pred.expr_logits[2:3], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="norm"):
        DiscriminatorConfig(norm="batch")
