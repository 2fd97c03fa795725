"""Predictions of a trained network: on an export, or on a video file; written as affdata's
predictions file, which the store takes in as a model source (affmodels opens no store).

A video file is decoded in order with affdata's video layer and cropped by the export's
whole-frame policy (the centred square, resized to the model's input size): without a face
detector the face must fill the middle of the frame. Each output row is one (video, track,
frame): ``valence``, ``arousal``, ``AUn`` (0/1 at probability 0.5) and ``AUn_p``, ``expression``
(class name) and ``p_<class>``.

A temporal model predicts every frame: on an export from overlapping windows of each track
(:func:`affmodels.evaluate.predictions`), in this process, since a track's windows cross shard
boundaries; on a video from the same windows over the video's frames (:class:`WindowedFrames`),
each frame taking the output of the first window that holds it.
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
from affmodels.evaluate import eval_hop, eval_stream, model_window, predictions
from affmodels.errors import ModelError
from affmodels.model import Predictions

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
    #: torch threads in a local pool's process (cores / processes, so N processes do not each
    #: start a thread per core); None: the worker's own setting (Dask's nanny sets one thread)
    threads: int | None = None


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
    if job.threads is not None:
        torch.set_num_threads(job.threads)
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
    from affdata.workers import threads_per_process

    checkpoint = Path(checkpoint)
    saved = load_checkpoint(checkpoint)  # a clear error here, not one per task
    if saved.get("model_config", {}).get("temporal"):
        if (executor is not None and (executor.remote or executor.slots > 1)) or workers > 1:
            raise PredictError(f"{checkpoint}: a temporal model predicts an export in this process (its "
                               "windows follow a track across shards); run it without a cluster or workers")
        return _predict_windows(checkpoint, data, batch_size=batch_size, device=device, verify=verify,
                                progress=progress, on_total=on_total)
    sha = file_sha256(checkpoint) if checkpoint.is_file() else ""
    own = executor is None
    executor = executor or PoolExecutor(max(1, workers))
    try:
        if not executor.remote and executor.slots <= 1:
            _, state = MODELS.get(checkpoint, sha, device, check=False)  # this process is the worker
        else:
            state = saved
            if state.get("kind") != "multitask":
                raise CheckpointError(f"{checkpoint}: a {state.get('kind')} checkpoint, not a multi-task network")
        vocab = state["vocabulary"]
        manifest = load_manifest(data, check=False)  # each task checks its own shard
        where = str(data) if is_remote(data) else executor.path_map.to_worker(Path(data).resolve())
        threads = threads_per_process(executor.slots) if (not executor.remote and executor.slots > 1) else None
        starts = np.concatenate([[0], np.cumsum([s.rows for s in manifest.shards])[:-1]]).astype(int)
        jobs = [ShardJob(executor.path_map.to_worker(checkpoint.resolve()), sha, where, i, entry, int(starts[i]),
                         batch_size, str(device), verify, threads) for i, entry in enumerate(manifest.shards)]
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

def _predict_windows(checkpoint: Path, data: str | Path, *, batch_size: int, device: str, verify: bool,
                     progress: Callable[[int], None] | None,
                     on_total: Callable[[int], None] | None) -> pd.DataFrame:
    """A temporal model over the whole export: overlapping windows of each track, every row once."""
    model, state = load_model(checkpoint, device)
    vocab = state["vocabulary"]
    stream = eval_stream(data, batch_size, verify=verify, window=model_window(model))
    if on_total is not None:
        on_total(stream.manifest.rows)
    parts = []
    for pred, batch in predictions(model, stream, batch_size=batch_size, device=device):
        ids = {"video": list(batch["video"]), "track": list(batch["track"]), "frame": batch["frame"].numpy()}
        parts.append(_frame_rows(pred, ids, vocab["au_names"], vocab["expressions"]))
        if progress is not None:
            progress(len(pred.va))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    df.attrs["vocabulary"] = vocab
    return df


class WindowedFrames:
    """A temporal model over a stream of frames: windows of T frames every ``hop`` frames,
    each frame's output from the first window holding it (as for an export), padded at the
    end with copies of the last frame. Feed chunks of frames; each call returns the outputs
    of the frames now decided, in order; :meth:`finish` the rest."""

    def __init__(self, model: torch.nn.Module, window: int, hop: int, device: str | torch.device) -> None:
        self.model, self.T, self.hop, self.device = model, window, hop, device
        self.buffer: list[np.ndarray] = []  # frames from the next window's start
        self.first = True  # the next window is the video's first: all its frames are new

    def _run(self, windows: list[np.ndarray]) -> Predictions:
        x = torch.from_numpy(np.concatenate(windows)).permute(0, 3, 1, 2).to(self.device)
        pred = self.model(x)
        return Predictions(*(t.float().cpu() for t in pred))

    def _take(self, final: bool) -> list[Predictions]:
        windows, news = [], []
        while len(self.buffer) >= self.T or (final and self.buffer):
            frames = self.buffer[:self.T]
            real = len(frames)
            frames = frames + [frames[-1]] * (self.T - real)
            windows.append(np.stack(frames))
            new_from = 0 if self.first else self.T - self.hop
            news.append((new_from, real))
            self.first = False
            if real < self.T:  # the padded last window: every frame is out
                self.buffer = []
                break
            self.buffer = self.buffer[self.hop:]
            if final and len(self.buffer) <= self.T - self.hop:
                self.buffer = []  # its frames were all in this window
        if not windows:
            return []
        pred = self._run(windows)
        out = []
        for i, (a, z) in enumerate(news):
            if z > a:
                out.append(Predictions(*(t[i * self.T + a:i * self.T + z] for t in pred)))
        return out

    def feed(self, frames: list[np.ndarray]) -> list[Predictions]:
        self.buffer += frames
        return self._take(final=False)

    def finish(self) -> list[Predictions]:
        return self._take(final=True)


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
    window = model_window(model)
    windowed = WindowedFrames(model, window, eval_hop(window), device) if window else None
    done = 0  # frames whose rows are written

    def rows(outputs: list[Predictions]) -> None:
        nonlocal done
        for pred in outputs:
            n = len(pred.va)
            ids = {"video": [name] * n, "track": ["main"] * n, "frame": np.array(frames[done:done + n])}
            parts.append(_frame_rows(pred, ids, vocab["au_names"], vocab["expressions"]))
            done += n

    def flush() -> None:
        if windowed is not None:
            rows(windowed.feed(images))
        else:
            batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(device)
            rows([Predictions(*(t.float().cpu() for t in model(batch)))])
        images.clear()

    for index, rgb in iter_frames(info):
        images.append(crop_resize(rgb, box, size))
        frames.append(index)
        if len(images) == CHUNK:
            flush()
    if images:
        flush()
    if windowed is not None:
        rows(windowed.finish())
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
