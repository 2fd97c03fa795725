"""``affmodels predict``: predictions as CSV, ABAW files, or a model source in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DATA_HELP,
    CacheOption,
    CacheSizeOption,
    DbOption,
    NoVerifyOption,
    data_location,
    err,
    open_store,
    use_shard_cache,
)


def predict(
    checkpoint: Annotated[Path, typer.Option(help="A best.pt or last.pt of affmodels train.")],
    out: Annotated[Path, typer.Option(help="Folder for predictions.csv and the ABAW files.")],
    data: Annotated[str | None, typer.Option(help="Export to predict on." + DATA_HELP)] = None,
    cache: CacheOption = None,
    cache_size: CacheSizeOption = None,
    video: Annotated[Path | None, typer.Option(help="A video file (or frame folder); the face must fill the middle of the frame.")] = None,
    into_store: Annotated[bool, typer.Option("--into-store", help="Also write the predictions into the store as a model source.")] = False,
    source: Annotated[str | None, typer.Option(help="Name of that model source (default: the run folder's name).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    fill: Annotated[bool, typer.Option("--fill/--no-fill", help="A value on every frame of the ABAW files (VA linear in time, AU and expression from the nearest predicted frame of the track), as a challenge submission needs; --no-fill writes -5/-1 there.")] = True,
    no_verify: NoVerifyOption = False,
    db: DbOption = None,
) -> None:
    """Predict VA, AUs and expressions per frame; write predictions.csv and ABAW-format files.

    The ABAW files have one line per video frame (frame counts from the store with --into-store,
    else up to the last predicted frame) and, by default, a value on every line, checked
    against the challenge's file rules.

    With --into-store the predictions become a label source of kind model, which affdata sql
    and affdata labels agreement can compare with the human labels.

    Example: affmodels predict --checkpoint runs/cnn1/best.pt --data exports/val --out preds --into-store
    """
    from affmodels.checkpoint import file_digest
    from affmodels.predict import into_store as write_store
    from affmodels.predict import predict_export, predict_video, write_abaw

    use_shard_cache(cache, cache_size)
    data = data_location(data)
    if (data is None) == (video is None):
        raise typer.BadParameter("give exactly one of --data and --video")
    df = predict_export(checkpoint, data, device=device, verify=not no_verify) if data else predict_video(checkpoint, video, device=device)
    vocab = df.attrs.get("vocabulary", {})
    au_names, classes = vocab.get("au_names", []), vocab.get("expressions", [])
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "predictions.csv", index=False, float_format="%.6g")
    store = open_store(db, create=True) if into_store else None
    counts = None
    if store is not None:
        from affdata.videos import frame_counts

        counts = frame_counts(store)
    files = write_abaw(df, out / "abaw", au_names, classes, counts, fill=fill)
    err.print(f"{len(df)} frames predicted: {out / 'predictions.csv'}, {files} ABAW files in {out / 'abaw'}", highlight=False)
    if store is not None:
        name = source or checkpoint.resolve().parent.name
        status, rows = write_store(df, store, source=name, version=file_digest(checkpoint),
                                   key=f"predictions/{Path(str(data or video)).name}", au_names=au_names, classes=classes)
        err.print(f"store: model source {name!r} {status}, {rows} label rows", highlight=False)
