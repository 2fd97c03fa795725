"""Worker processes for decoding work (ingest probes, export crops): how they start and end.

Workers start from a fork server where the platform has one (cheaper than a fresh interpreter
each, and sharing nothing with the parent's database connections) and are replaced every
:data:`RECYCLE_EVERY` videos each, because decord's readers have been seen to leak memory over
many videos. Replacement is done by closing the pool and opening a new one, not with
``ProcessPoolExecutor(max_tasks_per_child=...)``: on Python 3.11 that option can leave the
executor waiting for a worker that is never started (seen here: ingest of 29 clips with two
workers hung in ``as_completed``).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext

RECYCLE_EVERY = 25


def worker_context() -> BaseContext:
    return get_context("forkserver" if "forkserver" in get_all_start_methods() else "spawn")


def recycled_pool(workers: int, ctx: BaseContext | None = None) -> ProcessPoolExecutor:
    """A pool to give at most ``workers * RECYCLE_EVERY`` videos before opening a new one."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx or worker_context())
