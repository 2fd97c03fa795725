"""Predictions of a trained network: on an export, or on a video file; as CSV, as ABAW files,
or back into the store as a model source.

A video file is decoded in order with affdata's video layer and cropped by the export's
whole-frame policy (the centred square, resized to the model's input size): without a face
detector the face must fill the middle of the frame. Each output row is one (video, track,
frame): ``valence``, ``arousal``, ``AUn`` (0/1 at probability 0.5) and ``AUn_p``, ``expression``
(class name) and ``p_<class>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from affmodels.evaluate import eval_stream, load_model, predictions

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


def write_abaw(df: pd.DataFrame, out: Path, au_names: list[str], classes: list[str],
               frame_counts: dict[str, int] | None = None) -> int:
    """One ABAW file per (video, track) and task in ``out/{VA,AU,EXPR}_Set/``; frames without a
    prediction (not exported, or no face) get -5 / -1. Returns the number of files written."""
    from affdata.formats import write_abaw_task_file

    written = 0
    for (video, track), rows in df.groupby(["video", "track"], sort=True):
        stem = video if track == "main" else f"{video}_{track}"
        n = (frame_counts or {}).get(video, int(rows["frame"].max()) + 1)
        for task, table in to_label_tables(rows, au_names, classes).items():
            path = out / {"va": "VA_Set", "au": "AU_Set", "expr": "EXPR_Set"}[task] / f"{stem}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = ",".join(classes) if task == "expr" else None
            write_abaw_task_file(path, table, task, header=header, n_frames=n)
            written += 1
    return written


def to_label_tables(rows: pd.DataFrame, au_names: list[str], classes: list[str]) -> dict[str, Any]:
    """One affdata LabelTable per task for one (video, track) of predictions."""
    from affdata.formats import LabelTable
    from affdata.vocab import au_number, expression_id

    rows = rows.sort_values("frame")
    frames = rows["frame"].to_numpy(dtype=np.int64)
    base = dict(path="predictions", video=str(rows["video"].iloc[0]), track=str(rows["track"].iloc[0]),
                frames=frames, lines=frames + 1, n_lines=int(frames.size), kind="model")
    tables = {"va": LabelTable(**base, valence=rows["valence"].to_numpy(np.float64).clip(-1, 1),
                               arousal=rows["arousal"].to_numpy(np.float64).clip(-1, 1))}
    if au_names:
        tables["au"] = LabelTable(**base, au_numbers=tuple(au_number(a) for a in au_names),
                                  au_present=rows[au_names].to_numpy(np.int8))
    if classes:
        canonical = np.array([expression_id(c) for c in classes], dtype=np.int16)
        index = {c: i for i, c in enumerate(classes)}
        tables["expr"] = LabelTable(**base, expr=canonical[[index[c] for c in rows["expression"]]],
                                    expr_order=tuple(int(c) for c in canonical))
    return tables


def into_store(df: pd.DataFrame, store: Any, *, source: str, version: str, key: str,
               au_names: list[str], classes: list[str]) -> tuple[str, int]:
    """Write predictions into an affdata store as a ``model`` source (replacing the same key)."""
    from affdata.labels.importer import import_predictions

    tables = []
    for _, rows in df.groupby(["video", "track"], sort=True):
        per_task = to_label_tables(rows, au_names, classes)
        merged = per_task["va"]
        if "au" in per_task:
            merged.au_numbers, merged.au_present = per_task["au"].au_numbers, per_task["au"].au_present
        if "expr" in per_task:
            merged.expr, merged.expr_order = per_task["expr"].expr, per_task["expr"].expr_order
        tables.append(merged)
    digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()
    return import_predictions(store, tables, source=source, version=version, key=key, path=key, digest=digest)
