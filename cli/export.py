"""``affdata export``: one part of a split as Parquet shards (docs/export-format.md).

A command group that runs the shard export itself when given ``--split``, so that other
exports (``affdata export labels ...``) can be added as subcommands next to it.
Wire it in ``cli/affdata_app.py`` with ``app.add_typer(export.app, name="export")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DbOption,
    JsonOption,
    err,
    open_store,
    print_json,
    print_table,
    progress_bar,
    shown_path,
)

app = typer.Typer(invoke_without_command=True, rich_markup_mode="rich")


@app.callback()
def export(
    ctx: typer.Context,
    split: Annotated[str | None, typer.Option(help="Split NAME (newest version) or NAME@VERSION.", show_default=False)] = None,
    part: Annotated[str | None, typer.Option(help="Part of the split: train, val, test...", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (built in OUT.partial/, moved into place when complete).", show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Side of the square face crops, pixels.")] = 112,
    tasks: Annotated[str, typer.Option(help="Tasks to export, comma-separated: va, au, expr.")] = "va,au,expr",
    source: Annotated[str, typer.Option(help="'consensus' (the consensus views) or one label source's NAME[@VERSION].")] = "consensus",
    image: Annotated[str, typer.Option(help="jpeg (simplejpeg) or raw (size*size*3 RGB bytes).")] = "jpeg",
    quality: Annotated[int, typer.Option(help="JPEG quality.")] = 90,
    margin: Annotated[float, typer.Option(help="Crop side as a multiple of the face box's longer side.")] = 1.2,
    shard_size: Annotated[int, typer.Option(help="Rows per Parquet shard.")] = 8192,
    row_group_size: Annotated[int, typer.Option(help="Rows per row group (what a streaming reader holds).")] = 512,
    workers: Annotated[int, typer.Option(help="Decode, crop and encode in this many processes (same output).")] = 1,
    include_unlabelled: Annotated[bool, typer.Option("--include-unlabelled", help="Also export frames without a label of the exported tasks.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Hash every video in full before exporting (default: size, modification time and sampled bytes).")] = False,
    align: Annotated[bool, typer.Option("--align", help="Cut faces by a similarity transform from their five landmarks to the ArcFace template (docs/export-format.md); rows without landmarks keep the box crop.")] = False,
    whole_frame: Annotated[bool, typer.Option("--whole-frame", help="Export video frames without a face box as the centred square (default: skip them, with a warning).")] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Export one part of a split as Parquet shards of face crops with their labels.

    Each video is decoded once, in order; each track's face is cropped by its face box (or,
    with --align, aligned by its five landmarks; no box: skipped with a warning, or the centred
    square with --whole-frame; frame folders: the whole image), resized, encoded,
    and written with its VA, AU and expression labels and per-task masks, followed by
    meta/info.json (vocabularies, counts, class frequencies, shard hashes, label state).
    Same store and arguments give byte-identical files. An interrupted export resumes when run
    again with the same arguments; the previous export stays in place until the new one is
    complete. One export at a time per output folder (OUT.lock). A video changed since ingest
    is refused before any shard is written. Format: docs/export-format.md.

    Example: affdata export --split official --part train --out exports/train
    """
    if ctx.invoked_subcommand is not None:
        return
    if split is None:
        given = [n for n in ctx.params if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"]
        if not given:
            typer.echo(ctx.get_help())  # a bare `affdata export`: show what it can do
            raise typer.Exit(0)
        raise typer.BadParameter("missing: name the split to export (NAME or NAME@VERSION)", ctx=ctx,
                                 param_hint="'--split'")
    if part is None or out is None:
        raise typer.BadParameter("--part and --out are required with --split", ctx=ctx)
    from affdata.export import export_part

    store = open_store(db)
    with progress_bar("exporting track-frames", enabled=not json) as bar:
        result = export_part(store, split=split, part=part, out=out, size=size,
                             tasks=tasks.split(","), source=source, image=image, quality=quality,
                             margin=margin, shard_size=shard_size, row_group_size=row_group_size,
                             workers=workers, include_unlabelled=include_unlabelled, verify=verify,
                             align=align, whole_frame=whole_frame, progress=bar, on_total=bar.total)
    for message in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)
    if json:
        print_json(result.to_dict())
        return
    counts = result.manifest["counts"]
    keys = ("rows", "videos", "tracks", "subjects", "va", "au", "expr")
    print_table([*keys, "shards", "resumed"],
                [[*(counts[k] for k in keys), result.shards, result.resumed_shards]],
                title=f"Export {shown_path(result.out)}")


@app.command()
def labels(
    out: Annotated[Path, typer.Argument(help="Folder to write the annotation files into.")],
    format: Annotated[str, typer.Option("--format", help="Only abaw for now: VA_Set/, AU_Set/, EXPR_Set/.")] = "abaw",
    source: Annotated[str | None, typer.Option(help="Label source NAME[@VERSION] (default: the only human source).")] = None,
    split: Annotated[str | None, typer.Option(help="Split deciding Training_Set / Validation_Set for sources not imported from ABAW files.")] = None,
    tasks: Annotated[str, typer.Option(help="Tasks to write, comma-separated: va, au, expr.")] = "va,au,expr",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Write a label source back out in the ABAW layout (a release imported then exported is byte-identical).

    Example: affdata export labels out/annotations --format abaw --source aff-wild2
    """
    from affdata.labels.abaw_export import export_abaw

    if format != "abaw":
        raise typer.BadParameter(f"unknown format {format!r}; supported: abaw", param_hint="--format")
    wanted = tuple(t.strip() for t in tasks.split(",") if t.strip())
    unknown = [t for t in wanted if t not in ("va", "au", "expr")]
    if unknown:
        raise typer.BadParameter(f"unknown task {unknown[0]!r}; use va, au, expr", param_hint="--tasks")
    result = export_abaw(open_store(db), out, source=source, tasks=wanted, split=split)
    if json:
        print_json({"out": result.out, "source": result.source, "files": result.files})
    else:
        print_table(["source", "VA files", "AU files", "EXPR files", "folder"],
                    [[result.source, result.files.get("va", 0), result.files.get("au", 0),
                      result.files.get("expr", 0), shown_path(result.out)]], title="ABAW annotation files")
