"""``affdata ingest``: videos (and, with the label issue, labels) into the store."""

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

app = typer.Typer(no_args_is_help=True, help="Put videos and labels into the store.")


@app.command()
def videos(
    paths: Annotated[list[Path], typer.Argument(help="Video files, frame folders, or folders holding them.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look inside subfolders too.")] = False,
    subject: Annotated[str | None, typer.Option(help="Subject of every video ingested.")] = None,
    subject_pattern: Annotated[str | None, typer.Option(
        help="Regex on the video name giving its subject (group 'subject', else group 1), "
        r"e.g. '^(subj\d+)_'.")] = None,
    workers: Annotated[int, typer.Option(help="Probe this many videos at once (processes).")] = 1,
    fps: Annotated[float | None, typer.Option(help="Frame rate of frame folders (default 30).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Decode each first frame and check decord against PyAV, instead of choosing the decoder by rule (slower).")] = False,
    cluster: ClusterOption = None,
    path_map: PathMapOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Register videos: content hash, container, codec, stream, frame rate, verified frame count.

    Takes mp4, avi, mov, mkv, webm and gif files, and frame folders (numbered images such as
    ABAW's cropped_aligned/<video>/00001.jpg; a missing number is a frame without a face).
    Ingesting a file again is a no-op; a moved file updates its path. A broken file is reported
    with its reason and leaves nothing in the store; the others still go in. Exit status 1 if
    anything failed.

    Example: affdata ingest videos data/videos --recursive --subject-pattern '^(subj\\d+)_'

    On a Dask cluster: affdata ingest videos /data/videos -r --cluster tcp://sched:8786
    """
    if subject and subject_pattern:
        raise typer.BadParameter("give --subject or --subject-pattern, not both")
    if workers < 1:
        raise typer.BadParameter(f"--workers must be at least 1, not {workers}")
    from affdata.videos import ingest_videos

    store = open_store(db, create=True)
    with open_executor(cluster, workers, path_map) as executor, \
            progress_bar("probing videos", enabled=not json) as bar:
        report = ingest_videos(store, paths, recursive=recursive, subject=subject,
                               subject_pattern=subject_pattern, workers=workers, fps=fps,
                               verify=verify, progress=bar, on_found=bar.total, executor=executor)
    if json:
        print_json(report.to_dict())
    else:
        for path, reason in report.skipped:
            err.print(f"skipped {path}: {reason}", highlight=False, soft_wrap=True)
        for o in report.failed:
            err.print(f"[red]failed[/red] {o.path}: {o.reason}", highlight=False, soft_wrap=True)
        summary = report.summary()
        print_table(list(summary), [list(summary.values())], title="Videos")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def labels(
    paths: Annotated[list[Path], typer.Argument(help="Annotation files, or ABAW release folders (VA_Set/, AU_Set/, EXPR_Set/).")],
    source: Annotated[str | None, typer.Option(help="Label source name (default: the folder's name, or the format).")] = None,
    kind: Annotated[str | None, typer.Option(help="annotator, dataset (human; default) or model (default for OpenFace / py-feat).")] = None,
    version: Annotated[str, typer.Option(help="Version of the label source.")] = "",
    format: Annotated[str | None, typer.Option("--format", help="abaw-va, abaw-au, abaw-expr, abaw-multitask, openface, pyfeat, generic (default: detected), or predictions (affmodels predict's file, a model source).")] = None,
    video: Annotated[str | None, typer.Option(help="The video a single-video file (OpenFace, py-feat, generic) belongs to (default: its file name).")] = None,
    length_policy: Annotated[str, typer.Option(help="When a file's lines and its video's frames differ: refuse, truncate or pad.")] = "refuse",
    replace: Annotated[bool, typer.Option("--replace", help="Swap the labels of files that changed since they were imported.")] = False,
    as_split: Annotated[str | None, typer.Option(help="Record an ABAW release's Training/Validation folders as a split of this name.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Import annotations: ABAW folders and files, OpenFace and py-feat output, generic CSV/Parquet.

    -5 (VA) and -1 (AU, expression) mean unannotated and are not stored. Each file imports in
    one transaction: a bad file is reported with its line and reason and leaves nothing behind;
    the others go on. Importing the same file again is a no-op. Exit status 1 if any failed.

    Example: affdata ingest labels demo/annotations --source aff-wild-demo --as-split official
    """
    from affdata.labels import import_labels, import_prediction_files

    store = open_store(db, create=True)
    options = {"video": video} if video else {}
    if format == "predictions":
        report = import_prediction_files(store, paths, source=source, version=version or None)
    else:
        with progress_bar("importing labels", enabled=not json) as bar:
            report = import_labels(store, paths, source=source, kind=kind, version=version, fmt=format,
                                   length_policy=length_policy, replace=replace, as_split=as_split,
                                   parser_options=options, progress=bar, on_found=bar.total)
    if json:
        print_json(report.to_dict())
    else:
        for o in report.outcomes:
            if o.status == "failed":
                err.print(f"[red]failed[/red] {o.reason}", highlight=False, soft_wrap=True)
            elif o.reason:
                err.print(f"{o.status} {o.path}: {o.reason}", highlight=False, soft_wrap=True)
        for path, reason in report.skipped:
            err.print(f"skipped {path}: {reason}", highlight=False, soft_wrap=True)
        summary = report.summary()
        print_table(list(summary), [list(summary.values())], title="Label files")
        if report.split:
            s = report.split
            err.print(f"split {s.name!r} version {s.version}" + (" created" if s.created else " unchanged"))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def boxes(
    path: Annotated[Path, typer.Argument(help="CSV with columns video,track,frame,x,y,w,h (pixels).")],
    subjects: Annotated[Path | None, typer.Option(help="CSV with columns video,track,subject naming each track's person.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Import face boxes per track and frame (export crops faces by them) and track subjects.

    Example: affdata ingest boxes demo/data/boxes.csv --subjects demo/data/subjects.csv
    """
    from affdata.boxes import import_boxes

    result = import_boxes(open_store(db, create=True), path, subjects)
    if json:
        print_json(result.__dict__)
    else:
        print_table(["file", "tracks", "boxes", "track subjects"],
                    [[result.path, result.tracks, result.boxes, result.subjects]], title="Boxes")
