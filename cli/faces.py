"""``affdata detect faces`` and ``affdata faces show``: face tracks from real video, and a look at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ClusterOption,
    DbOption,
    JsonOption,
    PathMapOption,
    err,
    open_executor,
    open_store,
    print_json,
    print_table,
    progress_bar,
)

detect_app = typer.Typer(no_args_is_help=True, help="Find things in registered videos (faces).")
app = typer.Typer(no_args_is_help=True, help="Look at the faces found in videos.")


@detect_app.command("faces")
def detect_faces(
    videos: Annotated[list[str] | None, typer.Argument(help="Video names in the store (or paths of registered files).", show_default=False)] = None,
    all_videos: Annotated[bool, typer.Option("--all", help="Every video in the store.")] = False,
    detector: Annotated[str, typer.Option(help="Face detector: centerface (weights shipped with affdata).")] = "centerface",
    stride: Annotated[int, typer.Option(help="Run the detector on every Nth frame of a shot; the tracker carries faces between.")] = 5,
    min_score: Annotated[float, typer.Option(help="Detector confidence below which a face is ignored.")] = 0.5,
    min_detections: Annotated[int, typer.Option(help="Drop tracks detected on fewer frames than this.")] = 3,
    max_side: Annotated[int | None, typer.Option(help="Shrink frames whose longer side exceeds this before detection (faster on HD, misses tiny faces).", show_default=False)] = None,
    workers: Annotated[int, typer.Option(help="Videos processed at once (processes).")] = 1,
    cluster: ClusterOption = None,
    path_map: PathMapOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Detect faces, link them into tracks and store boxes and five landmarks per track and frame.

    Tracks are named main (one person at a time), left/right (two people side by side), else
    face1..N; a track never crosses a shot cut. Boxes are stored as the output of a model label
    source recording the detector, its weights and these settings. Videos with boxes from a
    file or a person are left alone. Running again replaces the previous detector boxes.
    Details: docs/faces.md.

    Example: affdata detect faces --all --stride 5

    On a Dask cluster (docs/scale.md): affdata detect faces --all --cluster tcp://sched:8786
    """
    if videos and all_videos:
        raise typer.BadParameter("give video names or --all, not both")
    if not videos and not all_videos:
        raise typer.BadParameter("name the videos to detect faces in, or pass --all")
    from affdata.faces import DetectOptions, detect_faces as run

    options = DetectOptions(detector=detector, stride=stride, min_score=min_score,
                            min_detections=min_detections, max_side=max_side)
    store = open_store(db)
    with open_executor(cluster, workers, path_map) as executor, \
            progress_bar("detecting faces (frames)", enabled=not json) as bar:
        report = run(store, videos or (), all_videos=all_videos, options=options, workers=workers,
                     progress=bar, on_total=bar.total, executor=executor)
    if json:
        print_json(report.to_dict())
    else:
        print_table(["video", "status", "frames", "tracks (frames with a box)", "note"],
                    [[v.video, v.status, v.frames,
                      ", ".join(f"{k} {n}" for k, n in v.tracks.items()) or "-", v.reason]
                     for v in report.videos], title=f"Faces ({report.source})")
        for v in report.failed:
            err.print(f"[red]failed[/red] {v.video}: {v.reason}", highlight=False, soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def show(
    video: Annotated[str, typer.Argument(help="Video name in the store.")],
    out: Annotated[Path, typer.Option(help="PNG file to write.")],
    frames: Annotated[int, typer.Option(help="Frames to sample, evenly spaced.")] = 12,
    columns: Annotated[int, typer.Option(help="Frames per row of the sheet.")] = 4,
    width: Annotated[int, typer.Option(help="Width of each frame on the sheet, pixels.")] = 320,
    track: Annotated[str | None, typer.Option(help="Only this track (main, left, face3...), on frames where it has a box.", show_default=False)] = None,
    db: DbOption = None,
) -> None:
    """Draw a video's face boxes, landmarks and track names on sampled frames (a contact sheet).

    Solid boxes are detections, dashed ones interpolated by the tracker; a frame's caption
    gives its index and time.

    Example: affdata faces show single_face --out single_face.png
    """
    from affdata.faces.show import contact_sheet

    path = contact_sheet(open_store(db), video, out, frames=frames, columns=columns, width=width, track=track)
    typer.echo(str(path))
