"""``affmodels predict``: a predictions file (and CSV); optionally into the store as a model source."""

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
    out: Annotated[Path, typer.Option(help="Folder for predictions.parquet and predictions.csv.")],
    data: Annotated[str | None, typer.Option(help="Export to predict on." + DATA_HELP)] = None,
    cache: CacheOption = None,
    cache_size: CacheSizeOption = None,
    video: Annotated[Path | None, typer.Option(help="A video file (or frame folder); the face must fill the middle of the frame.")] = None,
    into_store: Annotated[bool, typer.Option("--into-store", help="Also take the predictions into the store as a model source (affdata ingest labels --format predictions).")] = False,
    source: Annotated[str | None, typer.Option(help="Name of that model source (default: the run folder's name).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    no_verify: NoVerifyOption = False,
    db: DbOption = None,
) -> None:
    """Predict VA, AUs and expressions per frame; write predictions.parquet (docs/models.md) and a CSV copy.

    With --into-store the predictions become a label source of kind model, which affdata sql
    and affdata labels agreement can compare with the human labels; ABAW files of it come from
    affdata export labels --source NAME.

    Example: affmodels predict --checkpoint runs/cnn1/best.pt --data exports/val --out preds --into-store
    """
    from affmodels.predict import predict_export, predict_video, write_predictions_file

    use_shard_cache(cache, cache_size)
    data = data_location(data)
    if (data is None) == (video is None):
        raise typer.BadParameter("give exactly one of --data and --video")
    df = predict_export(checkpoint, data, device=device, verify=not no_verify) if data else predict_video(checkpoint, video, device=device)
    out.mkdir(parents=True, exist_ok=True)
    path = write_predictions_file(df, out / "predictions.parquet", checkpoint)
    df.to_csv(out / "predictions.csv", index=False, float_format="%.6g")
    err.print(f"{len(df)} frames predicted: {path} (and {out / 'predictions.csv'})", highlight=False)
    if into_store:
        from affdata.labels import import_prediction_files

        name = source or checkpoint.resolve().parent.name
        report = import_prediction_files(open_store(db, create=True), [path], source=name,
                                         key=f"predictions/{Path(str(data or video)).name}")
        outcome = report.outcomes[0]
        if outcome.status == "failed":
            err.print(f"[red]failed[/red] {outcome.reason}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        err.print(f"store: model source {name!r} {outcome.status}, {outcome.rows} label rows", highlight=False)
