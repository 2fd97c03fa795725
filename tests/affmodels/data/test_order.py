from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affmodels.data.balance import balanced_counts
from affmodels.data.order import EpochOrder, block_layout, interleave, partition


def _order(seed: int = 0, epoch: int = 0, rows: int = 1000, rg: int = 50, **kw) -> EpochOrder:
    return EpochOrder(block_layout([300, 300, 300, 100], rg) if rows == 1000 else
                      block_layout([rows], rg), seed=seed, epoch=epoch, **kw)


def test_block_layout_follows_shards_and_row_groups() -> None:
    b = block_layout([64, 64, 48], 16)
    assert len(b) == 4 + 4 + 3 and b.rows == 176
    assert list(b.length[-3:]) == [16, 16, 16] and b.start[4] == 64 and b.group[4] == 0
    b = block_layout([50], 16)
    assert list(b.length) == [16, 16, 16, 2]


def test_every_row_once_across_ranks_and_workers_padding_only_in_the_tail() -> None:
    order = _order(rows=1001, rg=50)  # 1001 rows do not split evenly over 2 x 2
    part = partition(order.size, world=2, workers=2, batch=32)
    spans = [part.span(r, w) for r in range(2) for w in range(2)]
    chunks = [order.rows(a, b) for a, b in spans]
    per_rank = [sum(len(c) for c in chunks[2 * r:2 * r + 2]) for r in range(2)]
    assert per_rank[0] == per_rank[1] == part.per_rank
    assert len({len(c) for c in chunks}) == 1  # every worker the same count
    flat = np.concatenate(chunks)
    assert set(flat.tolist()) == set(range(1001))
    assert len(flat) - 1001 == part.padding == 3
    assert np.array_equal(flat[:1001], order.rows())  # G itself: each row exactly once
    assert np.array_equal(flat[1001:], order.rows()[:3])  # the pad repeats G's start, at the tail


def test_drop_last_cuts_the_tail_to_whole_batches() -> None:
    part = partition(1001, world=2, workers=2, batch=32, drop_last=True)
    assert part.per_worker == 224 and part.per_worker % 32 == 0 and part.padding == 0
    with pytest.raises(ValueError, match="do not fill one batch"):
        partition(100, world=2, workers=2, batch=32, drop_last=True)


def test_order_is_a_pure_function_of_seed_and_epoch() -> None:
    a = _order(seed=3, epoch=1).rows()
    assert np.array_equal(a, _order(seed=3, epoch=1).rows())
    assert np.array_equal(np.sort(a), np.arange(1000))
    assert not np.array_equal(a, _order(seed=3, epoch=2).rows())
    assert not np.array_equal(a, _order(seed=4, epoch=1).rows())
    assert np.array_equal(_order(shuffle=False).rows(), np.arange(1000))


def test_subjects_are_mixed_but_reads_stay_within_a_window() -> None:
    # 20 "videos" of 50 contiguous rows each (one row group each); one-at-a-time order would
    # change video 19 times in 1000 samples
    order = _order(rows=1000, rg=50, window=4)
    video = order.rows() // 50
    changes = int((video[1:] != video[:-1]).sum())
    assert changes > 600  # with 4 videos per window, ~3/4 of neighbours differ
    for _, rows in order.segments(0, order.size):
        assert len(np.unique(rows // 50)) <= 4  # a reader holds at most `window` row groups


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_resume_continues_the_round_robin_exactly(workers: int) -> None:
    part = partition(1000 * workers, world=1, workers=workers, batch=64)  # 1000 a worker: 15 x 64 + 40
    chunks = [np.arange(w * 1000, (w + 1) * 1000) for w in range(workers)]
    seen = interleave(chunks, 64)
    assert len(seen) == 1000 * workers
    boundaries = np.concatenate([[0], np.cumsum([len(c[j * 64:(j + 1) * 64]) for j in range(16) for c in chunks])])
    for consumed in boundaries:
        skip, shift = part.resume(int(consumed))
        # a restarted loader: worker w takes span (w + shift) % workers, after its skip
        roles = [(w + shift) % workers for w in range(workers)]
        rest = interleave([chunks[r][skip[r]:] for r in roles], 64)
        assert np.array_equal(rest, seen[consumed:]), consumed
    with pytest.raises(ValueError, match="whole number of batches"):
        part.resume(70)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 400), rg=st.integers(1, 64), world=st.integers(1, 4),
       workers=st.integers(1, 3), seed=st.integers(0, 2**31), window=st.integers(1, 5))
def test_partition_covers_every_row(rows: int, rg: int, world: int, workers: int, seed: int, window: int) -> None:
    order = EpochOrder(block_layout([rows], rg), seed=seed, epoch=0, window=window)
    part = partition(order.size, world=world, workers=workers, batch=8)
    flat = np.concatenate([order.rows(*part.span(r, w)) for r in range(world) for w in range(workers)])
    assert np.array_equal(np.sort(flat[:rows]), np.arange(rows))
    assert len(flat) - rows == part.padding < world * workers


def test_balanced_counts_are_deterministic_and_follow_the_weights() -> None:
    g = np.random.default_rng(0)
    has = {"va": np.ones(10_000, bool), "au": g.random(10_000) < 0.05, "expr": g.random(10_000) < 0.02}
    c1 = balanced_counts(has, {"va": 1, "au": 1, "expr": 1}, seed=0, epoch=0)
    assert np.array_equal(c1, balanced_counts(has, {"va": 1, "au": 1, "expr": 1}, seed=0, epoch=0))
    assert not np.array_equal(c1, balanced_counts(has, {"va": 1, "au": 1, "expr": 1}, seed=0, epoch=1))
    assert c1.sum() == 10_000
    share = {t: c1[m].sum() / c1.sum() for t, m in has.items()}
    assert share["au"] > 0.3 and share["expr"] > 0.3  # from 5% and 2% to about 1/3 each
    with pytest.raises(ValueError, match="unknown task"):
        balanced_counts(has, {"valence": 1}, seed=0, epoch=0)
    with pytest.raises(ValueError, match="no row has that label"):
        balanced_counts({**has, "au": np.zeros(10_000, bool)}, {"au": 1}, seed=0, epoch=0)
