"""Procedural faces: a subject's identity and the drawing of one face in one frame.

Geometry lives in face units (face height 1, origin at the face centre, y down) and is mapped
to pixels by the frame's pose (centre, height in px, roll), so head motion moves everything
together and the true face box follows from the pose alone. Each labelled AU has its own
visible effect (brow shape, wrinkles, lid and cheek changes, lip shape, mouth opening, jaw),
valence bends the mouth and arousal opens the eyes; identity only changes colours and
proportions, never the size of an effect relative to the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from affdata.synthetic.affect import RENDER_AUS

Color = tuple[float, float, float]

_SKIN_LIGHT, _SKIN_DARK = np.array([240, 208, 182]), np.array([105, 70, 48])
_HAIR = np.array([[25, 20, 18], [60, 40, 28], [110, 75, 45], [200, 165, 105], [150, 70, 35],
                  [150, 150, 150]])
_IRIS = np.array([[70, 45, 25], [60, 100, 150], [70, 110, 70], [40, 30, 25]])
_AU = {au: i for i, au in enumerate(RENDER_AUS)}


@dataclass(frozen=True)
class Identity:
    """Everything that makes a subject look like themself (colours and proportions)."""

    skin: Color
    hair: Color
    iris: Color
    lips: Color
    height: float  # typical face height in px (the face oval, chin to crown)
    aspect: float  # face width / height
    jaw: float  # chin narrowing, 0 (square) .. 0.35 (pointed)
    hair_style: int  # 0 short, 1 long, 2 receding
    hairline: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_y: float
    brow_t: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_t: float


def sample_identity(rng: np.random.Generator) -> Identity:
    tone = rng.uniform(0.0, 1.0)
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK + rng.normal(0, 6, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 8, 3)
    iris = _IRIS[rng.integers(len(_IRIS))] + rng.normal(0, 8, 3)
    lips = skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 6, 3)

    def col(c: np.ndarray) -> Color:
        return tuple(float(x) for x in np.clip(c, 0, 255))  # type: ignore[return-value]

    return Identity(
        skin=col(skin), hair=col(hair), iris=col(iris), lips=col(lips),
        height=rng.uniform(105, 150), aspect=rng.uniform(0.68, 0.8), jaw=rng.uniform(0.05, 0.3),
        hair_style=int(rng.integers(3)), hairline=rng.uniform(-0.39, -0.34),
        eye_dx=rng.uniform(0.135, 0.16), eye_y=rng.uniform(-0.07, -0.03),
        eye_w=rng.uniform(0.06, 0.072), eye_h=rng.uniform(0.036, 0.044),
        brow_y=rng.uniform(-0.16, -0.14), brow_t=rng.uniform(0.018, 0.03),
        nose_len=rng.uniform(0.15, 0.19), nose_w=rng.uniform(0.09, 0.12),
        mouth_y=rng.uniform(0.24, 0.27), mouth_w=rng.uniform(0.1, 0.125),
        lip_t=rng.uniform(0.018, 0.026),
    )


def face_boxes(ident: Identity, cx: np.ndarray, cy: np.ndarray, height: np.ndarray,
               angle: np.ndarray, squash: np.ndarray | float = 1.0) -> np.ndarray:
    """Per-frame (x, y, w, h) int box of the neutral face oval under the pose: independent of
    expression, so a crop never leaks a label through its framing. ``squash``: cos(yaw), the
    face's width factor when the head turns."""
    a, b = height * ident.aspect / 2 * squash, height / 2
    ex = np.sqrt((a * np.cos(angle)) ** 2 + (b * np.sin(angle)) ** 2)
    ey = np.sqrt((a * np.sin(angle)) ** 2 + (b * np.cos(angle)) ** 2)
    x0, y0 = np.round(cx - ex), np.round(cy - ey)
    return np.stack([x0, y0, np.round(cx + ex) - x0, np.round(cy + ey) - y0], 1).astype(int)


def _mix(c: Color, other: Color, t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0)
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c, other))  # type: ignore[return-value]


def _rgb(c: Color) -> tuple[int, int, int]:
    return _mix(c, c, 0.0)


def _dark(c: Color, t: float) -> tuple[int, int, int]:
    return _mix(c, (c[0] * 0.3, c[1] * 0.25, c[2] * 0.25), t)


def _ellipse(x: float, y: float, rx: float, ry: float, m: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, m, endpoint=False)
    return np.stack([x + rx * np.cos(t), y + ry * np.sin(t)], 1)


def _parabola(x0: float, x1: float, y0: float, y1: float, ymid: float, m: int = 13) -> np.ndarray:
    """Curve from (x0, y0) to (x1, y1) passing ``ymid`` at the middle (quadratic Bezier)."""
    t = np.linspace(0, 1, m)[:, None]
    p0, p2 = np.array([x0, y0]), np.array([x1, y1])
    p1 = np.array([(x0 + x1) / 2, 2 * ymid - (y0 + y1) / 2])
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


class FaceFrame:
    """Draws one face for one frame: pose + affect values -> polygons on a PIL canvas."""

    def __init__(self, draw: ImageDraw.ImageDraw, ident: Identity, cx: float, cy: float,
                 height: float, angle: float, squash: float = 1.0) -> None:
        self.draw, self.ident, self.h = draw, ident, height
        c, s = np.cos(angle), np.sin(angle)
        self.rot = np.array([[c, -s], [s, c]]) * height
        if squash != 1.0:  # a turned head (yaw): narrower, in the face's own frame
            self.rot = self.rot @ np.diag([squash, 1.0])
        self.centre = np.array([cx, cy])
        self.lw = max(1, int(round(height / 55)))  # a thin line, ~2 px on a 112 px crop

    def _px(self, pts: np.ndarray) -> list[tuple[float, float]]:
        return [tuple(p) for p in (pts @ self.rot.T + self.centre).tolist()]

    def poly(self, pts: np.ndarray, fill: tuple[int, int, int]) -> None:
        self.draw.polygon(self._px(pts), fill=fill)

    def line(self, pts: np.ndarray, fill: tuple[int, int, int], width: float = 1.0) -> None:
        self.draw.line(self._px(pts), fill=fill, width=max(1, int(round(self.lw * width))),
                       joint="curve")

    def render(self, au: np.ndarray, valence: float, arousal: float, smirk: float,
               blink: float, clothes: Color) -> None:
        """``au`` is one row of :attr:`Affect.au` (intensities in RENDER_AUS order)."""
        g = self.ident
        A = {k: float(au[i]) for k, i in _AU.items()}
        skin = g.skin
        rx = g.aspect / 2
        # Body, hair behind the head, ears, face oval (the chin drops with AU26).
        self.poly(np.array([[-1.2 * rx, 0.62], [1.2 * rx, 0.62], [2.6 * rx, 1.2], [-2.6 * rx, 1.2]]),
                  _rgb(clothes))
        self.poly(np.array([[-0.3 * rx, 0.2], [0.3 * rx, 0.2], [0.35 * rx, 0.66], [-0.35 * rx, 0.66]]),
                  _dark(skin, 0.25))
        if g.hair_style == 1:
            self.poly(np.concatenate([_ellipse(0, -0.04, rx + 0.07, 0.56, 28)[14:],
                                      np.array([[rx + 0.07, 0.5], [-rx - 0.07, 0.5]])]),
                      _rgb(g.hair))
        for side in (-1, 1):
            self.poly(_ellipse(side * rx * 0.98, -0.02, 0.04, 0.08, 12), _dark(skin, 0.12))
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        down = np.sin(t) > 0
        ox = rx * np.cos(t) * np.where(down, 1 - g.jaw * np.sin(t) ** 2, 1)
        oy = np.sin(t) * np.where(down, 0.5 + 0.07 * A[26], 0.5)
        self.poly(np.stack([ox, oy], 1), _rgb(skin))
        # Hair over the forehead.
        if g.hair_style != 2:
            cap = _ellipse(0, 0, rx * 1.05, 0.53, 48)[25:48]
            hairline = _parabola(rx * 0.98, -rx * 0.98, g.hairline + 0.16, g.hairline + 0.16,
                                 g.hairline, 15)
            self.poly(np.concatenate([cap, hairline]), _rgb(g.hair))
        else:
            for side in (-1, 1):
                self.poly(np.array([[side * rx * 1.02, -0.3], [side * rx * 0.7, -0.38],
                                    [side * rx * 0.8, -0.1], [side * rx * 1.02, -0.05]]),
                          _rgb(g.hair))
        self._brows(A, arousal)
        self._eyes(A, arousal, blink)
        self._nose(A)
        self._mouth(A, valence, smirk)

    def _brows(self, A: dict[int, float], arousal: float) -> None:
        g, skin = self.ident, self.ident.skin
        # AU1: central forehead wrinkles; AU2: lateral ones; AU4: vertical furrows.
        for k, y in enumerate((-0.255, -0.29)):
            if A[1] > 0.05:
                self.line(_parabola(-0.07 + 0.01 * k, 0.07 - 0.01 * k, y, y, y - 0.012),
                          _dark(skin, 0.55 * A[1]))
            if A[2] > 0.05:
                for side in (-1, 1):
                    self.line(_parabola(side * 0.11, side * 0.22, y + 0.01, y + 0.03, y + 0.005, 7),
                              _dark(skin, 0.55 * A[2]))
        if A[4] > 0.05:
            for side in (-1, 1):
                self.line(np.array([[side * 0.022, -0.175], [side * 0.028, -0.105]]),
                          _dark(skin, 0.6 * A[4]), 1.3)
        lift = 0.03 * arousal
        for side in (-1, 1):
            ix = side * (0.055 - 0.025 * A[4])
            iy = g.brow_y - 0.065 * A[1] + 0.045 * A[4] - lift
            oy = g.brow_y + 0.012 - 0.065 * A[2] + 0.015 * A[4] - lift
            my = g.brow_y - 0.022 - 0.03 * A[1] - 0.035 * A[2] + 0.03 * A[4] - lift
            mid = _parabola(ix, side * 0.235, iy, oy, my, 11)
            half = np.linspace(0.55, 0.25, 11)[:, None] * g.brow_t
            self.poly(np.concatenate([mid - [0, 1] * half, (mid + [0, 1] * half)[::-1]]),
                      _mix(g.hair, (0, 0, 0), 0.35))

    def _eyes(self, A: dict[int, float], arousal: float, blink: float) -> None:
        g, skin = self.ident, self.ident.skin
        open_ = 1.0 - blink
        hu = g.eye_h * (1 + 0.6 * arousal) * (1 - 0.4 * A[7]) * (1 - 0.15 * A[6]) * open_
        hl = g.eye_h * 0.75 * (1 - 0.7 * A[7]) * (1 - 0.45 * A[6]) * open_
        hu, hl = max(hu, 0.002), max(hl, 0.002)
        x = np.linspace(-g.eye_w, g.eye_w, 13)
        bump = 1 - (x / g.eye_w) ** 2
        for side in (-1, 1):
            ex, ey = side * g.eye_dx, g.eye_y
            upper = np.stack([ex + x, ey - hu * bump], 1)
            lower = np.stack([ex + x, ey + hl * bump], 1)
            if A[6] > 0.05:  # cheek raise: rounded cheek under the eye, crow's feet
                self.poly(_ellipse(side * (g.eye_dx + 0.01), ey + 0.125 - 0.035 * A[6], 0.08, 0.045),
                          _mix(skin, (min(255, skin[0] * 1.15), skin[1] * 0.92, skin[2] * 0.92),
                               0.6 * A[6]))
                ox = side * (g.eye_dx + g.eye_w + 0.012)
                for dy in (-0.02, 0.0, 0.02):
                    self.line(np.array([[ox, ey + dy * 0.5], [ox + side * 0.04, ey + dy * 1.6]]),
                              _dark(skin, 0.55 * A[6]))
            self.poly(np.concatenate([upper, lower[::-1]]), (238, 236, 230))
            r = g.eye_h * 0.95
            for radius, colour in ((r, g.iris), (r * 0.45, (15, 12, 12))):
                circle = _ellipse(ex, ey, radius, radius, 16)
                t = np.clip((circle[:, 0] - ex) / g.eye_w, -1, 1)
                lo, hi = ey - hu * (1 - t**2), ey + hl * (1 - t**2)
                circle[:, 1] = np.clip(circle[:, 1], lo, hi)
                self.poly(circle, _rgb(colour))
            self.line(upper, (30, 22, 20), 1.4)
            self.line(upper - [0, 0.022], _dark(skin, 0.3))  # lid crease
            if A[7] > 0.05:  # lid tightener: tense, straight lower lid
                self.line(lower + [0, 0.006], _dark(skin, 0.6 * A[7]), 1.2)

    def _nose(self, A: dict[int, float]) -> None:
        g, skin = self.ident, self.ident.skin
        bottom = g.eye_y + g.nose_len - 0.02 * A[9] - 0.008 * A[10]
        self.line(np.array([[0.02, g.eye_y + 0.03], [0.03, bottom - 0.03]]), _dark(skin, 0.2))
        self.line(_parabola(-g.nose_w / 2, g.nose_w / 2, bottom, bottom, bottom + 0.03, 9),
                  _dark(skin, 0.3))
        flare = 1 + 0.4 * A[9]
        for side in (-1, 1):
            self.poly(_ellipse(side * g.nose_w * 0.27, bottom + 0.005, 0.018 * flare, 0.009, 10),
                      _dark(skin, 0.7))
        if A[9] > 0.05:  # nose wrinkler: creases across the bridge
            for y in (-0.015, 0.017, 0.049):
                self.line(_parabola(-0.045, 0.045, g.eye_y + y, g.eye_y + y, g.eye_y + y - 0.012, 7),
                          _dark(skin, 0.75 * A[9]), 1.1)

    def _mouth(self, A: dict[int, float], valence: float, smirk: float) -> None:
        g, skin = self.ident, self.ident.skin
        my = g.mouth_y + 0.02 * A[26]
        cw = g.mouth_w * (1 + 0.2 * A[12] + 0.45 * A[20] - 0.28 * A[23])
        corner = -0.035 * valence - 0.045 * A[12] + 0.045 * A[15] + 0.01 * A[20]
        cl = my + corner - 0.05 * max(-smirk, 0.0)
        cr = my + corner - 0.05 * max(smirk, 0.0)
        mid = my + 0.015 * valence
        gap_u = 0.015 * A[25] + 0.02 * A[26]
        gap_l = 0.03 * A[25] + 0.055 * A[26]
        thin = (1 - 0.35 * A[23]) * (1 - 0.6 * A[24]) * (1 - 0.3 * A[20])
        tu, tl = g.lip_t * thin, g.lip_t * 1.3 * thin
        line = _parabola(-cw, cw, cl, cr, mid, 15)
        x = line[:, 0]
        bump = np.sqrt(np.clip(1 - (x / cw) ** 2, 0, 1))
        snarl = 0.032 * A[10] * np.clip(1 - (x / cw) ** 2, 0, 1) ** 0.3  # flat raised upper lip
        up_in = line - np.stack([0 * x, gap_u * bump + snarl], 1)
        is_open = gap_u + gap_l + 0.032 * A[10] > 0.004
        lo_in = line + np.stack([0 * x, gap_l * bump], 1)
        up_out = up_in - np.stack([0 * x, tu * bump * (1 - 0.25 * np.exp(-(x / 0.02) ** 2))], 1)
        lo_out = lo_in + np.stack([0 * x, tl * bump], 1)
        # Folds from the nose to the corners deepen with AU12 (and AU10).
        nose_y = g.eye_y + g.nose_len
        fold = _dark(skin, 0.15 + 0.5 * A[12] + 0.3 * A[10])
        for side, cy in ((-1, cl), (1, cr)):
            self.line(_parabola(side * g.nose_w * 0.6, side * (cw + 0.025), nose_y, cy + 0.01,
                                (nose_y + cy) / 2 + 0.005, 9), fold)
            if A[15] > 0.05:
                self.line(np.array([[side * cw, cy + 0.01], [side * (cw + 0.015), cy + 0.06]]),
                          _dark(skin, 0.55 * A[15]), 1.2)
            if A[20] > 0.05:
                for dy in (-0.012, 0.012):  # stretched skin beside the corners
                    self.line(np.array([[side * (cw + 0.008), cy + dy * 0.3],
                                        [side * (cw + 0.06), cy + dy]]),
                              _dark(skin, 0.6 * A[20]), 1.3)
        if abs(smirk) > 0.05:
            side = 1 if smirk > 0 else -1
            cy = cr if smirk > 0 else cl
            self.poly(_ellipse(side * (cw + 0.02), cy - 0.005, 0.012, 0.012, 8),
                      _dark(skin, 0.5 * abs(smirk)))
        if is_open:
            self.poly(np.concatenate([up_in, lo_in[::-1]]), (70, 22, 28))
            teeth = np.minimum(up_in[:, 1] + 0.01 + 0.03 * A[10], lo_in[:, 1])
            self.poly(np.concatenate([up_in, np.stack([x, teeth], 1)[::-1]]), (235, 232, 220))
        lips = _mix(g.lips, (90, 20, 30), 0.35 * A[23])
        self.poly(np.concatenate([up_out, up_in[::-1]]), lips)
        self.poly(np.concatenate([lo_in, lo_out[::-1]]), _mix(lips, (255, 255, 255), 0.08))
        self.line(up_in if is_open else line, _dark(g.lips, 0.5 + 0.4 * A[24]), 1.0 + 0.8 * A[24])
        if A[24] > 0.05:  # lip presser: bulge under the lower lip
            y = float(lo_out[:, 1].max()) + 0.02
            self.line(_parabola(-cw * 0.6, cw * 0.6, y, y, y + 0.012, 9), _dark(skin, 0.5 * A[24]))
