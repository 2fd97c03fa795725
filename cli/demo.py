"""``affdata demo``: the synthetic Aff-Wild-like dataset for demos, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, print_json, print_table, progress_bar

app = typer.Typer(no_args_is_help=True, help="Generate the synthetic demo dataset.")


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="New (or empty) folder to write the dataset into.")],
    subjects: Annotated[int, typer.Option(help="Number of people (identities).")] = 4,
    seconds: Annotated[float, typer.Option(help="On-screen seconds per subject.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Same seed, same dataset (byte for byte).")] = 0,
    release: Annotated[str, typer.Option(help="abaw2020 (8 AUs, 7 classes) or abaw (12 AUs, 8 classes).")] = "abaw2020",
    labels_only: Annotated[bool, typer.Option("--labels-only", help="Write annotation files only, no video (for label-import benchmarks).")] = False,
    videos: Annotated[int, typer.Option(help="With --labels-only: number of videos.")] = 300,
    frames: Annotated[int, typer.Option(help="With --labels-only: total frames.")] = 1_000_000,
    au_coverage: Annotated[float | None, typer.Option(help="Rendered datasets: share of person-frames with AU labels (default 0.2, as Aff-Wild2).", show_default=False)] = None,
    expr_coverage: Annotated[float | None, typer.Option(help="Rendered datasets: share of person-frames with an expression label (default 0.25).", show_default=False)] = None,
    wild: Annotated[bool, typer.Option("--wild", help="The nuisances of real recordings at their documented strength: head pose, lighting, hands and glasses, blur and compression, detector-like boxes, identity variety, 3 VA annotators with lag and bias, AU/expression disagreement (docs/synthetic.md).")] = False,
    wild_knobs: Annotated[str | None, typer.Option("--wild-knobs", help="Set knobs one by one, over --wild or over nothing: pose, lighting, occlusion, blur, box_jitter, identity (0 to 2), annotators (count), label_noise, e.g. 'pose=0.5,annotators=3'; the word pixels sets pose, lighting, occlusion, blur and identity to 1 (no box jitter, no label noise).")] = None,
    json: JsonOption = False,
) -> None:
    """Render labelled face videos in the ABAW layout: videos/, annotations/{VA,AU,EXPR}_Set/,
    boxes.csv (true face boxes) and subjects.csv.

    Faces are drawn procedurally, one identity per subject; valence, arousal, each AU and each
    expression change the face visibly; coverage is partial like Aff-Wild2 (VA nearly
    everywhere, AUs on about a fifth of the frames, expressions on about a quarter).

    --wild adds the nuisances of data recorded in the wild (harder data: see docs/synthetic.md).

    Example: affdata demo generate demo/data --subjects 4 --seconds 20 --seed 0
    """
    from affdata.synthetic import Wild, generate_dataset, generate_labels_only, plan_dataset

    coverage = {task: share for task, share in (("AU", au_coverage), ("EXPR", expr_coverage)) if share is not None}
    knobs = Wild.parse(wild_knobs, preset=wild) if (wild or wild_knobs) else None
    if labels_only:
        with progress_bar("writing labels", total=videos, enabled=not json) as bar:
            summary = generate_labels_only(out, videos=videos, frames=frames, seed=seed, release=release, progress=bar,
                                           wild=knobs)
    else:
        total = plan_dataset(subjects, seconds, seed, release=release).frames
        with progress_bar("rendering", total=total, enabled=not json) as bar:
            summary = generate_dataset(out, subjects, seconds, seed, release=release, coverage=coverage, progress=bar,
                                       wild=knobs)
    info = {"out": str(summary.out), "videos": summary.videos, "tracks": summary.tracks,
            "subjects": summary.subjects, "frames": summary.frames, "annotated": summary.annotated}
    if json:
        print_json(info)
    else:
        print_table(["videos", "tracks", "subjects", "frames", "VA frames", "AU frames", "EXPR frames"],
                    [[summary.videos, summary.tracks, summary.subjects, summary.frames,
                      summary.annotated.get("VA"), summary.annotated.get("AU"), summary.annotated.get("EXPR")]],
                    title=f"Synthetic dataset in {summary.out}")
