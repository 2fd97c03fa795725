"""``affmodels predict``: a predictions file (and CSV); optionally into the store as a model source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DATA_HELP,
    CacheOption,
    CacheSizeOption,
    ClusterOption,
    DbOption,
    NoVerifyOption,
    PathMapOption,
    data_location,
    err,
    open_executor,
    open_store,
    progress_bar,
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
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N (on the workers, with --cluster).")] = "cpu",
    workers: Annotated[int, typer.Option(help="With --data: predict shards in this many processes here, each loading the checkpoint once (same output).")] = 1,
    cluster: ClusterOption = None,
    path_map: PathMapOption = None,
    batch_size: Annotated[int, typer.Option(help="Frames per forward pass.")] = 256,
    no_verify: NoVerifyOption = False,
    db: DbOption = None,
) -> None:
    """Predict VA, AUs and expressions per frame; write predictions.parquet (docs/models.md) and a CSV copy.

    With --into-store the predictions become a label source of kind model, which affdata sql
    and affdata labels agreement can compare with the human labels; ABAW files of it come from
    affdata export labels --source NAME.

    With --data the work is one task per shard: --workers N processes here, or a Dask cluster
    with --cluster local:N or --cluster tcp://sched:8786 (workers read the checkpoint and the
    export by path, or the export from its URL; docs/scale.md); the predictions file is the
    same wherever they ran. --video runs in this process.

    Example: affmodels predict --checkpoint runs/cnn1/best.pt --data exports/val --out preds --into-store
    """
    from affmodels.predict import predict_export, predict_video, write_predictions_file

    use_shard_cache(cache, cache_size)
    data = data_location(data)
    if (data is None) == (video is None):
        raise typer.BadParameter("give exactly one of --data and --video")
    if data is not None:
        with open_executor(cluster, workers, path_map) as executor, \
                progress_bar("predicting frames") as bar:
            df = predict_export(checkpoint, data, batch_size=batch_size, device=device, verify=not no_verify,
                                executor=executor, progress=bar, on_total=bar.total)
    else:
        df = predict_video(checkpoint, video, device=device)
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
