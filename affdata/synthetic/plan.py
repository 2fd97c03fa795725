"""Which videos a synthetic dataset has, who is in them, and which frames each task annotates.

A plan is cheap and fully determined by its arguments and seed, so a caller can learn the
frame count (for a progress bar) before anything is rendered. Subjects are split ~80/20 into
Training_Set and Validation_Set, and two-person videos only pair subjects of the same split,
so every video (and every track file) sits in one split and the splits are subject-disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from affdata.errors import ConfigError
from affdata.vocab import AU_SETS, EXPRESSION_ORDERS

TRAIN, VALID = "Training_Set", "Validation_Set"
TASKS = ("VA", "AU", "EXPR")
#: Share of all track-frames each task annotates (VA: all but short gaps).
COVERAGE = {"AU": 0.2, "EXPR": 0.25}
SINGLE_SIZE = (256, 256)
PAIR_SIZE = (384, 256)
CLIP_SECONDS = (4.0, 8.0)
PAIR_SHARE = 0.2  # about one video in five shows two people

# Independent random streams: (seed, stream, index) seeds one generator.
STREAM_PLAN, STREAM_IDENTITY, STREAM_AFFECT, STREAM_COVER, STREAM_SCENE, STREAM_POSE = range(1, 7)


def rng_for(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def subject_name(subject: int) -> str:
    return f"subj{subject:03d}"


@dataclass(frozen=True)
class TrackPlan:
    track: str  # "main", "left" or "right"
    subject: int  # 1-based
    index: int  # position among all tracks of the dataset: seeds its trajectories


@dataclass(frozen=True)
class VideoPlan:
    name: str
    frames: int
    width: int
    height: int
    split: str
    tracks: tuple[TrackPlan, ...]
    index: int = 0

    def label_stem(self, track: TrackPlan) -> str:
        """Annotation file stem: the video name, plus ``_left``/``_right`` for two people."""
        return self.name if track.track == "main" else f"{self.name}_{track.track}"


@dataclass(frozen=True)
class DatasetPlan:
    seed: int
    fps: int
    release: str
    subjects: int
    splits: dict[int, str]
    videos: tuple[VideoPlan, ...] = field(default=())

    @property
    def frames(self) -> int:
        """Video frames in all (a two-person frame counts once)."""
        return sum(v.frames for v in self.videos)

    @property
    def classes(self) -> tuple[int, ...]:
        return EXPRESSION_ORDERS[self.release]

    @property
    def aus(self) -> tuple[int, ...]:
        return AU_SETS[self.release]

    def tracks(self) -> list[tuple[VideoPlan, TrackPlan]]:
        return [(v, t) for v in self.videos for t in v.tracks]


def check_args(release: str, seed: int, fps: int) -> None:
    if release not in ("abaw2020", "abaw"):
        raise ConfigError(f"unknown release {release!r}; synthetic data knows abaw2020 and abaw")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(fps, (int, np.integer)) or fps < 1:
        raise ConfigError(f"fps must be a positive integer, got {fps!r}")


def _split_subjects(rng: np.random.Generator, subjects: int) -> dict[int, str]:
    order = rng.permutation(np.arange(1, subjects + 1))
    n_val = 0 if subjects < 2 else max(1, int(round(0.2 * subjects)))
    valid = set(order[:n_val].tolist())
    return {s: VALID if s in valid else TRAIN for s in range(1, subjects + 1)}


def _finish(seed: int, fps: int, release: str, subjects: int, splits: dict[int, str],
            raw: list[tuple[list[int], int]]) -> DatasetPlan:
    """Name raw (subjects, frames) clips, number clips per name, order by name."""
    counters: dict[str, int] = {}
    named = []
    for subs, frames in raw:
        stem = "_".join(subject_name(s) for s in subs)
        counters[stem] = counters.get(stem, 0) + 1
        named.append((f"{stem}_{counters[stem]:02d}", subs, frames))
    named.sort(key=lambda item: item[0])
    videos, track_index = [], 0
    for i, (name, subs, frames) in enumerate(named):
        kinds = ("main",) if len(subs) == 1 else ("left", "right")
        tracks = []
        for kind, s in zip(kinds, subs):
            tracks.append(TrackPlan(kind, s, track_index))
            track_index += 1
        w, h = SINGLE_SIZE if len(subs) == 1 else PAIR_SIZE
        videos.append(VideoPlan(name, frames, w, h, splits[subs[0]], tuple(tracks), i))
    return DatasetPlan(seed, fps, release, subjects, splits, tuple(videos))


def plan_dataset(subjects: int = 4, seconds: float = 20.0, seed: int = 0, *, fps: int = 25,
                 release: str = "abaw2020") -> DatasetPlan:
    """Videos for a rendered dataset: each subject appears for about ``seconds`` in all, in
    4-8 s clips, about one clip in five shared with another subject of the same split."""
    check_args(release, seed, fps)
    if not isinstance(subjects, (int, np.integer)) or subjects < 1:
        raise ConfigError(f"subjects must be a positive integer, got {subjects!r}")
    if not seconds > 0:
        raise ConfigError(f"seconds must be positive, got {seconds!r}")
    rng = rng_for(seed, STREAM_PLAN)
    splits = _split_subjects(rng, subjects)
    budget = {s: max(1, int(round(seconds * fps))) for s in range(1, subjects + 1)}
    min_clip = min(fps, min(budget.values()))
    raw: list[tuple[list[int], int]] = []

    groups = [[s for s in budget if splits[s] == name] for name in (TRAIN, VALID)]
    groups = [g for g in groups if len(g) >= 2]
    n_pairs = max(1, int(round(subjects * seconds / np.mean(CLIP_SECONDS) * PAIR_SHARE)))
    for _ in range(n_pairs if groups else 0):
        sizes = np.array([len(g) for g in groups], dtype=float)
        group = groups[int(rng.choice(len(groups), p=sizes / sizes.sum()))]
        able = [s for s in group if budget[s] >= 2 * min_clip]
        if len(able) < 2:
            continue
        a, b = (int(x) for x in rng.choice(able, 2, replace=False))
        frames = int(round(rng.uniform(*CLIP_SECONDS) * fps))
        frames = max(min_clip, min(frames, min(budget[a], budget[b]) // 2))
        budget[a] -= frames
        budget[b] -= frames
        raw.append(([a, b], frames))
    for s in range(1, subjects + 1):
        while budget[s] > 0:
            frames = int(round(rng.uniform(*CLIP_SECONDS) * fps))
            if budget[s] - frames < 2 * min_clip:
                frames = budget[s]
            raw.append(([s], frames))
            budget[s] -= frames
    return _finish(seed, fps, release, subjects, splits, raw)


def plan_labels_only(videos: int, frames: int, seed: int, *, fps: int, release: str,
                     subjects: int | None = None) -> DatasetPlan:
    """Videos for a labels-only dataset: ``videos`` videos of varied length summing to exactly
    ``frames``; by default about 0.8 subjects per video, each subject in at least one."""
    check_args(release, seed, fps)
    if not isinstance(videos, (int, np.integer)) or videos < 1:
        raise ConfigError(f"videos must be a positive integer, got {videos!r}")
    if not isinstance(frames, (int, np.integer)) or frames < videos:
        raise ConfigError(f"frames must be an integer >= videos ({videos}), got {frames!r}")
    if subjects is None:
        subjects = max(1, int(round(0.8 * videos)))
    if subjects < 1 or subjects > videos:
        raise ConfigError(f"subjects must be between 1 and videos ({videos}), got {subjects}")
    rng = rng_for(seed, STREAM_PLAN)
    splits = _split_subjects(rng, subjects)
    weights = rng.lognormal(0.0, 0.6, videos)
    lengths = 1 + np.floor(weights / weights.sum() * (frames - videos)).astype(np.int64)
    lengths[: frames - int(lengths.sum())] += 1
    pools = {name: [s for s in range(1, subjects + 1) if splits[s] == name]
             for name in (TRAIN, VALID)}
    pools = {k: v for k, v in pools.items() if v}
    # Videos per split in proportion to subjects; each subject gets a track before repeats.
    n_val = 0 if VALID not in pools else max(1, int(round(videos * len(pools[VALID]) / subjects)))
    n_val = min(n_val, videos - 1) if TRAIN in pools else videos
    raw: list[tuple[list[int], int]] = []
    start = 0
    for name, count in ((TRAIN, videos - n_val), (VALID, n_val)):
        if count == 0:
            continue
        pool = pools[name]
        pair = rng.random(count) < PAIR_SHARE if len(pool) >= 2 else np.zeros(count, bool)
        slots = int(count + pair.sum())
        queue = list(rng.permutation(pool))
        while len(queue) < slots:
            queue += list(rng.permutation(pool))
        pos = 0
        for i in range(count):
            if pair[i]:
                a = int(queue[pos])
                b = int(queue[pos + 1]) if int(queue[pos + 1]) != a else int(
                    rng.choice([s for s in pool if s != a]))
                raw.append(([a, b], int(lengths[start + i])))
                pos += 2
            else:
                raw.append(([int(queue[pos])], int(lengths[start + i])))
                pos += 1
        start += count
    return _finish(seed, fps, release, subjects, splits, raw)


def _va_mask(n: int, fps: int, rng: np.random.Generator) -> np.ndarray:
    """VA everywhere but a few short gaps (0.2-1 s, under a fifth of the track)."""
    mask = np.ones(n, dtype=bool)
    if n < 2 * fps:
        return mask
    for _ in range(rng.poisson(0.5 + n / (fps * 30))):
        length = int(rng.uniform(0.2, 1.0) * fps)
        if (~mask).sum() + length > n // 5:
            break
        start = int(rng.integers(0, n - length))
        mask[start:start + length] = False
    return mask


def check_coverage(coverage: dict[str, float] | None) -> dict[str, float]:
    """:data:`COVERAGE` with the shares in ``coverage`` (keys AU, EXPR; each in (0, 1])."""
    out = dict(COVERAGE)
    for task, share in (coverage or {}).items():
        if task not in COVERAGE:
            raise ConfigError(f"coverage: unknown task {task!r}; known: {', '.join(COVERAGE)}")
        if not 0 < float(share) <= 1:
            raise ConfigError(f"coverage: the {task} share must be in (0, 1], got {share}")
        out[task] = float(share)
    return out


def annotation_masks(plan: DatasetPlan, coverage: dict[str, float] | None = None
                     ) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Per (video, track), per task, which frames carry a label.

    AU and EXPR go greedily over the tracks of each split in random order, labelling whole
    tracks or long segments until the split's share (``coverage``, default :data:`COVERAGE`)
    is reached, so both splits get labels for every task whatever the dataset size.
    """
    shares = check_coverage(coverage)
    masks: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    rng = rng_for(plan.seed, STREAM_COVER)
    for video, track in plan.tracks():
        masks[video.name, track.track] = {
            "VA": _va_mask(video.frames, plan.fps, rng),
            "AU": np.zeros(video.frames, dtype=bool),
            "EXPR": np.zeros(video.frames, dtype=bool),
        }
    for split in (TRAIN, VALID):
        items = [(v, t) for v, t in plan.tracks() if v.split == split]
        total = sum(v.frames for v, _ in items)
        for task, share in shares.items():
            goal = share * total
            covered = 0
            for i in rng.permutation(len(items)):
                if covered >= goal:
                    break
                video, track = items[int(i)]
                n = video.frames
                if rng.random() < 0.4:
                    length = n
                else:
                    length = int(round(n * rng.uniform(0.4, 0.9)))
                    length = max(length, min(n, 2 * plan.fps))
                    length = min(length, max(int(goal - covered), min(n, 2 * plan.fps)))
                start = int(rng.integers(0, n - length + 1))
                masks[video.name, track.track][task][start:start + length] = True
                covered += length
    return masks
