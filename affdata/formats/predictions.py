"""The predictions file: a model's per-frame output, in a format affdata owns (docs/models.md).

``affmodels predict`` writes it; ``affdata ingest labels --format predictions`` takes it in as a
``model`` label source (and ``affdata export labels --source MODEL`` writes ABAW files from that).
One Parquet file, one row per (video, track, frame):

- ``video`` (string), ``track`` (string), ``frame`` (int64, 0-based);
- ``valence``, ``arousal`` (float32, -1..1);
- per AU of the model's vocabulary, ``AUn`` (int8 0/1, the decision at probability 0.5) and
  ``AUn_p`` (float32 probability);
- ``expression`` (string: the most probable class, null for a model without classes) and per
  class ``p_<class>`` (float32 probability).

The file's key-value metadata holds ``affdata.predictions.format_version`` (1),
``affdata.predictions.vocabulary`` (JSON: ``au_names`` and ``expressions`` in column order) and
``affdata.predictions.checkpoint_sha256`` (the sha256 of the checkpoint that predicted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affdata.errors import LabelFormatError
from affdata.formats.table import LabelTable

FORMAT_VERSION = 1
_META = "affdata.predictions."


def write_predictions(df: Any, path: Path, *, au_names: list[str], expressions: list[str],
                      checkpoint_sha256: str) -> Path:
    """Write a DataFrame of the columns above to ``path``, with the vocabulary and checkpoint hash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)
    meta.update({f"{_META}format_version".encode(): str(FORMAT_VERSION).encode(),
                 f"{_META}vocabulary".encode(): json.dumps({"au_names": list(au_names),
                                                             "expressions": list(expressions)}).encode(),
                 f"{_META}checkpoint_sha256".encode(): checkpoint_sha256.encode()})
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(path)
    return path


def read_predictions(path: Path) -> tuple[list[LabelTable], dict[str, Any]]:
    """One LabelTable per (video, track), and the metadata (vocabulary, checkpoint_sha256).

    Refuses a file that is not a predictions file, or whose columns do not match its vocabulary.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from affdata.vocab import au_number, expression_id

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise LabelFormatError(str(path), f"cannot read as Parquet ({exc})") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k.decode().startswith(_META)}
    version = meta.get(f"{_META}format_version")
    if version is None:
        raise LabelFormatError(str(path), "not an affdata predictions file (no affdata.predictions metadata)")
    if version != str(FORMAT_VERSION):
        raise LabelFormatError(str(path), f"predictions format version {version}; this affdata reads {FORMAT_VERSION}")
    vocab = json.loads(meta[f"{_META}vocabulary"])
    au_names, classes = list(vocab["au_names"]), list(vocab["expressions"])
    needed = ["video", "track", "frame", "valence", "arousal", *au_names, "expression"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise LabelFormatError(str(path), f"lacks column(s) {', '.join(missing)}")
    df = table.select(needed).to_pandas()
    canonical = np.array([expression_id(c) for c in classes], dtype=np.int16)
    index = {c: i for i, c in enumerate(classes)}
    au_numbers = tuple(au_number(a) for a in au_names)
    tables = []
    for (video, track), rows in df.groupby(["video", "track"], sort=True):
        rows = rows.sort_values("frame")
        frames = rows["frame"].to_numpy(dtype=np.int64)
        if len(np.unique(frames)) != len(frames):
            raise LabelFormatError(str(path), f"{video}/{track} has a frame twice")
        t = LabelTable(path=str(path), video=str(video), track=str(track), frames=frames, lines=rows.index.to_numpy() + 1,
                       n_lines=int(frames.size), kind="model",
                       valence=rows["valence"].to_numpy(np.float64).clip(-1, 1),
                       arousal=rows["arousal"].to_numpy(np.float64).clip(-1, 1))
        if au_names:
            t.au_numbers, t.au_present = au_numbers, rows[au_names].to_numpy(np.int8)
        if classes:
            unknown = set(rows["expression"]) - set(index)
            if unknown:
                raise LabelFormatError(str(path), f"expression {sorted(map(str, unknown))[0]!r} is not in the "
                                                  f"file's vocabulary {classes}")
            t.expr = canonical[[index[c] for c in rows["expression"]]]
            t.expr_order = tuple(int(c) for c in canonical)
        tables.append(t)
    return tables, {"vocabulary": vocab, "checkpoint_sha256": meta.get(f"{_META}checkpoint_sha256", "")}
