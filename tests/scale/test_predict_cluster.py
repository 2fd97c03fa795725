"""affmodels predict on a Dask LocalCluster: one task per shard, the same rows in the same order
as in this process, a worker killed by pid mid-shard changes nothing, a bad shard fails alone
and is named, the checkpoint loaded once per worker, paths mapped, shards read from S3."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from affdata.db import Store
from affdata.executor import DaskExecutor, PathMap, PoolExecutor
from affdata.hashing import file_sha256
from affmodels.predict import PredictError, predict_export, write_predictions_file
from tests.scale.tasks import model_loads, set_env


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny synthetic release exported at 32 px in shards of 12 rows, and a checkpoint of a
    network trained on it for two steps (predictions need weights, not a good model)."""
    from affmodels.train import TrainConfig, train
    from tests.affmodels.training.conftest import synthetic_exports

    root = tmp_path_factory.mktemp("predict")
    synthetic_exports(root, subjects=2, seconds=3, seed=4, parts=("train",), size=32, shard_size=12,
                      row_group_size=4)
    train(TrainConfig(data=str(root / "train"), out=str(root / "run"), epochs=1, batch_size=8, workers=0,
                      seed=1, width=8, device="cpu", max_steps=2, threads=1))
    return {"export": root / "train", "checkpoint": root / "run" / "last.pt", "db": root / "affdata.db"}


@pytest.fixture(scope="session")
def reference(small) -> pd.DataFrame:
    """The predictions of a run in this process (``--cluster local``, one worker), with torch's
    threads on several cores, where Dask's workers have one each (OMP_NUM_THREADS=1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        return predict_export(small["checkpoint"], small["export"], batch_size=8)
    finally:
        torch.set_num_threads(before)


def _shards(export: Path) -> list[str]:
    import json

    return [s["path"] for s in json.loads((export / "meta" / "info.json").read_text())["shards"]]


def test_on_dask_the_rows_and_their_order_are_those_of_a_local_run_and_the_model_loads_once_per_worker(
        small, reference: pd.DataFrame, dask_local: DaskExecutor, tmp_path: Path) -> None:
    n_shards = len(_shards(small["export"]))
    assert n_shards > 2 * len(dask_local.client.nthreads())  # more tasks than workers
    assert len(reference) == sum(1 for _ in reference.itertuples()) and not reference.duplicated(
        ["video", "track", "frame"]).any()
    on_dask = predict_export(small["checkpoint"], small["export"], batch_size=8, executor=dask_local)
    pd.testing.assert_frame_equal(on_dask, reference, check_exact=True)
    assert on_dask.attrs["vocabulary"] == reference.attrs["vocabulary"]
    # the predictions files are byte-identical too
    a = write_predictions_file(reference, tmp_path / "a.parquet", small["checkpoint"])
    b = write_predictions_file(on_dask, tmp_path / "b.parquet", small["checkpoint"])
    assert a.read_bytes() == b.read_bytes()
    loads = dask_local.client.run(model_loads, file_sha256(small["checkpoint"]))
    assert all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1, loads


def test_the_local_pool_gives_the_same_rows(small, reference: pd.DataFrame) -> None:
    pooled = predict_export(small["checkpoint"], small["export"], batch_size=8, executor=PoolExecutor(2))
    pd.testing.assert_frame_equal(pooled, reference, check_exact=True)


def test_a_worker_killed_mid_shard_leaves_a_complete_file_without_duplicates(
        small, reference: pd.DataFrame, dask_local: DaskExecutor, killer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import affmodels.predict
    from tests.scale.tasks import predict_shard_slow_once

    monkeypatch.setattr(affmodels.predict, "predict_shard", predict_shard_slow_once)  # shipped by reference
    on_dask = predict_export(small["checkpoint"], small["export"], batch_size=8, executor=dask_local)
    assert killer.killed, "no worker was killed"
    pd.testing.assert_frame_equal(on_dask, reference, check_exact=True)


def _corrupt(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size: only the sha256 can tell
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("where", ["here", "dask"])
def test_a_corrupted_shard_fails_alone_and_is_named(small, dask_local: DaskExecutor, tmp_path: Path,
                                                    where: str) -> None:
    export = shutil.copytree(small["export"], tmp_path / "export")
    (export / "meta" / "verified.json").unlink(missing_ok=True)
    shards = _shards(export)
    _corrupt(export / shards[1])
    with pytest.raises(PredictError) as info:
        predict_export(small["checkpoint"], export, batch_size=8,
                       executor=dask_local if where == "dask" else None)
    message = str(info.value)
    assert message.startswith(f"1 of {len(shards)} shard(s) of {export} failed, no predictions written: "
                              f"{shards[1]}: "), message
    assert "fails verification" in message and all(s not in message for s in shards if s != shards[1])


def _variant(checkpoint: Path, out: Path, tag: str) -> Path:
    """The same network in a file of another sha256: one no worker has loaded yet (workers
    keep a loaded checkpoint by its sha256 and then need not open the file again)."""
    import torch

    state = torch.load(checkpoint, weights_only=False)
    state["test_tag"] = tag
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    return out


def test_workers_open_the_checkpoint_and_export_through_the_path_map(
        small, reference: pd.DataFrame, dask_local: DaskExecutor, tmp_path: Path) -> None:
    client_view = tmp_path / "client"
    _variant(small["checkpoint"], client_view / "best.pt", "mapped")
    (client_view / "export").symlink_to(small["export"])
    worker_view = tmp_path / "workers"
    worker_view.symlink_to(client_view)
    mapped = dask_local.with_path_map(PathMap.parse([f"{client_view}={worker_view}"]))
    got = predict_export(client_view / "best.pt", client_view / "export", batch_size=8, executor=mapped)
    pd.testing.assert_frame_equal(got, reference, check_exact=True)
    # workers that find another checkpoint under the mapped name refuse it, for every shard
    elsewhere = tmp_path / "elsewhere"
    _variant(small["checkpoint"], elsewhere / "best.pt", "the client's")
    (elsewhere / "export").symlink_to(small["export"])
    wrong = dask_local.with_path_map(PathMap.parse([f"{elsewhere}={client_view}"]))
    with pytest.raises(PredictError, match="not the .* of the checkpoint the command was given") as info:
        predict_export(elsewhere / "best.pt", elsewhere / "export", batch_size=8, executor=wrong)
    assert str(info.value).startswith(f"{len(_shards(small['export']))} of ")


def test_on_dask_shards_stream_from_s3(small, reference: pd.DataFrame, dask_local: DaskExecutor, s3,
                                       tmp_path: Path) -> None:
    import os

    from affdata.export import export_part

    url = f"s3://{s3.bucket}/train"
    with Store(str(small["db"])) as store:
        export_part(store, split="official", part="train", out=url, size=32, shard_size=12, row_group_size=4)
    # workers on other hosts have the credentials and a shard cache of their own
    worker_env = {**s3.env(), "AFFMODELS_SHARD_CACHE": str(tmp_path / "worker-cache")}
    dask_local.client.run(set_env, worker_env)
    try:
        got = predict_export(small["checkpoint"], url, batch_size=8, executor=dask_local)
    finally:
        dask_local.client.run(set_env, {k: None for k in worker_env})
    pd.testing.assert_frame_equal(got, reference, check_exact=True)
    cached = {p.stem for p in (tmp_path / "worker-cache" / "data").glob("*.parquet")}
    local = {hashlib.sha256((small["export"] / s).read_bytes()).hexdigest() for s in _shards(small["export"])}
    assert cached == local  # every shard fetched, verified, into the workers' cache
    assert os.environ["AFFMODELS_SHARD_CACHE"] != str(tmp_path / "worker-cache")  # the client's is its own


def test_the_command_writes_the_same_files_with_local_and_local_2_and_imports_them(
        small, tmp_path: Path) -> None:
    import sqlalchemy as sa
    from typer.testing import CliRunner

    from cli.affmodels_app import app

    db = shutil.copy(small["db"], tmp_path / "affdata.db")
    files = {}
    for cluster in ("local", "local:2"):
        out = tmp_path / cluster.replace(":", "-")
        args = ["predict", "--checkpoint", str(small["checkpoint"]), "--data", str(small["export"]),
                "--out", str(out), "--cluster", cluster, "--batch-size", "8"]
        if cluster == "local:2":
            args += ["--into-store", "--source", "tiny-model", "--db", str(db)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        files[cluster] = [(out / name).read_bytes() for name in ("predictions.parquet", "predictions.csv")]
    assert files["local"] == files["local:2"]
    assert "frames predicted" in result.stderr and "model source 'tiny-model' imported" in result.stderr
    with Store(str(db)) as store, store.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM va_label l JOIN label_source s ON s.id = l.source_id "
                                 "WHERE s.name = 'tiny-model'")).scalar()
    assert n == len(pd.read_parquet(tmp_path / "local" / "predictions.parquet"))
