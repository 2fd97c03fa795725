"""The nuisances of the wild, as knobs on the synthetic generator.

The plain generator draws labels that are exactly what drew the pixels, on frontal, evenly lit,
unoccluded faces cropped from their true boxes: a linear model on a thumbnail does well there,
so a network's figures on it say little about real data. :class:`Wild` adds what makes Aff-Wild2
hard, each knob on its own (0 leaves that part as the plain generator draws it):

- ``pose``: head roll up to ``pose x 0.45`` rad (~26 degrees at 1) and yaw up to ``pose x 0.6``
  rad (the face turns: its width shrinks by cos(yaw) and the features shift towards the turned
  side), slowly varying per track.
- ``lighting``: per-video brightness (x0.45 to x1.35 at 1), a stronger directional gradient and a
  colour cast up to +-25 % per channel; slow flicker.
- ``occlusion``: per track, a hand (a skin-coloured blob with fingers) over the mouth, cheek or
  eyes for 0.5 to 2.5 s at a time (about ``occlusion x 20`` % of the frames); per subject,
  glasses with probability ``occlusion x 0.5`` (a third of them sunglasses, which hide the eyes).
- ``blur``: per-video Gaussian blur (sigma up to ``blur x 1.6`` px) and H.264 CRF up to
  ``27 + blur x 10`` (blocking).
- ``box_jitter``: the boxes written to boxes.csv are a detector's: per-track scale bias and
  per-frame shifts and size noise of ``box_jitter x 8`` % of the face size.
- ``identity``: wider proportions and face sizes, beards and darker or lighter skins than the
  plain generator's palette (``identity`` in [0, 1] mixes towards the wider ranges).
- ``annotators`` (>= 1: on): VA is the mean of that many simulated annotators, each with a
  reaction lag (0.2 to 1.0 s), a bias (+-0.15), a gain (0.7 to 1.2) and noise (the
  Aff-Wild2 ground truth is an average of annotators). ``label_noise``: AU labels are read
  with noise on the intensity (an annotator's threshold, sigma ``label_noise x 0.25``: AUs near
  threshold flip) and expression labels lag the segment change by up to ``label_noise x 0.8`` s
  and are a confusable class (fear/surprise, anger/disgust, sadness/neutral...) for a
  ``label_noise x 25`` % share of segments.

Every draw comes from streams of its own (:data:`STREAM_WILD`), so the plain generator's
outputs are unchanged when ``Wild`` is off, and the same seed gives the same dataset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from affdata.errors import ConfigError
from affdata.synthetic.affect import AU_THRESHOLD, RENDER_AUS, Affect, box_smooth, smooth_noise

#: random streams of the wild knobs (after plan.STREAM_POSE = 6)
STREAM_WILD_POSE, STREAM_WILD_SCENE, STREAM_WILD_OCCLUDE, STREAM_WILD_BOX, STREAM_WILD_ID, \
    STREAM_WILD_LABEL = range(11, 17)

#: classes annotators confuse (canonical ids): fear/surprise, anger/disgust, sadness/neutral...
CONFUSABLE = {0: 5, 1: 2, 2: 1, 3: 6, 4: 0, 5: 0, 6: 3, 7: 4}


@dataclass(frozen=True)
class Wild:
    pose: float = 0.0
    lighting: float = 0.0
    occlusion: float = 0.0
    blur: float = 0.0
    box_jitter: float = 0.0
    identity: float = 0.0
    annotators: int = 0
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "annotators":
                if not isinstance(value, (int, np.integer)) or value < 0 or value > 20:
                    raise ConfigError(f"annotators must be an integer in 0..20, got {value!r}")
            elif not (isinstance(value, (int, float)) and 0.0 <= value <= 2.0):
                raise ConfigError(f"wild knob {f.name} must be in [0, 2], got {value!r}")

    @property
    def on(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def preset(cls) -> Wild:
        """``--wild``: every nuisance at its documented strength, 3 VA annotators."""
        return cls(pose=1.0, lighting=1.0, occlusion=1.0, blur=1.0, box_jitter=1.0, identity=1.0,
                   annotators=3, label_noise=1.0)

    @classmethod
    def pixels(cls) -> Wild:
        """The nuisances of the pixels only (pose, lighting, occlusion, blur, identity at 1): no
        detector-like boxes, no annotator lag or label noise. At 60 people the network is above the
        linear baseline and the floor there on AU and expression, level on VA (docs/synthetic.md)."""
        return cls(pose=1.0, lighting=1.0, occlusion=1.0, blur=1.0, identity=1.0)

    @classmethod
    def parse(cls, text: str | None, *, preset: bool = False) -> Wild:
        """``pose=0.5,occlusion=1`` on top of the preset (``preset``) or of all-off; the word
        ``pixels`` sets the five pixel knobs of :meth:`pixels` to 1 (``pixels,blur=0.5``)."""
        base = cls.preset().to_json() if preset else cls().to_json()
        for item in (text or "").split(","):
            if not item.strip():
                continue
            if item.strip() == "pixels":
                base |= {k: v for k, v in cls.pixels().to_json().items() if v}
                continue
            key, _, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if key not in base or not value.strip():
                raise ConfigError(f"unknown wild knob {item.strip()!r}; known: {', '.join(base)} (NAME=VALUE), or pixels")
            try:
                base[key] = int(value) if key == "annotators" else float(value)
            except ValueError:
                raise ConfigError(f"wild knob {key} needs a number, got {value.strip()!r}") from None
        return cls(**base)


# ----------------------------------------------------------------------------- pixels


@dataclass(frozen=True)
class WildPose:
    roll: np.ndarray  # radians, added to the plain generator's small roll
    yaw: np.ndarray  # radians


def wild_pose(w: Wild, n: int, fps: int, rng: np.random.Generator) -> WildPose:
    if w.pose == 0:
        return WildPose(np.zeros(n), np.zeros(n))
    wander = smooth_noise(n, fps, rng, 1.5, 1.0, dims=2)
    wander = np.clip(wander / max(1e-6, float(np.abs(wander).max())), -1, 1)
    centre = rng.uniform(-0.5, 0.5, 2)  # some people sit turned
    return WildPose(roll=w.pose * 0.45 * np.clip(0.6 * wander[:, 0] + centre[0], -1, 1),
                    yaw=w.pose * 0.6 * np.clip(0.6 * wander[:, 1] + centre[1], -1, 1))


@dataclass(frozen=True)
class WildScene:
    gain: float  # overall brightness factor
    cast: np.ndarray  # (3,) per-channel colour factor
    gradient: float  # extra directional light strength
    direction: float  # its angle in the image plane, radians
    blur: float  # Gaussian sigma in px
    crf: int | None  # None: the plain generator's


def wild_scene(w: Wild, rng: np.random.Generator) -> WildScene:
    gain = float(np.exp(rng.uniform(np.log(0.45), np.log(1.35)) * w.lighting)) if w.lighting else 1.0
    cast = 1 + w.lighting * rng.uniform(-0.25, 0.25, 3) if w.lighting else np.ones(3)
    gradient = w.lighting * rng.uniform(0.1, 0.5)
    direction = float(rng.uniform(0, 2 * np.pi))
    blur = w.blur * rng.uniform(0.0, 1.6)
    crf = int(rng.integers(27, 27 + int(round(10 * w.blur)) + 1)) if w.blur else None
    return WildScene(gain, cast.astype(np.float32), gradient, direction, blur, crf)


@dataclass(frozen=True)
class Occluder:
    """A hand in front of one track's face: per frame, on or off, where (face units)."""

    on: np.ndarray  # bool per frame
    x: np.ndarray
    y: np.ndarray
    size: float


@dataclass(frozen=True)
class Accessories:
    glasses: int  # 0 none, 1 clear frames, 2 sunglasses
    beard: float  # 0 none .. 1 full
    frame_colour: tuple[int, int, int]


def wild_occluder(w: Wild, n: int, fps: int, rng: np.random.Generator) -> Occluder:
    on = np.zeros(n, dtype=bool)
    x, y = np.zeros(n), np.zeros(n)
    if w.occlusion:
        goal = min(0.6, 0.2 * w.occlusion)
        for _ in range(100):
            if on.mean() >= goal * rng.uniform(0.5, 1.5) or n < fps:
                break
            length = int(rng.uniform(0.5, 2.5) * fps)
            start = int(rng.integers(0, max(1, n - length)))
            on[start:start + length] = True
            spot = [(0.0, 0.26), (0.2, 0.15), (-0.2, 0.15), (0.14, -0.05), (-0.05, 0.3)][int(rng.integers(5))]
            x[start:start + length] = spot[0] + rng.normal(0, 0.03)
            y[start:start + length] = spot[1] + rng.normal(0, 0.03)
    return Occluder(on, x, y, float(rng.uniform(0.16, 0.24)))


def wild_accessories(w: Wild, rng: np.random.Generator) -> Accessories:
    glasses = 0
    if rng.random() < 0.5 * w.occlusion:
        glasses = 2 if rng.random() < 1 / 3 else 1
    beard = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.35 * w.identity else 0.0
    frame = tuple(int(c) for c in rng.integers(10, 120, 3))
    return Accessories(glasses, beard, frame)  # type: ignore[arg-type]


def draw_accessories(face, ident, acc: Accessories) -> None:
    """Beard and glasses over a drawn face (``face`` is a :class:`FaceFrame`)."""
    from affdata.synthetic.face import _ellipse, _mix

    rx = ident.aspect / 2
    if acc.beard:
        t = np.linspace(0, np.pi, 24)
        outer = np.stack([rx * 0.98 * np.cos(t), 0.5 * np.sin(t) + 0.01], 1)
        inner = np.stack([rx * 0.55 * np.cos(t[::-1]), 0.24 + 0.12 * np.sin(t[::-1])], 1)
        face.poly(np.concatenate([outer, inner]), _mix(ident.skin, ident.hair, acc.beard))
    if acc.glasses:
        for side in (-1, 1):
            ring = _ellipse(side * ident.eye_dx, ident.eye_y, ident.eye_w * 1.5, ident.eye_h * 2.4, 20)
            if acc.glasses == 2:
                face.poly(ring, (20, 20, 24))
            face.line(np.concatenate([ring, ring[:1]]), acc.frame_colour, 1.4)
        face.line(np.array([[-ident.eye_dx + ident.eye_w * 1.5, ident.eye_y],
                            [ident.eye_dx - ident.eye_w * 1.5, ident.eye_y]]), acc.frame_colour, 1.4)


def draw_hand(face, occ: Occluder, k: int, skin: tuple[float, float, float]) -> None:
    """A hand (palm and four fingers) over the face at frame ``k``."""
    from affdata.synthetic.face import _dark, _ellipse, _rgb

    if not occ.on[k]:
        return
    x, y, s = float(occ.x[k]), float(occ.y[k]), occ.size
    tone = _rgb(tuple(min(255.0, c * 1.05) for c in skin))  # type: ignore[arg-type]
    face.poly(_ellipse(x, y + 0.2 * s, 0.55 * s, 0.5 * s, 20), tone)
    for i in range(4):
        fx = x + (i - 1.5) * 0.25 * s
        face.poly(_ellipse(fx, y - 0.35 * s, 0.1 * s, 0.38 * s, 12), tone)
        face.line(np.array([[fx + 0.12 * s, y - 0.5 * s], [fx + 0.12 * s, y]]), _dark(tone, 0.35))


def jitter_boxes(w: Wild, boxes: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(x, y, w, h) boxes as a face detector returns them: biased scale, shaky per frame."""
    if w.box_jitter == 0:
        return boxes
    b = boxes.astype(np.float64)
    n = len(b)
    s = 0.08 * w.box_jitter
    scale = np.exp(rng.normal(0, s)) * np.exp(rng.normal(0, s / 2, n))
    cx = b[:, 0] + b[:, 2] / 2 + rng.normal(0, s, n) * b[:, 2]
    cy = b[:, 1] + b[:, 3] / 2 + rng.normal(0, s, n) * b[:, 3] + rng.normal(0, s) * b[:, 3]
    bw, bh = b[:, 2] * scale, b[:, 3] * scale * np.exp(rng.normal(0, s / 2, n))
    x0 = np.clip(np.round(cx - bw / 2), 0, width - 2)
    y0 = np.clip(np.round(cy - bh / 2), 0, height - 2)
    x1 = np.clip(np.round(cx + bw / 2), x0 + 2, width)
    y1 = np.clip(np.round(cy + bh / 2), y0 + 2, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], 1).astype(int)


def widen_identity(w: Wild, ident, rng: np.random.Generator):
    """A subject's identity with wider proportions and skin tones (``identity`` mixes in)."""
    from dataclasses import replace

    if w.identity == 0:
        return ident
    t = min(1.0, w.identity)
    tone = rng.uniform(0, 1)
    skin = np.array([255, 224, 196]) * (1 - tone) + np.array([70, 45, 32]) * tone
    mixed = np.clip(np.array(ident.skin) * (1 - t) + skin * t, 0, 255)
    return replace(
        ident,
        skin=tuple(float(c) for c in mixed),
        lips=tuple(float(c) for c in np.clip(mixed * np.array([0.85, 0.55, 0.55]), 0, 255)),
        height=ident.height * float(np.exp(t * rng.uniform(-0.25, 0.12))),
        aspect=float(np.clip(ident.aspect + t * rng.uniform(-0.08, 0.08), 0.6, 0.88)),
        eye_dx=ident.eye_dx + t * rng.uniform(-0.015, 0.015),
        mouth_w=ident.mouth_w + t * rng.uniform(-0.015, 0.02),
        nose_len=ident.nose_len + t * rng.uniform(-0.02, 0.03),
    )


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class NoisyLabels:
    valence: np.ndarray
    arousal: np.ndarray
    au: np.ndarray  # bool (frames, len(aus))
    expression: np.ndarray  # int16 canonical ids


def annotate(w: Wild, affect: Affect, aus: tuple[int, ...], classes: tuple[int, ...], fps: int,
             rng: np.random.Generator) -> NoisyLabels:
    """The labels people would write for ``affect``: VA averaged over lagged, biased annotators;
    AUs read off a noisy intensity; expressions late and sometimes confused."""
    n = affect.frames
    valence, arousal = affect.valence, affect.arousal
    if w.annotators:
        traces = []
        for _ in range(w.annotators):
            lag = int(round(rng.uniform(0.2, 1.0) * fps))
            va = np.stack([valence, arousal], 1)
            va = np.concatenate([np.repeat(va[:1], lag, 0), va[:n - lag]]) if 0 < lag < n else va
            va = va * rng.uniform(0.7, 1.2, 2) + rng.uniform(-0.15, 0.15, 2)
            va = va + smooth_noise(n, fps, rng, 0.7, 0.08, dims=2)
            traces.append(box_smooth(va, max(1, fps // 5)))
        mean = np.clip(np.mean(traces, axis=0), -1, 1)
        valence, arousal = np.round(mean[:, 0], 3), np.round(mean[:, 1], 3)
    cols = [RENDER_AUS.index(a) for a in aus]
    intensity = affect.au[:, cols].astype(np.float64)
    if w.label_noise:
        sigma = 0.25 * w.label_noise
        intensity = intensity + smooth_noise(n, fps, rng, 0.4, sigma, dims=len(cols)) \
            + rng.normal(0, sigma / 3, (1, len(cols)))
    au = intensity > AU_THRESHOLD
    expression = affect.expression.copy()
    if w.label_noise:
        change = np.flatnonzero(np.diff(expression.astype(np.int64))) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [n]])
        out = expression.copy()
        for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            label = int(expression[s])
            if rng.random() < 0.25 * w.label_noise and CONFUSABLE.get(label) in classes:
                label = CONFUSABLE[label]
            lag = int(round(rng.uniform(0, 0.8 * w.label_noise) * fps)) if i else 0
            prev = int(out[s - 1]) if s > 0 else label
            out[s:min(e, s + lag)] = prev
            out[min(e, s + lag):e] = label
        expression = out.astype(np.int16)
    return NoisyLabels(valence, arousal, au, expression)
