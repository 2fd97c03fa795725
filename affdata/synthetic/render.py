"""Rendering one planned video: scene, per-track pose, nuisances, H.264 encoding.

Nuisances are drawn per video (background, lighting gradient and tint, noise level, CRF) and
per frame (head motion, flicker, blinks, sensor noise), all from streams that never touch the
label trajectories. Faces are drawn at 2x and box-downsampled for antialiasing. x264 runs with
one thread so the bitstream is a function of the pixels alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from affdata.synthetic.affect import Affect, smooth_noise
from affdata.synthetic.face import FaceFrame, Identity, face_boxes
from affdata.synthetic.plan import STREAM_POSE, STREAM_SCENE, VideoPlan, rng_for
from affdata.synthetic.wild import (
    STREAM_WILD_OCCLUDE,
    STREAM_WILD_POSE,
    STREAM_WILD_SCENE,
    Accessories,
    Occluder,
    Wild,
    draw_accessories,
    draw_hand,
    wild_occluder,
    wild_pose,
    wild_scene,
)

SUPERSAMPLE = 2
CRF_RANGE = (20, 27)
X264_OPTIONS = {"preset": "veryfast", "tune": "film", "threads": "1"}


@dataclass(frozen=True)
class Pose:
    """Per-frame head pose of one track, plus nuisances that belong to the person."""

    cx: np.ndarray
    cy: np.ndarray
    height: np.ndarray
    angle: np.ndarray
    blink: np.ndarray
    clothes: tuple[float, float, float]


def sample_pose(ident: Identity, n: int, fps: int, slot: tuple[int, int], frame_h: int,
                rng: np.random.Generator) -> Pose:
    """Place a face inside its horizontal slot (x0, x1) and let it move slightly."""
    x0, x1 = slot
    h = min(ident.height * rng.uniform(0.93, 1.07), (x1 - x0) / 1.05, frame_h / 1.35)
    motion = 0.04 * h
    half_w = 0.55 * h
    span_x = max(0.0, (x1 - x0) / 2 - half_w - motion - 2)
    cx0 = (x0 + x1) / 2 + rng.uniform(-1, 1) * span_x
    lo, hi = 0.58 * h + motion + 2, frame_h - 0.52 * h - motion - 2
    cy0 = rng.uniform(lo, hi) if hi > lo else frame_h / 2
    wander = smooth_noise(n, fps, rng, 1.2, 1.0, dims=4)
    wander = np.clip(wander / max(1e-6, float(np.abs(wander).max())), -1, 1)
    blink = np.zeros(n)
    for start in rng.integers(0, max(n, 1), rng.poisson(0.3 * n / fps)).tolist():
        blink[start:start + 4] = np.maximum(blink[start:start + 4], [0.5, 1.0, 1.0, 0.5][: n - start])
    clothes = tuple(float(c) for c in rng.uniform(30, 220, 3))
    return Pose(cx=cx0 + motion * wander[:, 0], cy=cy0 + motion * wander[:, 1],
                height=h * (1 + 0.03 * wander[:, 2]), angle=0.08 * wander[:, 3], blink=blink,
                clothes=clothes)  # type: ignore[arg-type]


def track_slots(video: VideoPlan) -> list[tuple[int, int]]:
    if len(video.tracks) == 1:
        return [(0, video.width)]
    mid = video.width // 2
    return [(0, mid), (mid, video.width)]


def _background(w: int, h: int, rng: np.random.Generator) -> Image.Image:
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    img = Image.fromarray(np.broadcast_to(top + (bottom - top) * ramp, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        dw, dh = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
        draw.rectangle([x, y, x + dw, y + dh], fill=tuple(int(c) for c in rng.uniform(30, 230, 3)))
    return img


class Scene:
    """Per-video background and lighting, and the conversion of a drawn frame to pixels."""

    def __init__(self, video: VideoPlan, seed: int, fps: int) -> None:
        rng = rng_for(seed, STREAM_SCENE, video.index)
        w, h, ss = video.width, video.height, SUPERSAMPLE
        self.base = _background(w * ss, h * ss, rng)
        phi, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.3)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = ((xx - w / 2) * np.cos(phi) + (yy - h / 2) * np.sin(phi)) / max(w, h)
        tint = rng.uniform(0.92, 1.08, 3) * rng.uniform(0.8, 1.15)
        self.gain = ((1 + strength * ramp)[:, :, None] * tint).astype(np.float32)
        self.flicker = 1 + 0.03 * smooth_noise(video.frames, fps, rng, 0.8, 1.0)
        sigma = rng.uniform(1.5, 5.0)
        self.noise = rng.normal(0, sigma, (6, h, w, 3)).astype(np.float32)
        self.crf = int(rng.integers(CRF_RANGE[0], CRF_RANGE[1] + 1))
        self.rng = rng

    def finish(self, img: Image.Image, k: int) -> np.ndarray:
        """Downsample, light, add sensor noise; returns an RGB uint8 array."""
        arr = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float32)
        arr *= self.gain * np.float32(self.flicker[k])
        arr += self.noise[int(self.rng.integers(len(self.noise)))]
        np.clip(arr, 0, 255, out=arr)
        return arr.astype(np.uint8)


def _apply_wild(scene: Scene, video: VideoPlan, wild: Wild, seed: int) -> float:
    """Lighting, colour cast and compression of the wild scene; returns the blur sigma."""
    ws = wild_scene(wild, rng_for(seed, STREAM_WILD_SCENE, video.index))
    if wild.lighting:
        h, w = scene.gain.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = ((xx - w / 2) * np.cos(ws.direction) + (yy - h / 2) * np.sin(ws.direction)) / max(w, h)
        extra = np.clip(1 + ws.gradient * 2 * ramp, 0.2, None)[:, :, None] * ws.cast * ws.gain
        scene.gain = (scene.gain * extra).astype(np.float32)
    if ws.crf is not None:
        scene.crf = ws.crf
    return ws.blur


def render_video(path: Path, video: VideoPlan, people: list[tuple[Identity, Affect]], seed: int,
                 fps: int, progress: Callable[[int], None] | None = None, *, wild: Wild | None = None,
                 accessories: list[Accessories] | None = None) -> list[np.ndarray]:
    """Render and encode ``video``; returns each track's per-frame (x, y, w, h) boxes (true
    boxes: a detector's jitter is added by the caller). ``wild``: the nuisances of
    :mod:`affdata.synthetic.wild` (pose, lighting, occlusion, blur); ``accessories``: glasses
    and beards per track."""
    scene = Scene(video, seed, fps)
    poses = [sample_pose(ident, video.frames, fps, slot, video.height,
                         rng_for(seed, STREAM_POSE, track.index))
             for (ident, _), slot, track in zip(people, track_slots(video), video.tracks)]
    blur = 0.0
    turns = [None] * len(people)
    hands: list[Occluder | None] = [None] * len(people)
    if wild is not None and wild.on:
        blur = _apply_wild(scene, video, wild, seed)
        turns = [wild_pose(wild, video.frames, fps, rng_for(seed, STREAM_WILD_POSE, t.index)) for t in video.tracks]
        hands = [wild_occluder(wild, video.frames, fps, rng_for(seed, STREAM_WILD_OCCLUDE, t.index))
                 for t in video.tracks]
        poses = [replace(p, angle=p.angle + turn.roll) for p, turn in zip(poses, turns)]
    squash = [np.cos(t.yaw) if t is not None else np.ones(video.frames) for t in turns]
    boxes = [face_boxes(ident, p.cx, p.cy, p.height, p.angle, q)
             for (ident, _), p, q in zip(people, poses, squash)]
    ss = SUPERSAMPLE
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {**X264_OPTIONS, "crf": str(scene.crf)}
        stream.codec_context.thread_count = 1
        pending = 0
        for k in range(video.frames):
            img = scene.base.copy()
            draw = ImageDraw.Draw(img)
            for i, ((ident, affect), pose) in enumerate(zip(people, poses)):
                face = FaceFrame(draw, ident, pose.cx[k] * ss, pose.cy[k] * ss, pose.height[k] * ss,
                                 pose.angle[k], float(squash[i][k]))
                face.render(affect.au[k], affect.valence[k], affect.arousal[k],
                            float(affect.smirk[k]), pose.blink[k], pose.clothes)
                if accessories is not None:
                    draw_accessories(face, ident, accessories[i])
                if hands[i] is not None:
                    draw_hand(face, hands[i], k, ident.skin)
            pixels = scene.finish(img, k)
            if blur > 0.05:
                pixels = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(blur)))
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            pending += 1
            if progress is not None and (pending == fps or k == video.frames - 1):
                progress(pending)
                pending = 0
        for packet in stream.encode(None):
            container.mux(packet)
    return boxes
