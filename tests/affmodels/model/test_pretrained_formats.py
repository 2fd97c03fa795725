"""Pretrained trunks: each file layout maps onto the VGG-16 trunk, and its input convention is
part of the config (and so of every checkpoint). Synthetic state dicts: nothing is downloaded."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from affmodels.checkpoint import save_checkpoint
from affmodels.evaluate import load_model
from affmodels.model import VGGFACE_MEAN_BGR, ModelConfig, MultiTaskNet, vggface_to_torchvision

KW = dict(trunk="vgg", n_aus=5, n_classes=4, width=4, fc_dim=16, dropout=0.0)


def _net(seed: int, **kw) -> MultiTaskNet:
    torch.manual_seed(seed)
    return MultiTaskNet(ModelConfig(**{**KW, **kw})).eval()


def _as_vggface(trunk_state: dict, *, underscore: bool, conv_fc: bool) -> dict:
    """A torchvision-named VGG trunk renamed the way VGG-Face ports name it, plus fc8."""
    index = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    names = [(b, i) for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)]
    out = {}
    for (b, i), idx in zip(names, index):
        conv = f"conv_{b}_{i}" if underscore else f"conv{b}_{i}"
        for kind in ("weight", "bias"):
            out[f"{conv}.{kind}"] = trunk_state[f"features.{idx}.{kind}"].clone()
    fc6, fc7 = trunk_state["classifier.0.weight"], trunk_state["classifier.3.weight"]
    if conv_fc:  # Caffe stores fc6/fc7 as 7x7 and 1x1 convolutions
        fc6, fc7 = fc6.view(fc6.shape[0], -1, 7, 7), fc7.view(fc7.shape[0], -1, 1, 1)
    out.update({"fc6.weight": fc6.clone(), "fc6.bias": trunk_state["classifier.0.bias"].clone(),
                "fc7.weight": fc7.clone(), "fc7.bias": trunk_state["classifier.3.bias"].clone(),
                "fc8.weight": torch.zeros(2622, 16), "fc8.bias": torch.zeros(2622)})
    return out


def test_vggface_convention_is_bgr_0_255_minus_its_mean() -> None:
    model = _net(0, pretrained_format="vggface")
    assert (model.cfg.channels, model.cfg.pixel_range, model.cfg.std) == ("bgr", 255.0, (1.0, 1.0, 1.0))
    rgb = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    want = torch.tensor([30 - VGGFACE_MEAN_BGR[0], 20 - VGGFACE_MEAN_BGR[1], 10 - VGGFACE_MEAN_BGR[2]])
    torch.testing.assert_close(model.normalize(rgb).view(3), want)
    torch.testing.assert_close(model.normalize(rgb.float() / 255).view(3), want)  # [0, 1] floats too
    plain = _net(0)  # no format: torchvision's ImageNet convention, as before
    assert (plain.cfg.channels, plain.cfg.pixel_range) == ("rgb", 1.0)
    torch.testing.assert_close(plain.normalize(rgb).view(3),
                               (torch.tensor([10, 20, 30]) / 255 - torch.tensor(plain.cfg.mean)) / torch.tensor(plain.cfg.std))


@pytest.mark.parametrize(("underscore", "conv_fc"), [(False, False), (True, True)])
def test_vggface_layout_loads_and_sees_what_vggface_saw(tmp_path, underscore, conv_fc) -> None:
    src = _net(1)
    path = tmp_path / "vgg_face.pth"
    torch.save(_as_vggface(src.trunk.state_dict(), underscore=underscore, conv_fc=conv_fc), path)
    model = _net(2, pretrained=str(path), pretrained_format="vggface")
    report = model.load_report
    assert report.target == "trunk" and report.missing == [] and report.mismatched == []
    assert report.unexpected == ["fc8.bias", "fc8.weight"]
    for key, value in src.trunk.state_dict().items():
        assert torch.equal(model.trunk.state_dict()[key], value), key
    # the trunk gets the image as VGG-Face wants it: BGR, 0-255, its mean subtracted
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    caffe_input = images.flip(1).float() - torch.tensor(VGGFACE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(model.forward_features(images), src.trunk(caffe_input))


def test_torchvision_layout_loads_without_its_imagenet_classifier(tmp_path) -> None:
    src = _net(1, pretrained_format="torchvision")
    state = {**src.trunk.state_dict(), "classifier.6.weight": torch.zeros(1000, 16),
             "classifier.6.bias": torch.zeros(1000)}
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = _net(2, pretrained=str(path), pretrained_format="torchvision")
    assert model.load_report.unexpected == ["classifier.6.bias", "classifier.6.weight"]
    assert model.load_report.missing == []
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(model.forward_features(images), src.forward_features(images))


def test_the_convention_travels_in_the_checkpoint(tmp_path) -> None:
    model = _net(3, pretrained_format="vggface")
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"kind": "multitask", "model_config": asdict(model.cfg), "model": model.state_dict()})
    again, _ = load_model(path)
    assert (again.cfg.channels, again.cfg.pixel_range, again.cfg.mean) == ("bgr", 255.0, VGGFACE_MEAN_BGR)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(again(images).va, model(images).va)
    # a checkpoint from before these fields were saved: ImageNet RGB in [0, 1], as it was trained
    old = {k: v for k, v in asdict(_net(3).cfg).items() if k not in ("channels", "pixel_range", "pretrained_format")}
    save_checkpoint(path, {"kind": "multitask", "model_config": old, "model": _net(3).state_dict()})
    assert (load_model(path)[0].cfg.channels, load_model(path)[0].cfg.pixel_range) == ("rgb", 1.0)


def test_bad_formats_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown pretrained format 'caffe'"):
        ModelConfig(**{**KW, "pretrained_format": "caffe"})
    with pytest.raises(ValueError, match="VGG-16 layout"):
        ModelConfig(trunk="cnn", pretrained_format="vggface")
    with pytest.raises(ValueError, match="no VGG-Face keys"):
        vggface_to_torchvision({"stem.weight": torch.zeros(1)}, "x.pth")


@pytest.mark.parametrize(("args", "message"), [
    (["--pretrained-format", "caffe", "--pretrained", "w.pth", "--model", "vgg"], "unknown format 'caffe'"),
    (["--pretrained-format", "vggface", "--pretrained", "w.pth"], "goes with --pretrained FILE"),
    (["--pretrained-format", "vggface", "--model", "vgg"], "goes with --pretrained FILE"),
])
def test_cli_refuses_a_format_without_its_file_or_trunk(tmp_path, args, message) -> None:
    from typer.testing import CliRunner

    from cli.affmodels_app import app

    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
