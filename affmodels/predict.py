"""Predictions of a trained network: on an export, or on a video file; written as affdata's
predictions file, which the store takes in as a model source (affmodels opens no store).

A video file is decoded in order with affdata's video layer and cropped by the export's
whole-frame policy (the centred square, resized to the model's input size): without a face
detector the face must fill the middle of the frame. Each output row is one (video, track,
frame): ``valence``, ``arousal``, ``AUn`` (0/1 at probability 0.5) and ``AUn_p``, ``expression``
(class name) and ``p_<class>``.

A temporal model predicts every frame: on an export from overlapping windows of each track
(:func:`affmodels.evaluate.predictions`); on a video from the same windows over the video's
frames (:class:`WindowedFrames`), each frame taking the output of the first window that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from affmodels.checkpoint import load_model
from affmodels.evaluate import eval_hop, eval_stream, model_window, predictions
from affmodels.model import Predictions

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


def predict_export(checkpoint: str | Path, data: str | Path, *, batch_size: int = 256, workers: int = 0,
                   device: str = "cpu", verify: bool = True) -> pd.DataFrame:
    stream = eval_stream(data, batch_size, verify=verify)  # a corrupted export fails before the model loads
    model, state = load_model(checkpoint, device)
    vocab = state["vocabulary"]
    parts = []
    for pred, batch in predictions(model, stream, batch_size=batch_size, workers=workers, device=device):
        ids = {"video": list(batch["video"]), "track": list(batch["track"]), "frame": batch["frame"].numpy()}
        parts.append(_frame_rows(pred, ids, vocab["au_names"], vocab["expressions"]))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    df.attrs["vocabulary"] = vocab  # what the columns name, without loading the checkpoint again
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
