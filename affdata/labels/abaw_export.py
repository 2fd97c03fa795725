"""Writing a label source back out in the ABAW layout (``VA_Set/Training_Set/<video>.txt``...).

Labels imported from ABAW per-task files go back to the same relative path, with the header
line they had and one line per video frame, so importing a release and exporting it gives the
same files. Labels from any other source (the consensus, a model, a generic table) are written
per track as ``<Task>_Set/<Part>_Set/<video>[_<track>].txt`` with canonical headers, the part
taken from ``split`` (every file in ``Training_Set`` without one). Frames without a label get
-5 (VA) or -1 (AU, expression), unless ``fill``: then every frame gets a value by the rule of
:mod:`affdata.formats.abaw_submission` (VA linear in time within the track, AU and expression
from the nearest labelled frame), and each file is checked against the challenge's rules; for a
model source written out as a submission, not for human labels (a filled label is invented).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.formats import LabelTable, write_abaw_task_file
from affdata.formats.abaw_submission import check_submission_file, fill_track
from affdata.labels.consensus import resolve_sources
from affdata.splits import resolve_split
from affdata.vocab import EXPRESSIONS

TASK_DIRS = {"va": "VA_Set", "au": "AU_Set", "expr": "EXPR_Set"}
PART_DIRS = {"train": "Training_Set", "val": "Validation_Set", "test": "Test_Set"}


@dataclass
class AbawExport:
    out: str
    source: str
    files: dict[str, int] = field(default_factory=dict)


def export_abaw(store: Store, out: Path, *, source: str | None = None,
                tasks: tuple[str, ...] = ("va", "au", "expr"), split: str | None = None,
                fill: bool = False) -> AbawExport:
    out = Path(out)
    with store.connect() as conn:
        chosen = resolve_sources(conn, [source] if source else None)
        if len(chosen) != 1:
            raise ConfigError(f"{len(chosen)} label sources could be exported ({', '.join(chosen.values())}): "
                              "name one with --source")
        (source_id, name), = chosen.items()
        parts = _parts(conn, split)
        result = AbawExport(str(out), name, {t: 0 for t in tasks})
        done: set[tuple[str, int]] = set()
        for imp in conn.execute(text("SELECT id, key, details FROM label_import WHERE source_id = :s ORDER BY key"),
                                {"s": source_id}).all():
            details = _json(imp.details)
            task = details.get("task")
            if task not in tasks:
                continue
            tracks = conn.execute(text(f"SELECT DISTINCT track_id FROM {task}_label WHERE import_id = :i"),
                                  {"i": imp.id}).scalars().all()
            for track_id in tracks:
                _write(conn, out / imp.key, task, source_id, track_id, details.get("header"), imp.id, fill)
                done.add((task, track_id))
                result.files[task] += 1
        for task in tasks:
            for track_id, video, track in conn.execute(text(
                    f"SELECT DISTINCT l.track_id, v.name, t.name FROM {task}_label l JOIN track t ON t.id = l.track_id "
                    f"JOIN video v ON v.id = t.video_id WHERE l.source_id = :s ORDER BY v.name, t.name"),
                    {"s": source_id}).all():
                if (task, track_id) in done:
                    continue
                stem = video if track == "main" else f"{video}_{track}"
                part = PART_DIRS.get(parts.get(video, "train"), f"{parts.get(video, 'train').title()}_Set")
                _write(conn, out / TASK_DIRS[task] / part / f"{stem}.txt", task, source_id, track_id, None, None,
                       fill)
                result.files[task] += 1
    return result


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value or {}


def _parts(conn: Connection, split: str | None) -> dict[str, str]:
    if not split:
        return {}
    row = resolve_split(conn, split)
    return dict(conn.execute(text("SELECT v.name, a.part FROM split_assignment a JOIN video v ON v.id = a.video_id "
                                  "WHERE a.split_id = :s"), {"s": row.id}).all())


def _write(conn: Connection, path: Path, task: str, source_id: int, track_id: int,
           header: str | None, import_id: int | None, fill: bool = False) -> None:
    video, n_frames = conn.execute(text("SELECT v.name, v.frame_count FROM track t JOIN video v ON v.id = t.video_id "
                                        "WHERE t.id = :t"), {"t": track_id}).one()
    where = "track_id = :t AND source_id = :s" + (" AND import_id = :i" if import_id else "")
    params = {"t": track_id, "s": source_id, "i": import_id}
    if task == "va":
        rows = np.array(conn.execute(text(f"SELECT frame_idx, valence, arousal FROM va_label WHERE {where} "
                                          "ORDER BY frame_idx"), params).all(), dtype=np.float64).reshape(-1, 3)
        frames = rows[:, 0].astype(np.int64)
        table = _table(path, video, frames, valence=rows[:, 1], arousal=rows[:, 2])
    elif task == "expr":
        rows = np.array(conn.execute(text(f"SELECT frame_idx, expr_id FROM expr_label WHERE {where} "
                                          "ORDER BY frame_idx"), params).all(), dtype=np.int64).reshape(-1, 2)
        table = _table(path, video, rows[:, 0], expr=rows[:, 1].astype(np.int16))
        if header is None:
            top = 8 if (table.expr == 7).any() else 7
            header = ",".join(EXPRESSIONS[:top])
    else:
        long = pd.DataFrame(conn.execute(text(f"SELECT frame_idx, au_id, present FROM au_label WHERE {where} "
                                              "AND present IS NOT NULL"), params).all(),
                            columns=["frame", "au", "present"])
        grid = long.pivot_table(index="frame", columns="au", values="present", aggfunc="first").sort_index()
        aus = tuple(int(a) for a in grid.columns)
        present = grid.fillna(-1).to_numpy(dtype=np.int8)
        table = _table(path, video, grid.index.to_numpy(dtype=np.int64), au_numbers=aus, au_present=present)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fill:
        table = fill_track(table, task, n_frames)
    write_abaw_task_file(path, table, task, header=header, n_frames=n_frames)
    if fill:
        check_submission_file(path, task, n_frames=n_frames)


def _table(path: Path, video: str, frames: np.ndarray, **columns: Any) -> LabelTable:
    return LabelTable(path=str(path), video=video, track="main", frames=frames, lines=frames + 2,
                      n_lines=int(frames.size), **columns)
