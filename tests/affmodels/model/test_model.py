from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from affmodels import (
    ModelConfig,
    MultiTaskNet,
    Predictions,
    TaskHeads,
    multitask_loss,
    num_params,
)


def small_cnn(**kw) -> MultiTaskNet:
    torch.manual_seed(0)
    return MultiTaskNet(ModelConfig(trunk="cnn", n_aus=5, n_classes=4, width=8, **kw)).eval()


def small_vgg(**kw) -> MultiTaskNet:
    torch.manual_seed(0)
    cfg = ModelConfig(trunk="vgg", n_aus=5, n_classes=4, width=4, fc_dim=16, **kw)
    return MultiTaskNet(cfg).eval()


@pytest.mark.parametrize("size", [112, 64, 96, 128])
@pytest.mark.parametrize("grid", [1, 3])
def test_cnn_shapes_any_square_size(size, grid):
    model = small_cnn(grid=grid)
    images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        pred = model(images)
    assert isinstance(pred, Predictions)
    assert pred.va.shape == (3, 2) and pred.au_logits.shape == (3, 5) and pred.expr_logits.shape == (3, 4)
    assert model.forward_features(images).shape == (3, model.num_features)
    assert pred.va.abs().max() <= 1.0


def test_cnn_default_size_and_params():
    model = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=12, n_classes=8))
    assert 500_000 <= num_params(model) <= 2_000_000
    assert model.num_features == 256
    gap = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=12, n_classes=8, grid=1))
    assert num_params(model) - num_params(gap) == 256 * 9 * 256 + 256  # the grid projection
    with torch.no_grad():
        pred = model.eval()(torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8))
    assert pred.au_logits.shape == (2, 12) and pred.expr_logits.shape == (2, 8)


@pytest.mark.slow
def test_vgg16_full_shapes_and_params():
    """The real VGG-16 layout: 13 convs 64..512, fc6 25088->4096, fc7 4096->4096."""
    torch.manual_seed(0)
    model = MultiTaskNet(ModelConfig(trunk="vgg", n_aus=8, n_classes=7)).eval()
    convs = [m for m in model.trunk.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    assert model.trunk.classifier[0].weight.shape == (4096, 512 * 7 * 7)
    assert 134_000_000 < num_params(model) < 135_000_000
    with torch.no_grad():
        pred = model(torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8))
    assert pred.va.shape == (2, 2) and pred.au_logits.shape == (2, 8) and pred.expr_logits.shape == (2, 7)
    assert torch.isfinite(pred.expr_logits).all()


@pytest.mark.parametrize("size", [32, 112])
def test_small_vgg_shapes(size):
    model = small_vgg()
    with torch.no_grad():
        pred = model(torch.rand(2, 3, size, size))
    assert pred.va.shape == (2, 2) and pred.au_logits.shape == (2, 5) and pred.expr_logits.shape == (2, 4)


@pytest.mark.parametrize("factory", [small_cnn, small_vgg])
@pytest.mark.parametrize("channels_last", [True, False])
def test_uint8_and_float_inputs_agree(factory, channels_last):
    model = factory(channels_last=channels_last)
    images = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    with torch.no_grad():
        a = model(images)
        b = model(images.float() / 255.0)
        c = model(images.double() / 255.0)  # any float dtype, converted to the model's
    for x, y, z in zip(a, b, c):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(x, z, rtol=1e-5, atol=1e-6)
    # and uint8 is not silently taken as [0, 1] float: 0..255 floats give something else
        f_uint8, f_255 = model.forward_features(images), model.forward_features(images.float())
    assert (f_uint8 - f_255).abs().max() > 1e-3 * f_uint8.abs().max()


def test_normalize_uses_config_mean_std():
    model = small_cnn(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = model.normalize(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    torch.testing.assert_close(x[0, :, 0, 0], torch.full((3,), -1.0))
    torch.testing.assert_close(x[0, :, 0, 1], torch.full((3,), 1.0))


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        small_cnn()(torch.zeros(2, 1, 32, 32))


def test_unknown_trunk_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown trunk 'resnet'"):
        ModelConfig(trunk="resnet")


def test_forward_is_features_then_head():
    model = small_cnn()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        whole, split = model(images), model.forward_head(model.forward_features(images))
    for x, y in zip(whole, split):
        assert torch.equal(x, y)


def test_task_heads_reusable_on_another_trunk(make_batch):
    """The GAN discriminator's use: TaskHeads on a trunk of its own, same losses."""
    trunk = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 32), nn.ReLU())
    heads = TaskHeads(32, n_aus=5, n_classes=4)
    batch = make_batch(size=16)
    pred = heads(trunk(batch["image"].float() / 255))
    total, parts = multitask_loss(pred, batch)
    total.backward()
    assert set(parts) == {"va", "au", "expr"}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.parameters())


# ----------------------------------------------------------------------------- pretrained


def test_load_full_model_checkpoint_roundtrip(tmp_path):
    src = small_cnn()
    torch.manual_seed(1)
    dst = MultiTaskNet(src.cfg).eval()  # different init
    images = torch.rand(2, 3, 32, 32)
    assert not torch.allclose(src(images).expr_logits, dst(images).expr_logits)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": src.state_dict(), "step": torch.tensor(3)}, path)
    report = dst.load_pretrained(path)
    assert report.target == "model"
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    for x, y in zip(src(images), dst(images)):
        torch.testing.assert_close(x, y)


def test_load_torchvision_style_vgg_trunk_reports_keys(tmp_path, caplog):
    """A bare-trunk file (torchvision vgg16 key names) with extra, missing and reshaped keys."""
    src = small_vgg()
    torch.manual_seed(1)
    dst = MultiTaskNet(src.cfg)  # different init
    state = {f"module.{k}": v for k, v in src.trunk.state_dict().items()}  # DDP prefix
    del state["module.classifier.3.bias"]
    state["module.classifier.6.weight"] = torch.zeros(2622, 16)  # VGG-FACE's fc8
    state["module.features.0.weight"] = torch.zeros(4, 3, 5, 5)  # wrong shape
    path = tmp_path / "vgg_face.pth"
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="affmodels.model"):
        report = dst.load_pretrained(path)
    assert report.target == "trunk"
    assert report.unexpected == ["classifier.6.weight"]
    assert report.mismatched == ["features.0.weight"]
    assert set(report.missing) == {"classifier.3.bias", "features.0.weight"}
    assert "features.2.weight" in report.loaded
    assert torch.equal(dst.trunk.features[2].weight, src.trunk.features[2].weight)
    assert not torch.equal(dst.trunk.features[0].weight, src.trunk.features[0].weight)
    assert "classifier.6.weight" in caplog.text and str(path) in caplog.text


def test_config_pretrained_loads_at_construction(tmp_path):
    src = small_cnn()
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(5)
    model = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=5, n_classes=4, width=8, pretrained=str(path)))
    assert model.load_report is not None and model.load_report.missing == []
    assert torch.equal(model.heads.expr.weight, src.heads.expr.weight)


def test_missing_pretrained_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "vgg_face.pth"
    with pytest.raises(FileNotFoundError, match="vgg_face.pth"):
        small_cnn().load_pretrained(path)
    with pytest.raises(FileNotFoundError, match=str(path)):
        MultiTaskNet(ModelConfig(trunk="cnn", width=8, pretrained=str(path)))


def test_non_state_dict_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        small_cnn().load_pretrained(path)
    path2 = tmp_path / "list.pt"
    torch.save([1, 2, 3], path2)
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        small_cnn().load_pretrained(path2)


def test_config_roundtrips_through_json():
    import json
    from dataclasses import asdict

    cfg = ModelConfig(trunk="vgg", n_aus=8, n_classes=7, width=4, fc_dim=16, pretrained=None)
    again = ModelConfig(**json.loads(json.dumps(asdict(cfg))))
    assert again.trunk_width == 4 and again.n_aus == 8
    src = MultiTaskNet(cfg)
    result = MultiTaskNet(again).load_state_dict(src.state_dict())  # strict: raises on mismatch
    assert not result.missing_keys and not result.unexpected_keys


def test_export_without_aus_gives_zero_width_head(make_batch):
    model = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=0, n_classes=4, width=8))
    batch = make_batch(k=0)
    pred = model(batch["image"])
    assert pred.au_logits.shape == (8, 0)
    total, parts = multitask_loss(pred, batch)
    total.backward()
    assert parts["au"].item() == 0.0 and parts["expr"].item() > 0
