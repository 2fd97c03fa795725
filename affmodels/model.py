"""Multi-task affect network: one shared trunk, three task heads (VA, AUs, expressions).

After Kollias et al.'s multi-task network: a single trunk learns valence-arousal, action
units and basic expressions together, each task's loss masked where a frame lacks that
label (see :mod:`affmodels.losses`). The trunk and the heads are separate modules (timm
style) so the GAN discriminator can put :class:`TaskHeads` on a trunk of its own.

Two trunks:

* ``"cnn"``: a compact BatchNorm CNN (~1.76M parameters at width 32) that trains from scratch
  on a CPU. It halves the resolution in its first layer and again at every stage, so most
  convolutions run at 28x28 and below, and keeps a coarse 3x3 layout of its last map.
* ``"vgg"``: VGG-16 (conv blocks 64-128-256-512-512, then two FC layers), the layout of the
  paper's VGG-FACE network. Its module names match torchvision's ``vgg16`` (``features.N``,
  ``classifier.0``, ``classifier.3``), so such a state_dict loads without renaming.

Two kinds (``ModelConfig.kind``): the frame model (``"cnn"``, ``"vgg"``: one frame in, one
prediction out) and the temporal model (``"cnn-gru"``, ``"vgg-gru"``: windows of ``window``
consecutive frames of one face track; the same trunk on every frame, a one-layer GRU over the
window, the same heads on each frame's [trunk features; GRU state], as the Aff-Wild models' CNN
followed by a recurrent layer). The GRU runs forwards only, so a frame's prediction depends on
it and the frames before it in its window: padding appended after a track's last frame cannot
change the real frames' outputs (:mod:`affmodels.data.windows`).

Images enter as uint8 (B, 3, H, W) RGB, or float in [0, 1]; normalisation happens inside,
so a data loader can ship uint8 to the device and the conversion runs there. How is part of
the config (and so of every checkpoint): the channel order, the pixel range and the mean and
std a trunk was trained with. Pretrained weights come with their own convention
(:data:`INPUT_CONVENTIONS`): torchvision's ImageNet models take RGB in [0, 1] standardised by
the ImageNet mean and std; VGG-Face (Parkhi et al. 2015, the Caffe release) takes BGR in
0-255 minus its mean image colour, not divided by anything.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from affmodels.errors import ConfigError, InputFileError, MissingFileError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: VGG-Face's mean image colour, B, G, R in 0-255 (vgg_face_caffe: 93.5940, 104.7624, 129.1863)
VGGFACE_MEAN_BGR = (93.5940, 104.7624, 129.1863)

#: How each source of pretrained weights wants its input: channel order, pixel range (1: [0, 1];
#: 255: 0-255), mean and std in those units and that order.
INPUT_CONVENTIONS: dict[str, dict] = {
    "torchvision": {"channels": "rgb", "pixel_range": 1.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "vggface": {"channels": "bgr", "pixel_range": 255.0, "mean": VGGFACE_MEAN_BGR, "std": (1.0, 1.0, 1.0)},
}
PRETRAINED_FORMATS = tuple(INPUT_CONVENTIONS)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; store it next to the weights."""

    trunk: str = "cnn"  # "cnn" | "vgg"
    n_aus: int = 12  # len(au_names) of the export
    n_classes: int = 8  # len(class_names) of the export
    image_size: int = 112  # training resolution; both trunks pool adaptively, any square works
    width: int | None = None  # channels of the first stage; None: 32 for cnn, 64 for vgg
    grid: int = 3  # cnn only: the last map is pooled to grid x grid cells (1: global average)
    fc_dim: int = 4096  # vgg only: width of the two FC layers (fc6, fc7)
    dropout: float = 0.2  # before the heads (and in vgg's FC layers)
    pretrained: str | None = None  # state_dict file loaded at construction (see load_pretrained)
    #: layout of that file's keys: None (ours, or torchvision names), "torchvision", "vggface"
    pretrained_format: str | None = None
    # The input convention; None: that of pretrained_format (torchvision's when there is none).
    # Resolved at construction, so a saved config always holds the values the weights expect.
    mean: tuple[float, float, float] | None = None  # in channel order and pixel_range units
    std: tuple[float, float, float] | None = None
    channels: str | None = None  # "rgb" | "bgr": the order the first convolution expects
    pixel_range: float | None = None  # 1.0: pixels in [0, 1]; 255.0: pixels in 0-255
    channels_last: bool = True  # NHWC activations: ~1.4x faster CPU convs, and what AMP on GPU wants
    #: None: the frame model; "gru": a GRU over windows of ``window`` frames (the temporal model)
    temporal: str | None = None
    window: int = 1  # T, frames per window (1 for the frame model)
    gru_hidden: int = 128  # the GRU's state size

    def __post_init__(self) -> None:
        if self.temporal not in TEMPORAL:
            raise ConfigError(f"unknown temporal layer {self.temporal!r}; known: gru (or none)")
        if self.temporal is None and self.window != 1:
            raise ConfigError(f"window {self.window} needs a temporal model (e.g. cnn-gru); the frame model takes 1")
        if self.temporal is not None and (self.window < 1 or self.gru_hidden < 1):
            raise ConfigError(f"window and gru_hidden must be >= 1, got {self.window}, {self.gru_hidden}")
        if self.trunk not in TRUNKS:
            raise ConfigError(f"unknown trunk {self.trunk!r}; known: {', '.join(TRUNKS)}")
        if self.pretrained_format is not None:
            if self.pretrained_format not in INPUT_CONVENTIONS:
                raise ConfigError(f"unknown pretrained format {self.pretrained_format!r}; "
                                  f"known: {', '.join(PRETRAINED_FORMATS)}")
            if self.trunk != "vgg":
                raise ConfigError(f"pretrained format {self.pretrained_format!r} is a VGG-16 layout; "
                                  f"use it with the vgg trunk, not {self.trunk!r}")
        convention = INPUT_CONVENTIONS[self.pretrained_format or "torchvision"]
        for name in ("mean", "std", "channels", "pixel_range"):
            if getattr(self, name) is None:
                setattr(self, name, convention[name])
        self.mean, self.std = tuple(float(x) for x in self.mean), tuple(float(x) for x in self.std)
        if self.channels not in ("rgb", "bgr"):
            raise ConfigError(f"channels must be rgb or bgr, not {self.channels!r}")
        if self.grid < 1:
            raise ValueError(f"grid must be >= 1, got {self.grid}")
        if self.n_aus < 0 or self.n_classes < 0:
            raise ValueError(f"n_aus and n_classes must be >= 0, got {self.n_aus}, {self.n_classes}")

    @property
    def kind(self) -> str:
        """The model's name as ``affmodels train --model`` takes it: ``cnn``, ``vgg``, ``cnn-gru``, ..."""
        return self.trunk if self.temporal is None else f"{self.trunk}-{self.temporal}"

    @property
    def trunk_width(self) -> int:
        return self.width if self.width is not None else {"cnn": 32, "vgg": 64}[self.trunk]


class Predictions(NamedTuple):
    """Model outputs. A NamedTuple so it unpacks, traces and crosses DDP unchanged."""

    va: Tensor  # (B, 2) valence, arousal in [-1, 1]
    au_logits: Tensor  # (B, K) one logit per AU; positive iff logit >= 0
    expr_logits: Tensor  # (B, C) unnormalised class scores


class LoadReport(NamedTuple):
    """What :meth:`MultiTaskNet.load_pretrained` did; nothing in it is fatal."""

    target: str  # "model" (keys were trunk.*/heads.*) or "trunk" (bare trunk keys)
    loaded: list[str]
    missing: list[str]  # in the module, not in the file: left at their initial values
    unexpected: list[str]  # in the file, not in the module: ignored
    mismatched: list[str]  # in both but of another shape: ignored


# ----------------------------------------------------------------------------- blocks


class Normalize(nn.Module):
    """uint8 or [0, 1] float RGB images -> standardised float, on whatever device they are on.

    ``pixel_range`` scales the pixels to what the trunk was trained on (1: [0, 1]; 255: 0-255)
    and ``channels="bgr"`` reverses the channel order (Caffe models) before the mean and std,
    which are given in that order and those units."""

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], channels_last: bool = False, *,
        channels: str = "rgb", pixel_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.bgr = channels == "bgr"
        self.pixel_range = float(pixel_range)
        # not persistent: derived from the config, so state_dicts stay compatible across norms
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if self.channels_last:  # on the uint8 input, where the copy is cheapest
            images = images.contiguous(memory_format=torch.channels_last)
        x = images.to(self.mean.dtype)
        if images.dtype == torch.uint8:
            x = x * (self.pixel_range / 255.0)
        elif self.pixel_range != 1.0:
            x = x * self.pixel_range
        if self.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std


class ConvBNAct(nn.Sequential):
    """3x3 conv (no bias, BatchNorm follows) + BN + ReLU: the one block the CNN is made of."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class CompactCNN(nn.Module):
    """Stem (stride 2) + 3 stages of [stride-2 conv, conv] + grid pool + linear embedding.

    112 -> 56 -> 28 -> 14 -> 7. Downsampling early keeps it cheap on a CPU: at width w the
    stages have 2w, 4w, 8w channels and the embedding has 8w features. Face crops are
    aligned, so *where* a feature fires (brow or lip corner) carries the label: the last map
    is pooled to a ``grid`` x ``grid`` layout and projected, rather than averaged away (on
    synthetic faces this doubled expression accuracy after two epochs). ``grid=1`` is plain
    global average pooling.
    """

    def __init__(self, width: int = 32, grid: int = 3) -> None:
        super().__init__()
        w = width
        self.stem = ConvBNAct(3, w, stride=2)
        stages, c = [], w
        for c_out in (2 * w, 4 * w, 8 * w):
            stages.append(nn.Sequential(ConvBNAct(c, c_out, stride=2), ConvBNAct(c_out, c_out)))
            c = c_out
        self.stages = nn.Sequential(*stages)
        pool: list[nn.Module] = [nn.AdaptiveAvgPool2d(grid), nn.Flatten()]
        if grid > 1:
            pool += [nn.Linear(c * grid * grid, c), nn.ReLU(inplace=True)]
        self.pool = nn.Sequential(*pool)
        self.out_features = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x)))


def _vgg_features(width: int) -> nn.Sequential:
    """VGG-16 conv blocks (2, 2, 3, 3, 3 convs), indices as in torchvision's ``vgg16``."""
    layers: list[nn.Module] = []
    c = 3
    for c_out, n in ((width, 2), (2 * width, 2), (4 * width, 3), (8 * width, 3), (8 * width, 3)):
        for _ in range(n):
            layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.ReLU(inplace=True)]
            c = c_out
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGTrunk(nn.Module):
    """VGG-16 conv blocks, adaptive 7x7 pool, fc6 and fc7: the paper's VGG-FACE trunk.

    The 7x7 adaptive pool keeps fc6's input at 512*7*7 whatever the image size, so weights
    trained at 224 (VGG-FACE, ImageNet) load and run at 112.
    """

    def __init__(self, width: int = 64, fc_dim: int = 4096, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = _vgg_features(width)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(8 * width * 7 * 7, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out_features = fc_dim
        for m in self.modules():  # torchvision's VGG init: without BN, default init fades out
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


TRUNKS = ("cnn", "vgg")
TEMPORAL = (None, "gru")
#: what ``affmodels train --model`` accepts (besides ``gan``): a trunk, or a trunk and a GRU
MODEL_KINDS = ("cnn", "vgg", "cnn-gru", "vgg-gru")


def parse_kind(kind: str) -> tuple[str, str | None]:
    """``"cnn-gru"`` -> ``("cnn", "gru")``; ``"vgg"`` -> ``("vgg", None)``."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {kind!r}; known: {', '.join(MODEL_KINDS)}")
    trunk, _, temporal = kind.partition("-")
    return trunk, temporal or None


def build_trunk(cfg: ModelConfig) -> nn.Module:
    """A trunk module with an ``out_features`` attribute: normalised images -> (B, D)."""
    if cfg.trunk == "cnn":
        return CompactCNN(cfg.trunk_width, cfg.grid)
    return VGGTrunk(cfg.trunk_width, cfg.fc_dim, cfg.dropout)


# ----------------------------------------------------------------------------- heads


class TaskHeads(nn.Module):
    """The three task heads on a (B, D) feature vector; reusable on any trunk (GAN D).

    Linear heads, as in the paper's single multi-task output layer: VA through tanh so it
    lies in [-1, 1], AU and expression heads as logits (the losses take logits).
    """

    def __init__(self, in_features: int, n_aus: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        with warnings.catch_warnings():  # an export may have no AUs (or classes): 0-wide head
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.va = nn.Linear(in_features, 2)
            self.au = nn.Linear(in_features, n_aus)
            self.expr = nn.Linear(in_features, n_classes)
            for lin in (self.va, self.au, self.expr):
                nn.init.normal_(lin.weight, std=0.01)  # start near tanh(0) / p = 0.5 / uniform
                nn.init.zeros_(lin.bias)

    def forward(self, features: Tensor) -> Predictions:
        h = self.dropout(features)
        return Predictions(torch.tanh(self.va(h)), self.au(h), self.expr(h))


# ----------------------------------------------------------------------------- temporal


class WindowGRU(nn.Module):
    """(N, D) per-frame features of N / T windows of T frames, frames of a window consecutive
    -> (N, D + H): each frame's features beside the GRU state after it.

    Unidirectional, starting from zeros in every window: a frame sees its window's past only,
    so windows are independent and frames appended after a track's end change nothing before
    them. The features are kept beside the state so the heads still see the frame itself (a
    frame at a window's start has no past to draw on)."""

    def __init__(self, in_features: int, hidden: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.gru = nn.GRU(in_features, hidden, batch_first=True)
        self.out_features = in_features + hidden

    def forward(self, features: Tensor) -> Tensor:
        n, d = features.shape
        if n % self.window:
            raise ValueError(f"{n} frames are not whole windows of {self.window}")
        states, _ = self.gru(features.reshape(n // self.window, self.window, d))
        return torch.cat([features, states.reshape(n, -1).to(features.dtype)], 1)


# ----------------------------------------------------------------------------- model


class MultiTaskNet(nn.Module):
    """Normalize -> trunk -> [WindowGRU] -> TaskHeads. ``forward(images) -> Predictions``.

    The temporal model (``cfg.temporal``) takes the frames of whole windows, window after
    window: (N, 3, H, W) with N a multiple of ``cfg.window``, or (B, T, 3, H, W); its
    predictions are per frame, (N, ...), in the same order."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalize = Normalize(cfg.mean, cfg.std, cfg.channels_last, channels=cfg.channels,
                                   pixel_range=cfg.pixel_range)
        self.trunk = build_trunk(cfg)
        self.temporal = (WindowGRU(self.trunk.out_features, cfg.gru_hidden, cfg.window)
                         if cfg.temporal == "gru" else None)
        head_in = self.temporal.out_features if self.temporal is not None else self.trunk.out_features
        self.heads = TaskHeads(head_in, cfg.n_aus, cfg.n_classes, cfg.dropout)
        self.load_report: LoadReport | None = None
        if cfg.pretrained is not None:
            self.load_report = self.load_pretrained(cfg.pretrained, cfg.pretrained_format)

    @property
    def num_features(self) -> int:
        return self.trunk.out_features

    def forward_features(self, images: Tensor) -> Tensor:
        """Shared representation (B, D); uint8 or [0, 1] float images of any square size."""
        return self.trunk(self.normalize(images))

    def forward_head(self, features: Tensor) -> Predictions:
        return self.heads(features)

    def forward(self, images: Tensor) -> Predictions:
        if images.ndim == 5:  # (B, T, 3, H, W): windows
            images = images.flatten(0, 1)
        features = self.forward_features(images)
        if self.temporal is not None:
            features = self.temporal(features)
        return self.forward_head(features)

    def load_pretrained(self, path: str | Path, fmt: str | None = None) -> LoadReport:
        """Load a state_dict file non-strictly and say what matched.

        ``fmt`` None: keys starting with ``trunk.`` or ``heads.`` are taken as a whole-model
        checkpoint (ours); any others as a bare trunk (e.g. torchvision ``vgg16``:
        ``features.N.*``, ``classifier.0/3.*``). ``"torchvision"``: a torchvision ``vgg16``
        state_dict (its 1000-way ``classifier.6`` is left out). ``"vggface"``: a VGG-Face port
        (``conv1_1`` or ``conv_1_1`` ... ``conv5_3``, ``fc6``, ``fc7``, ``fc8``), mapped to the
        torchvision names; an ``fc6``/``fc7`` stored as a convolution (Caffe) is flattened, and
        the 2622-identity ``fc8`` is left out. The input convention (channel order, range, mean)
        is the config's, set from the same format (:data:`INPUT_CONVENTIONS`). A ``module.``
        prefix (DDP) is dropped, and a checkpoint dict holding the weights under ``state_dict``
        or ``model`` is unwrapped. Keys of another shape are skipped rather than fatal.
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"pretrained weights not found: {path} (expected a state_dict file)")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle/zip errors come in many types
            raise InputFileError(f"cannot read pretrained weights {path}: {e}") from e
        state = _unwrap_state_dict(obj, path)
        if fmt == "vggface":
            state = vggface_to_torchvision(state, path)
        elif fmt is not None and fmt != "torchvision":
            raise ConfigError(f"unknown pretrained format {fmt!r}; known: {', '.join(PRETRAINED_FORMATS)}")
        is_model = fmt is None and any(k.startswith(("trunk.", "heads.")) for k in state)
        target: nn.Module = self if is_model else self.trunk
        own = target.state_dict()
        ok = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        mismatched = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
        result = target.load_state_dict(ok, strict=False)
        report = LoadReport(
            target="model" if is_model else "trunk",
            loaded=sorted(ok),
            missing=sorted(result.missing_keys),
            unexpected=sorted(k for k in state if k not in own),
            mismatched=mismatched,
        )
        log.info("loaded %d tensors from %s into the %s", len(ok), path, report.target)
        for what in ("missing", "unexpected", "mismatched"):
            keys = getattr(report, what)
            if keys:
                log.warning("%s: %d %s keys: %s", path, len(keys), what, ", ".join(keys[:10]))
        return report


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputFileError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


#: features.N index of each VGG-16 convolution, by (block, conv) as VGG-Face names them
_VGG_CONV_INDEX = dict(zip(
    [(b, i) for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)],
    (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)))
_VGGFACE_KEY = re.compile(r"^conv_?(\d)_(\d)\.(weight|bias)$")


def vggface_to_torchvision(state: Mapping[str, Tensor], path: Path | str = "weights") -> dict[str, Tensor]:
    """A VGG-Face state_dict (``conv1_1``/``conv_1_1`` ... ``fc6``, ``fc7``, ``fc8``) under
    torchvision ``vgg16`` names. fc6/fc7 stored as 7x7 / 1x1 convolutions are flattened to
    linear weights; ``fc8`` (the 2622 training identities) keeps its name, so it is reported as
    unexpected and left out. Raises InputFileError when no key looks like VGG-Face."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = _VGGFACE_KEY.match(key)
        if m and (int(m[1]), int(m[2])) in _VGG_CONV_INDEX:
            out[f"features.{_VGG_CONV_INDEX[int(m[1]), int(m[2])]}.{m[3]}"] = value
        elif key.split(".")[0] in ("fc6", "fc7"):
            name, kind = key.split(".", 1)
            if kind == "weight" and value.ndim == 4:
                value = value.flatten(1)
            out[f"classifier.{0 if name == 'fc6' else 3}.{kind}"] = value
        else:
            out[key] = value
    if not any(k.startswith(("features.", "classifier.")) for k in out):
        raise InputFileError(f"{path}: no VGG-Face keys (conv1_1 ... conv5_3, fc6, fc7) in this state_dict")
    return out


def num_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "INPUT_CONVENTIONS",
    "PRETRAINED_FORMATS",
    "CompactCNN",
    "ConvBNAct",
    "MODEL_KINDS",
    "LoadReport",
    "ModelConfig",
    "MultiTaskNet",
    "Normalize",
    "Predictions",
    "TaskHeads",
    "VGGTrunk",
    "WindowGRU",
    "build_trunk",
    "num_params",
    "parse_kind",
    "vggface_to_torchvision",
]
