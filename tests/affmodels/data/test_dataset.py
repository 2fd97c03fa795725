from __future__ import annotations

import os
import subprocess
import sys
from itertools import islice
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from affmodels.data import (
    AffectStream,
    Augment,
    ResumeError,
    collate_samples,
    make_loader,
)
from affmodels.data.order import interleave
from tests.affmodels.data.exports import Export


def _rows(batches: list[dict[str, Any]]) -> np.ndarray:
    return np.concatenate([b["row"].numpy() for b in batches]) if batches else np.zeros(0, np.int64)


def _parquet(export: Export) -> dict[str, np.ndarray]:
    t = pq.ParquetDataset(sorted((export.root / "data").glob("*.parquet"))).read()
    au = t["au"].combine_chunks().flatten()
    return {
        "valence": t["valence"].to_numpy(zero_copy_only=False),
        "expr": t["expr"].to_pandas().to_numpy(),
        "au": np.array(au.to_pylist(), dtype=object).reshape(len(t), -1),
        "frame": t["frame"].to_numpy(),
        "video": t["video"].to_numpy(zero_copy_only=False),
    }


def _check_contract(batch: dict[str, Any], export: Export, ref: dict[str, np.ndarray], k: int = 3) -> None:
    n = len(batch["row"])
    want = {"image": ((n, 3, 16, 16), torch.uint8), "va": ((n, 2), torch.float32),
            "va_mask": ((n,), torch.bool), "au": ((n, k), torch.float32), "au_mask": ((n, k), torch.bool),
            "expr": ((n,), torch.int64), "expr_mask": ((n,), torch.bool), "frame": ((n,), torch.int64)}
    for key, (shape, dtype) in want.items():
        assert tuple(batch[key].shape) == shape and batch[key].dtype == dtype, key
    rows = batch["row"].numpy()
    assert np.array_equal(batch["image"].permute(0, 2, 3, 1).numpy(), export.pixels[rows])
    val = ref["valence"][rows]
    assert np.array_equal(batch["va_mask"].numpy(), ~np.isnan(val))
    assert np.array_equal(batch["va"][:, 0].numpy(), np.nan_to_num(val, nan=0.0))
    au = ref["au"][rows]
    assert np.array_equal(batch["au_mask"].numpy(), au != None)  # noqa: E711 (elementwise)
    assert np.array_equal(batch["au"].numpy(), np.where(au == None, 0, au).astype(np.float32))  # noqa: E711
    expr = ref["expr"][rows]
    assert np.array_equal(batch["expr_mask"].numpy(), ~np.isnan(expr))
    assert np.array_equal(batch["expr"].numpy(), np.nan_to_num(expr, nan=-1).astype(np.int64))
    assert batch["video"] == ref["video"][rows].tolist() and isinstance(batch["video"], list)
    assert np.array_equal(batch["frame"].numpy(), ref["frame"][rows])


def test_batches_follow_the_contract_and_equal_the_parquet_values(export: Export) -> None:
    ds = AffectStream(export.root, batch_size=32, seed=1)
    batches = list(ds)
    ref = _parquet(export)
    for b in batches:
        _check_contract(b, export, ref)
    assert sorted(_rows(batches)) == list(range(export.rows))
    assert batches[0]["va_mask"].any() and not batches[0]["va_mask"].all()  # masks really vary


def test_per_sample_mode_collates_to_the_same_batches(export: Export) -> None:
    samples = list(AffectStream(export.root, seed=1))
    batched = list(AffectStream(export.root, seed=1, batch_size=32))
    first = collate_samples(samples[:32])
    for key, value in batched[0].items():
        assert (value == first[key]) if isinstance(value, list) else torch.equal(value, first[key]), key


def test_raw_images(raw_export: Export) -> None:
    ds = AffectStream(raw_export.root, batch_size=8)
    b = next(iter(ds))
    assert np.array_equal(b["image"].permute(0, 2, 3, 1).numpy(), raw_export.pixels[b["row"].numpy()])


def test_two_ranks_two_workers_each_row_once_equal_counts(export: Export) -> None:
    per_rank = []
    for rank in range(2):
        ds = AffectStream(export.root, batch_size=16, seed=5, rank=rank, world_size=2, window=2)
        loader = make_loader(ds, 16, workers=2, persistent=False)
        got = _rows(list(loader))
        part = ds.partition(2)
        expected = interleave([ds.epoch_order().rows(*part.span(rank, w)) for w in range(2)], 16)
        assert np.array_equal(got, expected)  # the DataLoader's round-robin is the documented order
        assert len(loader) == 8  # 60 a worker: 3 x 16 + 12, two workers
        per_rank.append(got)
    assert len(per_rank[0]) == len(per_rank[1]) == 120  # 240 rows / 2 ranks, no padding needed
    assert sorted(np.concatenate(per_rank)) == list(range(export.rows))


def test_uneven_tail_is_padded_by_repetition(export: Export) -> None:
    # 240 rows over 7 ranks: 35 each (245), 5 repeats at the very end of the sequence
    got = [_rows(list(AffectStream(export.root, batch_size=8, rank=r, world_size=7))) for r in range(7)]
    assert {len(g) for g in got} == {35}
    flat = np.concatenate(got)
    assert sorted(set(flat.tolist())) == list(range(240))
    assert np.array_equal(flat[240:], flat[:5])


def test_subjects_are_mixed_in_the_stream(export: Export) -> None:
    videos = np.concatenate([b["video"] for b in AffectStream(export.root, batch_size=32, window=4)])
    changes = int((videos[1:] != videos[:-1]).sum())
    assert changes > 100  # export order changes video 5 times in 240 rows


def test_order_is_pure_and_changes_with_the_epoch(export: Export) -> None:
    a = AffectStream(export.root, batch_size=32, seed=2)
    b = AffectStream(export.root, batch_size=32, seed=2)
    e0 = _rows(list(a))
    assert np.array_equal(e0, _rows(list(b)))
    a.set_epoch(1)
    e1 = _rows(list(a))
    assert sorted(e1) == sorted(e0) and not np.array_equal(e0, e1)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_exact_resume_in_process(export: Export, batch_size: int | None) -> None:
    aug = Augment(hflip=0.5, scale=(0.7, 1.0), brightness=0.2, contrast=0.2)
    full = list(AffectStream(export.root, batch_size=batch_size, seed=3, augment=aug))
    ds = AffectStream(export.root, batch_size=batch_size, seed=3, augment=aug)
    head = list(islice(iter(ds), 5))
    state = ds.state_dict()
    assert state["epoch"] == 0 and state["samples"] == (5 if batch_size is None else 80)
    resumed = AffectStream(export.root, batch_size=batch_size, seed=3, augment=aug)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # the trainer's usual call keeps a pending resume of the same epoch
    tail = list(resumed)
    assert len(head) + len(tail) == len(full)
    for x, y in zip(full, head + tail):
        assert torch.equal(x["row"], y["row"]) and torch.equal(x["image"], y["image"])
    assert resumed.state_dict()["samples"] == 240  # the epoch is complete


def test_exact_resume_with_two_dataloader_workers(export: Export) -> None:
    def loader(ds: AffectStream):
        return make_loader(ds, 16, workers=2)

    aug = Augment()
    full = list(loader(AffectStream(export.root, batch_size=16, seed=4, augment=aug, window=2)))
    first = loader(AffectStream(export.root, batch_size=16, seed=4, augment=aug, window=2))
    head = list(islice(iter(first), 5))  # an odd count: the restart must begin with worker 1's batch
    state = first.state_dict()
    assert state["samples"] == 80 and state["workers"] == 2
    second = loader(AffectStream(export.root, batch_size=16, seed=4, augment=aug, window=2))
    second.load_state_dict(state)
    tail = list(second)
    assert len(head) + len(tail) == len(full) == len(second) == 16  # 120 a worker: 7 x 16 + 8
    for x, y in zip(full, head + tail):
        assert torch.equal(x["row"], y["row"]) and torch.equal(x["image"], y["image"])
    assert second.state_dict()["samples"] == 240  # the whole epoch, counted from the resume point
    # persistent workers see set_epoch: the next epoch is epoch 1's order, from its start
    second.dataset.set_epoch(1)
    assert (second.state_dict()["epoch"], second.state_dict()["samples"]) == (1, 0)
    epoch1 = _rows(list(second))
    fresh = AffectStream(export.root, batch_size=16, seed=4, window=2)
    fresh.set_epoch(1)
    assert np.array_equal(epoch1, _rows(list(loader(fresh))))
    assert not np.array_equal(epoch1, _rows(full))


def test_resume_refuses_another_worker_count_or_world(export: Export) -> None:
    ds = AffectStream(export.root, batch_size=16)
    ds.load_state_dict({"epoch": 0, "samples": 32, "workers": 2, "world_size": 1, "seed": 0, "batch_size": 16})
    with pytest.raises(ResumeError, match="2 loader worker"):
        next(iter(ds))
    with pytest.raises(ResumeError, match="world size 2"):
        ds.load_state_dict({"epoch": 0, "samples": 32, "world_size": 2})


def test_balanced_sampling_raises_the_au_and_expr_share(export: Export) -> None:
    def shares(ds: AffectStream) -> dict[str, float]:
        rows = _rows(list(ds))
        return {t: float(export.has[t][rows].mean()) for t in ("au", "expr")}

    plain = shares(AffectStream(export.root, batch_size=32))
    weights = {"va": 1, "au": 1, "expr": 1}
    a = AffectStream(export.root, batch_size=32, balance=weights)
    bal = shares(a)
    assert plain["au"] < 0.3 and plain["expr"] < 0.2
    assert bal["au"] > 0.3 and bal["expr"] > 0.3 and bal["au"] > plain["au"] + 0.1
    assert np.array_equal(_rows(list(a)), _rows(list(AffectStream(export.root, batch_size=32, balance=weights))))
    only_au = shares(AffectStream(export.root, batch_size=32, balance={"au": 1}))
    assert only_au["au"] == 1.0


def test_augmentation_is_deterministic_and_label_preserving(export: Export) -> None:
    aug = Augment(hflip=0.5, scale=(0.6, 1.0), brightness=0.2, contrast=0.2)
    a = next(iter(AffectStream(export.root, batch_size=32, augment=aug)))
    b = next(iter(AffectStream(export.root, batch_size=32, augment=aug)))
    plain = next(iter(AffectStream(export.root, batch_size=32)))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["row"], plain["row"])
    assert not torch.equal(a["image"], plain["image"])
    assert torch.equal(a["va"], plain["va"]) and torch.equal(a["au"], plain["au"])
    ds = AffectStream(export.root, batch_size=32, augment=aug)
    ds.set_epoch(1)
    ds_plain = AffectStream(export.root, batch_size=32)
    ds_plain.set_epoch(1)
    c, p1 = next(iter(ds)), next(iter(ds_plain))
    assert torch.equal(c["row"], p1["row"])
    assert not torch.equal(c["image"], a["image"][torch.argsort(a["row"])][torch.argsort(torch.argsort(c["row"]))])
    flip = next(iter(AffectStream(export.root, batch_size=32, augment=Augment(1.0, (1.0, 1.0), 0, 0))))
    assert torch.equal(flip["image"], plain["image"].flip(-1))


def test_arguments_are_validated(export: Export) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        AffectStream(export.root, batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        AffectStream(export.root, rank=2, world_size=2)
    with pytest.raises(ValueError, match="unknown task"):
        AffectStream(export.root, balance={"valence": 1})
    with pytest.raises(ValueError, match="yields batches of 32"):
        make_loader(AffectStream(export.root, batch_size=32), 16)


def test_package_never_imports_decord() -> None:
    code = "import sys, affmodels.data; assert 'decord' not in sys.modules, 'decord imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_augmentation_on_the_device_equals_the_loaders(export: Export) -> None:
    aug = Augment(hflip=0.5, scale=(0.6, 1.0), brightness=0.2, contrast=0.2)
    plain = next(iter(AffectStream(export.root, batch_size=64, seed=7)))
    in_loader = next(iter(AffectStream(export.root, batch_size=64, seed=7, augment=aug)))
    on_device = aug.apply_torch(plain["image"], 7, 0, plain["position"])
    assert torch.equal(on_device, in_loader["image"]) and not torch.equal(on_device, plain["image"])
    assert on_device.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain["position"], torch.arange(64))  # the first batch of the sequence


def _storage_inode(t: torch.Tensor) -> int:
    fd, _ = t.untyped_storage()._share_fd_cpu_()
    return os.fstat(fd).st_ino


def test_workers_reuse_image_slots_once_the_trainer_lets_go(export: Export) -> None:
    ds = AffectStream(export.root, batch_size=8, seed=2)
    loader = make_loader(ds, 8, workers=2)
    inodes, rows = set(), []
    for batch in loader:  # 30 batches, each dropped before the next is asked for
        inodes.add(_storage_inode(batch["image"]))
        rows.append(batch["row"].numpy().copy())
        assert np.array_equal(batch["image"].permute(0, 2, 3, 1).numpy(), export.pixels[batch["row"].numpy()])
    assert len(rows) == 30 and sorted(np.concatenate(rows)) == list(range(export.rows))
    assert len(inodes) <= 2 * 6  # a few slots per worker, not one buffer per batch


def test_batches_the_trainer_keeps_are_never_overwritten(export: Export) -> None:
    ds = AffectStream(export.root, batch_size=8, seed=2)
    loader = make_loader(ds, 8, workers=2)  # persistent workers: the same slots every epoch
    kept = list(loader)  # 30 batches held at once: more than the slots
    for b in kept:
        assert np.array_equal(b["image"].permute(0, 2, 3, 1).numpy(), export.pixels[b["row"].numpy()])
    views = [b["image"][:2] for b in kept]  # a view keeps its slot busy too
    rows = [b["row"].numpy() for b in kept]
    del kept, b
    for epoch in (1, 2):  # the same workers go on decoding while the views are alive
        ds.set_epoch(epoch)
        assert sum(len(b["row"]) for b in loader) == export.rows
    for v, r in zip(views, rows):
        assert np.array_equal(v.permute(0, 2, 3, 1).numpy(), export.pixels[r[:2]])


def test_images_are_read_from_the_mapped_pages_where_the_layout_allows(export: Export, plain_export: Export,
                                                                        tmp_path) -> None:
    from affmodels.data.manifest import load_manifest
    from affmodels.data.pages import _PAGE_HEADER, _struct
    from affmodels.data.reader import ShardReader
    from tests.affmodels.data.exports import AFFDATA_WRITER, write_export

    def fast(root) -> bool:
        reader = ShardReader(load_manifest(root))
        reader._file(0)
        return reader._pages[0] is not None

    v2 = write_export(tmp_path / "v2", videos=2, frames=30, writer={**AFFDATA_WRITER, "data_page_version": "2.0"})
    assert fast(plain_export.root) and not fast(export.root) and not fast(v2.root)  # snappy, v2 pages: Arrow
    # many small pages per row group, with checksums and statistics in their headers
    paged = write_export(tmp_path / "paged", videos=2, frames=30, row_group_size=20,
                         writer={**AFFDATA_WRITER, "data_page_size": 2000, "write_batch_size": 1,
                                 "write_page_checksum": True, "write_statistics": True})
    shard = paged.root / "data" / "shard-00000.parquet"
    chunk = pq.ParquetFile(shard).metadata.row_group(0).column(6)
    blob, pos, pages = memoryview(shard.read_bytes()), chunk.data_page_offset, 0
    while pos < chunk.data_page_offset + chunk.total_compressed_size:
        header, pos = _struct(blob, pos, _PAGE_HEADER)
        pos, pages = pos + header["compressed_size"], pages + 1
    assert pages > 3 and fast(paged.root)
    for b in AffectStream(paged.root, batch_size=8, seed=3):
        _check_contract(b, paged, _parquet(paged))
    ref = _parquet(plain_export)
    for ds in (AffectStream(plain_export.root, batch_size=32, seed=1), AffectStream(v2.root, batch_size=16)):
        batches = list(ds)
        e = plain_export if ds.manifest.root == plain_export.root else v2
        for b in batches:
            _check_contract(b, e, ref if e is plain_export else _parquet(e))
        assert sorted(_rows(batches)) == list(range(e.rows))
    two = list(make_loader(AffectStream(plain_export.root, batch_size=16, seed=5), 16, workers=2))
    assert sorted(_rows(two)) == list(range(plain_export.rows))
    for b in two:
        _check_contract(b, plain_export, ref)


def test_a_late_release_never_frees_a_slot_that_new_workers_reuse(export: Export) -> None:
    ds = AffectStream(export.root, batch_size=8, seed=2)
    loader = make_loader(ds, 8, workers=2, persistent=False)  # new workers (and slots) each epoch
    old = list(loader)  # epoch 0's batches, held: their slots stay taken
    ds.set_epoch(1)
    it = iter(loader)
    kept = [next(it) for _ in range(4)]  # the new workers took the same slot numbers
    del old  # released late: must not free the new workers' slots of the same numbers
    kept += list(it)
    assert len(kept) == 30
    for b in kept:
        assert np.array_equal(b["image"].permute(0, 2, 3, 1).numpy(), export.pixels[b["row"].numpy()])


def test_a_mapped_slot_crosses_once_then_only_its_lease(export: Export, monkeypatch) -> None:
    """Sending a shared tensor costs a file-descriptor transfer per batch; once the trainer has
    mapped a slot, the worker sends the lease alone (pixels still right after an abandoned epoch,
    whose prefetched batches the DataLoader drops unseen)."""
    from affmodels.data import handover

    sent = {"with": 0, "without": 0}
    receive = handover.Receiver.__call__

    def counting(self, item):
        sent["with" if "image" in item else "without"] += 1
        return receive(self, item)

    monkeypatch.setattr(handover.Receiver, "__call__", counting)
    ds = AffectStream(export.root, batch_size=8, seed=2)
    loader = make_loader(ds, 8, workers=2)  # persistent workers
    it = iter(loader)
    first = next(it)  # abandon epoch 0 after one batch: prefetched batches are dropped unseen
    assert np.array_equal(first["image"].permute(0, 2, 3, 1).numpy(), export.pixels[first["row"].numpy()])
    del it, first
    for epoch in (1, 2, 3):
        ds.set_epoch(epoch)
        rows = []
        for b in loader:  # each batch dropped before the next: its slot is reused
            assert np.array_equal(b["image"].permute(0, 2, 3, 1).numpy(), export.pixels[b["row"].numpy()])
            rows.append(b["row"].numpy().copy())
        assert sorted(np.concatenate(rows)) == list(range(export.rows))
    assert sent["with"] <= 2 * 8 and sent["without"] >= 3 * 30 - 2 * 8
