"""Writing a synthetic ABAW-style dataset: rendered (videos + labels + boxes) or labels only.

Layout under OUT (mimics the Aff-Wild2 / ABAW release)::

    videos/<video>.mp4                                   (rendered mode)
    annotations/{VA_Set,AU_Set,EXPR_Set}/{Training_Set,Validation_Set}/<video>[_left|_right].txt
    boxes.csv      video,track,frame,x,y,w,h             (rendered mode)
    videos.csv     video,frames,fps,width,height         (labels-only mode)
    subjects.csv   video,track,subject
    dataset.json   generator version, mode, arguments, splits, counts
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from affdata.errors import ConfigError
from affdata.synthetic import writer
from affdata.synthetic.affect import AU_THRESHOLD, Affect, sample_affect
from affdata.synthetic.face import Identity, sample_identity
from affdata.synthetic.plan import (
    STREAM_AFFECT,
    STREAM_IDENTITY,
    TASKS,
    TRAIN,
    VALID,
    DatasetPlan,
    TrackPlan,
    VideoPlan,
    annotation_masks,
    check_coverage,
    plan_dataset,
    plan_labels_only,
    rng_for,
    subject_name,
)
from affdata.synthetic.render import CRF_RANGE, X264_OPTIONS, render_video
from affdata.synthetic.wild import (
    STREAM_WILD_BOX,
    STREAM_WILD_ID,
    STREAM_WILD_LABEL,
    Accessories,
    NoisyLabels,
    Wild,
    annotate,
    jitter_boxes,
    widen_identity,
    wild_accessories,
)
from affdata.vocab import EXPRESSIONS

GENERATOR_VERSION = "1"
TASK_DIRS = {"VA": "VA_Set", "AU": "AU_Set", "EXPR": "EXPR_Set"}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class DatasetSummary:
    """What a generator wrote. ``annotated`` counts labelled person-frames per task."""

    out: Path
    rendered: bool
    videos: int
    tracks: int
    subjects: int
    frames: int  # video frames (a two-person frame counts once)
    annotated: dict[str, int]
    annotation_files: dict[str, int]  # per task
    paths: dict[str, Path] = field(default_factory=dict)


def _prepare(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: output directory exists and is not empty; "
                          "choose a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def track_affect(plan: DatasetPlan, video: VideoPlan, track: TrackPlan) -> Affect:
    """A track's trajectories, seeded by (seed, track index) alone."""
    return sample_affect(video.frames, plan.fps, rng_for(plan.seed, STREAM_AFFECT, track.index),
                         plan.classes, plan.aus)


def track_labels(plan: DatasetPlan, track: TrackPlan, affect: Affect, wild: Wild | None = None) -> NoisyLabels:
    """The labels written for a track: what drew the pixels, or, with ``wild`` annotators or
    label noise, what simulated annotators would write (:func:`affdata.synthetic.wild.annotate`)."""
    if wild is not None and (wild.annotators or wild.label_noise):
        return annotate(wild, affect, plan.aus, plan.classes, plan.fps,
                        rng_for(plan.seed, STREAM_WILD_LABEL, track.index))
    return NoisyLabels(affect.valence, affect.arousal, affect.au_labels(plan.aus), affect.expression)


def _write_labels(out: Path, plan: DatasetPlan, video: VideoPlan, track: TrackPlan,
                  affect: Affect, masks: dict[str, np.ndarray], counts: dict[str, int],
                  files: dict[str, int], wild: Wild | None = None) -> None:
    stem = video.label_stem(track)
    labels = track_labels(plan, track, affect, wild)
    for task in TASKS:
        mask = masks[task]
        n = int(mask.sum())
        if n == 0:
            continue
        if task == "VA":
            text = writer.va_text(labels.valence, labels.arousal, mask)
        elif task == "AU":
            text = writer.au_text(labels.au, mask, plan.aus)
        else:
            text = writer.expr_text(labels.expression, mask, plan.classes)
        writer.write_text(out / "annotations" / TASK_DIRS[task] / video.split / f"{stem}.txt",
                          text)
        counts[task] += n
        files[task] += 1


def _manifest(out: Path, plan: DatasetPlan, mode: str, arguments: dict[str, object],
              summary: dict[str, object]) -> None:
    splits = {name: [subject_name(s) for s, sp in sorted(plan.splits.items()) if sp == name]
              for name in (TRAIN, VALID)}
    doc = {
        "generator": "affdata.synthetic",
        "generator_version": GENERATOR_VERSION,
        "mode": mode,
        "seed": plan.seed,
        "arguments": arguments,
        "release": plan.release,
        "fps": plan.fps,
        "au_set": [f"AU{a}" for a in plan.aus],
        "au_threshold": AU_THRESHOLD,
        "expressions": [EXPRESSIONS[c] for c in plan.classes],
        "splits": splits,
        **summary,
    }
    writer.write_text(out / "dataset.json", json.dumps(doc, indent=2) + "\n")


def _subjects_csv(plan: DatasetPlan) -> str:
    return writer.csv_text("video,track,subject",
                           [(v.name, t.track, subject_name(t.subject)) for v, t in plan.tracks()])


def generate_dataset(out: Path, subjects: int = 4, seconds: float = 20.0, seed: int = 0, *,
                     fps: int = 25, release: str = "abaw2020", coverage: dict[str, float] | None = None,
                     progress: Progress | None = None, wild: Wild | None = None) -> DatasetSummary:
    """Render a synthetic dataset: each of ``subjects`` people is on screen for about
    ``seconds`` in all; ``progress(n)`` is called with the number of frames just rendered.
    ``coverage`` overrides the share of person-frames labelled per task (``{"AU": 0.2,
    "EXPR": 0.25}`` by default, like Aff-Wild2), e.g. for a small demo that needs every class.
    ``wild`` adds the nuisances of real recordings (:mod:`affdata.synthetic.wild`)."""

    plan = plan_dataset(subjects, seconds, seed, fps=fps, release=release)
    check_coverage(coverage)
    out = _prepare(out)
    masks = annotation_masks(plan, coverage)
    identities: dict[int, Identity] = {
        s: sample_identity(rng_for(seed, STREAM_IDENTITY, s)) for s in range(1, subjects + 1)}
    extras: dict[int, Accessories] | None = None
    if wild is not None and wild.on:
        identities = {s: widen_identity(wild, ident, rng_for(seed, STREAM_WILD_ID, s))
                      for s, ident in identities.items()}
        extras = {s: wild_accessories(wild, rng_for(seed, STREAM_WILD_ID, 100_000 + s))
                  for s in identities}
    counts = {t: 0 for t in TASKS}
    files = {t: 0 for t in TASKS}
    box_parts = ["video,track,frame,x,y,w,h\n"]
    (out / "videos").mkdir()
    for video in plan.videos:
        affects = [track_affect(plan, video, t) for t in video.tracks]
        people = [(identities[t.subject], a) for t, a in zip(video.tracks, affects)]
        boxes = render_video(out / "videos" / f"{video.name}.mp4", video, people, seed, fps,
                             progress, wild=wild,
                             accessories=[extras[t.subject] for t in video.tracks] if extras else None)
        for track, affect, box in zip(video.tracks, affects, boxes):
            _write_labels(out, plan, video, track, affect, masks[video.name, track.track],
                          counts, files, wild)
            if wild is not None:
                box = jitter_boxes(wild, box, video.width, video.height,
                                   rng_for(seed, STREAM_WILD_BOX, track.index))
            x0 = np.clip(box[:, 0], 0, video.width - 1)
            y0 = np.clip(box[:, 1], 0, video.height - 1)
            x1 = np.clip(box[:, 0] + box[:, 2], 0, video.width)
            y1 = np.clip(box[:, 1] + box[:, 3], 0, video.height)
            box_parts.append(writer.boxes_text(video.name, track.track,
                                               np.stack([x0, y0, x1 - x0, y1 - y0], 1)))
    writer.write_text(out / "boxes.csv", "".join(box_parts))
    writer.write_text(out / "subjects.csv", _subjects_csv(plan))
    summary = _summary(out, plan, True, counts, files)
    video = {"codec": "libx264", "pix_fmt": "yuv420p", "x264_options": X264_OPTIONS,
             "crf_range": list(CRF_RANGE), "pyav": av.__version__}
    arguments: dict[str, object] = {"subjects": subjects, "seconds": seconds, "seed": seed, "fps": fps,
                                    "release": release}
    if coverage:
        arguments["coverage"] = check_coverage(coverage)
    if wild is not None and wild.on:
        arguments["wild"] = wild.to_json()
    _manifest(out, plan, "render", arguments,
              {"video": video, **_summary_json(summary)})
    return summary


def write_full_labels(out: Path, subjects: int, seconds: float, seed: int = 0) -> None:
    """The annotation files of ``generate_dataset(subjects, seconds, seed)`` written again with
    every frame's AUs and expression labelled (VA as the release labels it): no rendering, same
    plan, so they describe the same pixels. For checks that need labels on frames the release leaves bare
    (e.g. pairs of one person with two expressions: benchmarks/gan_quality.py)."""
    plan = plan_dataset(subjects, seconds, seed)
    masks = annotation_masks(plan, {"AU": 1.0, "EXPR": 1.0})
    out = _prepare(out)
    counts, files = {t: 0 for t in TASKS}, {t: 0 for t in TASKS}
    for video in plan.videos:
        for track in video.tracks:
            _write_labels(out, plan, video, track, track_affect(plan, video, track),
                          masks[video.name, track.track], counts, files)


def generate_labels_only(out: Path, videos: int = 300, frames: int = 1_000_000, seed: int = 0,
                         *, fps: int = 25, release: str = "abaw2020", subjects: int | None = None,
                         progress: Progress | None = None, wild: Wild | None = None) -> DatasetSummary:
    """Write the annotation files of a large dataset without rendering: ``videos`` videos
    of ``frames`` frames in all, same layout and trajectories as :func:`generate_dataset`,
    plus ``videos.csv`` in place of the video files; ``progress(n)`` gets frames written."""
    plan = plan_labels_only(videos, frames, seed, fps=fps, release=release, subjects=subjects)
    out = _prepare(out)
    masks = annotation_masks(plan)
    counts = {t: 0 for t in TASKS}
    files = {t: 0 for t in TASKS}
    for video in plan.videos:
        for track in video.tracks:
            _write_labels(out, plan, video, track, track_affect(plan, video, track),
                          masks[video.name, track.track], counts, files, wild)
        if progress is not None:
            progress(video.frames)
    writer.write_text(out / "videos.csv", writer.csv_text(
        "video,frames,fps,width,height",
        [(v.name, v.frames, fps, v.width, v.height) for v in plan.videos]))
    writer.write_text(out / "subjects.csv", _subjects_csv(plan))
    summary = _summary(out, plan, False, counts, files)
    arguments = {"videos": videos, "frames": frames, "seed": seed, "fps": fps, "release": release,
                 "subjects": plan.subjects}
    if wild is not None and wild.on:
        arguments["wild"] = wild.to_json()
    _manifest(out, plan, "labels-only", arguments, _summary_json(summary))
    return summary


def _summary(out: Path, plan: DatasetPlan, rendered: bool, counts: dict[str, int],
             files: dict[str, int]) -> DatasetSummary:
    paths = {"annotations": out / "annotations", "subjects": out / "subjects.csv",
             "manifest": out / "dataset.json"}
    if rendered:
        paths.update(videos=out / "videos", boxes=out / "boxes.csv")
    else:
        paths["videos_csv"] = out / "videos.csv"
    return DatasetSummary(out=out, rendered=rendered, videos=len(plan.videos),
                          tracks=len(plan.tracks()), subjects=plan.subjects, frames=plan.frames,
                          annotated=dict(counts), annotation_files=dict(files), paths=paths)


def _summary_json(summary: DatasetSummary) -> dict[str, object]:
    return {"videos": summary.videos, "tracks": summary.tracks, "frames": summary.frames,
            "annotated_frames": summary.annotated, "annotation_files": summary.annotation_files}
