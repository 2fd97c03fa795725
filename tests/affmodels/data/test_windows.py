"""WindowStream: windows of consecutive frames of one track, with the frame reader's guarantees
(contract, f(seed, epoch) order, equal samples per rank, exact resume)."""

from __future__ import annotations

import hashlib
import json
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from affmodels.data import Augment, ResumeError, WindowStream, make_loader
from affmodels.data.order import interleave
from affmodels.data.windows import keep_first, window_anchors
from affmodels.errors import ConfigError
from tests.affmodels.data.exports import Export, write_export
from tests.affmodels.data.test_dataset import _parquet

T = 6  # the export's videos have 40 frames: 6 full windows and one of 4 real frames each


def _windows(batches: list[dict[str, Any]], length: int = T) -> np.ndarray:
    """(windows, T) rows of each window, -1 for padding."""
    rows = [b["row"].numpy() for b in batches]
    return np.concatenate(rows).reshape(-1, length) if rows else np.zeros((0, length), np.int64)


def test_windows_are_consecutive_rows_of_one_track_and_follow_the_contract(export: Export) -> None:
    ds = WindowStream(export.root, length=T, batch_size=4, seed=1)
    assert ds.windows == 6 * 7 and len(ds.anchors) == 42
    batches = list(ds)
    ref = _parquet(export)
    for b in batches:
        rows = b["row"].numpy()
        real = rows >= 0
        assert b["image"].shape == (len(rows), 3, 16, 16) and len(rows) % T == 0
        assert np.array_equal(b["image"].permute(0, 2, 3, 1).numpy()[real], export.pixels[rows[real]])
        assert np.array_equal(b["va_mask"].numpy()[real], ~np.isnan(ref["valence"][rows[real]]))
        assert np.array_equal(b["frame"].numpy()[real], ref["frame"][rows[real]])
        # padding: no label of any task, a copy of the window's last real frame
        assert not (b["va_mask"].numpy()[~real].any() or b["au_mask"].numpy()[~real].any()
                    or b["expr_mask"].numpy()[~real].any())
        assert (b["expr"].numpy()[~real] == -1).all()
        positions = b["position"].numpy().reshape(-1, T)
        assert (positions == positions[:, :1]).all()  # one position (one augmentation) per window
    w = _windows(batches)
    for win in w:
        real = win[win >= 0]
        assert np.array_equal(real, np.arange(real[0], real[0] + len(real)))  # consecutive rows
        assert len(set(export.videos[real])) == 1  # never across a track
        assert (win[len(real):] == -1).all()  # padding only at the end
    assert sorted(w[w >= 0].tolist()) == list(range(export.rows))  # every frame once per epoch
    assert (w[:, -1] == -1).sum() == 6  # one padded tail per track (40 = 6 x 6 + 4)


def test_anchors_cover_every_row_with_overlap_and_short_tracks() -> None:
    bounds = np.array([0, 3, 20])  # a track of 3 rows (< T) and one of 17
    assert window_anchors(bounds, 6, 6).tolist() == [0, 3, 9, 15]
    assert window_anchors(bounds, 6, 3).tolist() == [0, 3, 6, 9, 12, 15]
    for stride in (1, 2, 3, 6):
        anchors = window_anchors(bounds, 6, stride)
        covered = {r for a in anchors for r in range(a, min(a + 6, 3 if a < 3 else 20))}
        assert covered == set(range(20)), stride


def test_a_track_shorter_than_the_window_is_padded_not_dropped(tmp_path: Path) -> None:
    e = write_export(tmp_path / "short", videos=3, frames=4, shard_size=8, row_group_size=4)
    w = _windows(list(WindowStream(e.root, length=T, batch_size=2, shuffle=False)))
    assert w.tolist() == [[0, 1, 2, 3, -1, -1], [4, 5, 6, 7, -1, -1], [8, 9, 10, 11, -1, -1]]


def test_a_long_hole_in_a_track_splits_it(tmp_path: Path) -> None:
    e = write_export(tmp_path / "gap", videos=1, frames=12, shard_size=12, row_group_size=12)
    path = e.root / "data" / "shard-00000.parquet"
    table = pq.read_table(path)
    frames = table["frame"].to_numpy().copy()
    frames[6:] += 100  # frames 0..5, then 106..111: a hole of 100
    pq.write_table(table.set_column(table.schema.get_field_index("frame"), "frame", pa.array(frames, pa.int32())),
                   path, row_group_size=12)
    info = json.loads((e.root / "meta" / "info.json").read_text())
    info["shards"][0].update(bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    (e.root / "meta" / "info.json").write_text(json.dumps(info))
    ds = WindowStream(e.root, length=4, batch_size=8, shuffle=False)
    assert ds.bounds.tolist() == [0, 6, 12]
    assert WindowStream(e.root, length=4, batch_size=8, shuffle=False, max_gap=100).bounds.tolist() == [0, 12]
    assert _windows(list(ds), 4).tolist() == [[0, 1, 2, 3], [4, 5, -1, -1], [6, 7, 8, 9], [10, 11, -1, -1]]


def test_two_ranks_two_workers_each_window_once_equal_counts(export: Export) -> None:
    per_rank = []
    for rank in range(2):
        ds = WindowStream(export.root, length=T, batch_size=4, seed=5, rank=rank, world_size=2, window=2)
        loader = make_loader(ds, 4, workers=2, persistent=False)
        got = _windows(list(loader))[:, 0]
        part = ds.partition(2)
        expected = interleave([ds.epoch_order().rows(*part.span(rank, w)) for w in range(2)], 4)
        assert np.array_equal(got, expected)  # the documented order of the frame reader, in windows
        per_rank.append(got)
    # 42 windows over 2 ranks x 2 workers: 11 a worker, 44 in all, the last 2 repeat the first
    assert len(per_rank[0]) == len(per_rank[1]) == 22
    flat = np.concatenate(per_rank)
    assert sorted(set(flat.tolist())) == sorted(ds.anchors.tolist())
    order = ds.epoch_order().rows()
    assert np.array_equal(np.sort(flat), np.sort(np.concatenate([order, order[:2]])))


def test_order_is_f_of_seed_and_epoch_and_not_of_the_workers(export: Export) -> None:
    def windows(workers: int, epoch: int = 0, seed: int = 2) -> np.ndarray:
        ds = WindowStream(export.root, length=T, batch_size=3, seed=seed)
        ds.set_epoch(epoch)
        loader = make_loader(ds, 3, workers=workers, persistent=False)
        part = ds.partition(workers)
        got = _windows(list(loader))[:, 0]
        # whatever the cut, the pieces are spans of one sequence G of windows
        spans = [ds.epoch_order().rows(*part.span(0, w)) for w in range(max(1, workers))]
        assert np.array_equal(got, interleave(spans, 3))
        return ds.epoch_order().rows()

    g = windows(0)
    assert np.array_equal(g, windows(1)) and np.array_equal(g, windows(2))
    assert not np.array_equal(g, windows(0, epoch=1)) and sorted(g) == sorted(windows(0, epoch=1))
    assert not np.array_equal(g, windows(0, seed=3))


@pytest.mark.parametrize("workers", [0, 2])
def test_exact_resume_mid_epoch(export: Export, workers: int) -> None:
    aug = Augment(hflip=0.5, scale=(0.7, 1.0), brightness=0.2, contrast=0.2)

    def loader() -> Any:
        return make_loader(WindowStream(export.root, length=T, batch_size=4, seed=3, augment=aug, window=2), 4,
                           workers=workers)

    full = list(loader())
    first = loader()
    head = list(islice(iter(first), 3))  # an odd count: with 2 workers the restart begins with worker 1
    state = first.state_dict()
    assert state["samples"] == 12 and state["length"] == T  # counted in windows
    second = loader()
    second.load_state_dict(state)
    tail = list(second)
    assert len(head) + len(tail) == len(full)
    for x, y in zip(full, head + tail):
        assert torch.equal(x["row"], y["row"]) and torch.equal(x["image"], y["image"])
    assert second.state_dict()["samples"] == second.dataset.samples_per_rank(workers)


def test_resume_refuses_another_window(export: Export) -> None:
    ds = WindowStream(export.root, length=T, batch_size=4)
    state = ds.state_dict()
    with pytest.raises(ResumeError, match="window length 6"):
        WindowStream(export.root, length=T + 1, batch_size=4).load_state_dict(state)
    with pytest.raises(ResumeError, match="window stride 6"):
        WindowStream(export.root, length=T, stride=3, batch_size=4).load_state_dict(state)


def test_balanced_windows_raise_the_share_of_rare_tasks(export: Export) -> None:
    plain = WindowStream(export.root, length=4, batch_size=8, seed=1)
    balanced = WindowStream(export.root, length=4, batch_size=8, seed=1, balance={"va": 0, "au": 0, "expr": 1})
    has_expr = balanced._window_has["expr"]
    share = lambda ds: np.isin(ds.epoch_order().rows(), ds.anchors[has_expr]).mean()  # noqa: E731
    assert share(balanced) == 1.0 and share(plain) < 0.9
    assert balanced.epoch_order().size == plain.epoch_order().size == plain.windows


def test_keep_first_scores_each_real_frame_once() -> None:
    seen: set[int] = set()
    assert keep_first(np.array([0, 1, 2, 3, 2, 3, 4, -1]), seen) == [0, 1, 2, 3, 6]
    assert keep_first(np.array([4, 5, -1]), seen) == [1]


def test_arguments_are_validated(export: Export) -> None:
    with pytest.raises(ConfigError, match="stride must be"):
        WindowStream(export.root, length=4, stride=5, batch_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        WindowStream(export.root, length=4, batch_size=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="length"):
        WindowStream(export.root, length=0, batch_size=2)
