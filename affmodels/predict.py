"""Predictions of a trained network: on an export, or on a video file; written as affdata's
predictions file, which the store takes in as a model source (affmodels opens no store).

A video file is decoded in order with affdata's video layer and cropped by the export's
whole-frame policy (the centred square, resized to the model's input size): without a face
detector the face must fill the middle of the frame. Each output row is one (video, track,
frame): ``valence``, ``arousal``, ``AUn`` (0/1 at probability 0.5) and ``AUn_p``, ``expression``
(class name) and ``p_<class>``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from affdata.hashing import file_sha256
from affmodels.checkpoint import CheckpointError, load_checkpoint, load_model
from affmodels.data.dataset import shard_batches
from affmodels.data.errors import ShardError
from affmodels.data.manifest import ShardEntry, check_shards, load_manifest
from affmodels.data.remote import is_remote
from affmodels.errors import ModelError

if TYPE_CHECKING:
    from affdata.executor import Executor

CHUNK = 128


def _frame_rows(pred: Any, ids: dict[str, list], au_names: list[str], classes: list[str]) -> pd.DataFrame:
    au_p = torch.sigmoid(pred.au_logits).numpy()
    ex_p = torch.softmax(pred.expr_logits, dim=1).numpy() if classes else np.zeros((len(au_p), 0))
    data: dict[str, Any] = dict(ids)
    data["valence"] = pred.va[:, 0].numpy()
    data["arousal"] = pred.va[:, 1].numpy()
    for k, name in enumerate(au_names):
        data[name] = (au_p[:, k] >= 0.5).astype(np.int8)
        data[f"{name}_p"] = au_p[:, k]
    data["expression"] = [classes[i] for i in ex_p.argmax(1)] if classes else [None] * len(au_p)
    for c, name in enumerate(classes):
        data[f"p_{name}"] = ex_p[:, c]
    return pd.DataFrame(data)


@dataclass(frozen=True)
class ShardJob:
    """One shard's predictions, as a worker is asked for them: every path as the worker opens
    it (``--path-map`` applied), and what the client read, so a worker that sees another
    checkpoint or export under the same name fails instead of predicting on it."""

    checkpoint: str
    checkpoint_sha256: str
    data: str
    index: int
    entry: ShardEntry
    first_row: int
    batch_size: int
    device: str
    verify: bool


class PredictError(ModelError):
    """Shards whose predictions failed (each named with its reason); no predictions file is
    written, since one without their frames would pass for the whole export's."""


class _ModelCache:
    """The checkpoint's network, loaded once per process and kept for the tasks that follow
    (a worker predicts many shards); keyed by the checkpoint's sha256 and the device, so a
    retrained ``best.pt`` under the same path is loaded anew. Holds at most ``size`` models."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.models: OrderedDict[tuple[str, str], tuple[torch.nn.Module, dict[str, Any]]] = OrderedDict()
        self.loads: dict[str, int] = {}  # sha256 -> times loaded in this process (tests read it)
        self.lock = threading.Lock()

    def get(self, path: str | Path, sha256: str, device: str,
            check: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
        """``check``: hash the file first (a worker's view of it); the client has just hashed it."""
        key = (sha256, str(device))
        with self.lock:
            if key in self.models:
                self.models.move_to_end(key)
                return self.models[key]
            got = file_sha256(Path(path)) if check and Path(path).is_file() else None
            if got is not None and got != sha256:
                raise CheckpointError(f"{path}: this file's sha256 is {got[:16]}..., not the {sha256[:16]}... "
                                      "of the checkpoint the command was given (another file under that "
                                      "path on this host: check --path-map)")
            model, state = load_model(path, device)
            self.models[key] = (model, state)
            self.loads[sha256] = self.loads.get(sha256, 0) + 1
            while len(self.models) > self.size:
                self.models.popitem(last=False)
            return model, state


MODELS = _ModelCache()


@torch.no_grad()
def predict_shard(job: ShardJob) -> pd.DataFrame:
    """Runs on a worker (or in this process): the rows of one shard, in file order."""
    model, state = MODELS.get(job.checkpoint, job.checkpoint_sha256, job.device)
    vocab = state["vocabulary"]
    manifest = load_manifest(job.data, check=False)  # a URL: its manifest, shards fetched on use
    if job.index >= len(manifest.shards) or manifest.shards[job.index] != job.entry:
        raise ShardError(f"shard {job.entry.path}: the export at {job.data} is not the one the command "
                         "read (changed since, or --path-map points elsewhere)")
    one = replace(manifest, shards=(job.entry,))
    if not is_remote(job.data):  # a remote shard is verified as it is downloaded
        check_shards(one, verify=job.verify)
    parts = []
    for batch in shard_batches(one, 0, job.batch_size, job.first_row):
        pred = model(batch["image"].to(job.device))
        pred = type(pred)(*(t.float().cpu() for t in pred))
        ids = {"video": batch["video"], "track": batch["track"], "frame": batch["frame"].numpy()}
        parts.append(_frame_rows(pred, ids, vocab["au_names"], vocab["expressions"]))
    return pd.concat(parts, ignore_index=True)


def predict_export(checkpoint: str | Path, data: str | Path, *, batch_size: int = 256, workers: int = 1,
                   device: str = "cpu", verify: bool = True, executor: Executor | None = None,
                   progress: Callable[[int], None] | None = None,
                   on_total: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Predictions for every row of an export, in export order.

    The work is one task per shard (:func:`predict_shard`), run by ``executor``
    (:mod:`affdata.executor`: this process, a local pool, or a Dask cluster; default: this
    process, or a pool of ``workers`` processes). Each worker loads the checkpoint once and
    keeps it; each task returns its shard's rows and only this process assembles them, in
    shard order, so where the work ran changes nothing in the result, and a task rerun after
    its worker died is used once. A shard that fails (missing, corrupted, undecodable) fails
    alone: the others are predicted, then :class:`PredictError` names every failed shard.
    ``progress(rows)`` is called as each shard's rows arrive, ``on_total(rows)`` once before.
    """
    from affdata.executor import PoolExecutor

    checkpoint = Path(checkpoint)
    sha = file_sha256(checkpoint) if checkpoint.is_file() else ""
    own = executor is None
    executor = executor or PoolExecutor(max(1, workers))
    try:
        if not executor.remote and executor.slots <= 1:
            _, state = MODELS.get(checkpoint, sha, device, check=False)  # this process is the worker
        else:
            state = load_checkpoint(checkpoint)  # a clear error here, not one per task
            if state.get("kind") != "multitask":
                raise CheckpointError(f"{checkpoint}: a {state.get('kind')} checkpoint, not a multi-task network")
        vocab = state["vocabulary"]
        manifest = load_manifest(data, check=False)  # each task checks its own shard
        where = str(data) if is_remote(data) else executor.path_map.to_worker(Path(data).resolve())
        starts = np.concatenate([[0], np.cumsum([s.rows for s in manifest.shards])[:-1]]).astype(int)
        jobs = [ShardJob(executor.path_map.to_worker(checkpoint.resolve()), sha, where, i, entry, int(starts[i]),
                         batch_size, str(device), verify) for i, entry in enumerate(manifest.shards)]
        if on_total is not None:
            on_total(sum(s.rows for s in manifest.shards))
        results: dict[int, pd.DataFrame] = {}
        failed: dict[int, str] = {}
        for job, rows, error in executor.map(predict_shard, jobs):
            if error is not None:
                reason = " ".join(str(error).split()) or type(error).__name__
                failed[job.index] = reason.replace(where, str(data))  # the paths this host knows
            else:
                results[job.index] = rows  # one result per shard, whatever ran twice
                if progress is not None:
                    progress(len(rows))
    finally:
        if own:
            executor.close()
    if failed:
        by_reason: dict[str, list[str]] = {}
        for i in sorted(failed):  # one reason (a checkpoint no worker can load) is said once
            by_reason.setdefault(failed[i], []).append(manifest.shards[i].path)
        named = "; ".join(f"{', '.join(paths)}: {reason}" for reason, paths in by_reason.items())
        raise PredictError(f"{len(failed)} of {len(jobs)} shard(s) of {data} failed, no predictions "
                           f"written: {named}")
    df = pd.concat([results[i] for i in range(len(jobs))], ignore_index=True) if jobs else pd.DataFrame()
    df.attrs["vocabulary"] = vocab  # what the columns name, without loading the checkpoint again
    return df


@torch.no_grad()
def predict_video(checkpoint: str | Path, video: str | Path, *, device: str = "cpu") -> pd.DataFrame:
    from affdata.export.crop import crop_resize, whole_frame_box
    from affdata.video import iter_frames, probe

    model, state = load_model(checkpoint, device)
    vocab = state["vocabulary"]
    size = state["model_config"]["image_size"]
    info = probe(Path(video))
    box = whole_frame_box(info.width, info.height, folder=info.kind == "frames")
    name = Path(video).name if info.kind == "frames" else Path(video).stem
    parts, images, frames = [], [], []

    def flush() -> None:
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(device)
        pred = model(batch)
        pred = type(pred)(*(t.float().cpu() for t in pred))
        ids = {"video": [name] * len(frames), "track": ["main"] * len(frames), "frame": np.array(frames)}
        parts.append(_frame_rows(pred, ids, vocab["au_names"], vocab["expressions"]))
        images.clear()
        frames.clear()

    for index, rgb in iter_frames(info):
        images.append(crop_resize(rgb, box, size))
        frames.append(index)
        if len(images) == CHUNK:
            flush()
    if images:
        flush()
    df = pd.concat(parts, ignore_index=True)
    df.attrs["vocabulary"] = vocab  # what the columns name, without loading the checkpoint again
    return df


def write_predictions_file(df: pd.DataFrame, path: Path, checkpoint: str | Path) -> Path:
    """``df`` as affdata's predictions file (:mod:`affdata.formats.predictions`): the format the
    store takes in (``affdata ingest labels --format predictions``)."""
    from affdata.formats.predictions import write_predictions
    from affdata.hashing import file_sha256

    vocab = df.attrs.get("vocabulary", {})
    return write_predictions(df, path, au_names=vocab.get("au_names", []), expressions=vocab.get("expressions", []),
                             checkpoint_sha256=file_sha256(Path(checkpoint)))
