"""Worker processes for decoding work (ingest probes, export crops): how they start and end.

Workers start from a fork server where the platform has one (cheaper than a fresh interpreter
each, and sharing nothing with the parent's database connections) and are replaced every
:data:`RECYCLE_EVERY` videos each, because decord's readers have been seen to leak memory over
many videos. Replacement is done by closing the pool and opening a new one, not with
``ProcessPoolExecutor(max_tasks_per_child=...)``: on Python 3.11 that option can leave the
executor waiting for a worker that is never started (seen here: ingest of 29 clips with two
workers hung in ``as_completed``).

A worker that dies (killed, out of memory, a segfault in a decoder) breaks its whole pool: every
task in flight then fails with ``BrokenProcessPool``, not only the one that killed it.
:func:`map_in_workers` keeps that to the one task: it has at most ``2 * workers`` tasks in flight,
and after a break it runs each of them again alone, in a pool of its own, so the task that
breaks its own pool is the culprit and the others get their results; then a new pool takes the
remaining tasks.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from affdata.errors import AffdataError


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_process(processes: int) -> int:
    """Threads each of ``processes`` local workers should use so that together they do not
    start more threads than there are cores (torch and decoders default to one per core)."""
    return max(1, usable_cpus() // max(1, processes))

RECYCLE_EVERY = 25

T = TypeVar("T")


def worker_context() -> BaseContext:
    return get_context("forkserver" if "forkserver" in get_all_start_methods() else "spawn")


def recycled_pool(workers: int, ctx: BaseContext | None = None) -> ProcessPoolExecutor:
    """A pool to give at most ``workers * RECYCLE_EVERY`` videos before opening a new one."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx or worker_context())


class WorkerDiedError(AffdataError):
    """The worker process running a task died (killed, out of memory, a crash in native code)."""


WORKER_DIED = ("the worker process died while working on it (killed, out of memory, or a crash "
               "in the decoder)")


def map_in_workers(fn: Callable[[T], Any], items: Iterable[T], workers: int, *,
                   recycle_every: int = RECYCLE_EVERY,
                   ctx: BaseContext | None = None) -> Iterator[tuple[T, Any, BaseException | None]]:
    """``fn(item)`` for each item in worker processes: yields ``(item, result, None)`` or
    ``(item, None, error)`` as each finishes (not in input order).

    An exception raised by ``fn`` is that item's error; a worker that dies fails only the item it
    was running, with :class:`WorkerDiedError` (see the module docstring). Each pool is given at
    most ``workers * recycle_every`` items, then replaced.
    """
    ctx = ctx or worker_context()
    todo = deque(items)
    while todo:
        suspects: list[T] = []
        budget = workers * recycle_every
        with recycled_pool(workers, ctx) as pool:
            running: dict[Future, T] = {}
            while todo or running:
                broken = False
                while todo and budget and len(running) < 2 * workers:
                    try:
                        fut = pool.submit(fn, todo[0])
                    except BrokenProcessPool:  # broke since the last wait: the item never ran
                        broken = True
                        if not running:  # broke with nothing in flight: never loop on it
                            suspects.append(todo.popleft())
                        break
                    running[fut] = todo.popleft()
                    budget -= 1
                if not running:
                    break  # this pool's budget is spent: a fresh one takes the rest
                done, _ = wait(running, return_when=FIRST_COMPLETED) if not broken else (set(), set())
                for fut in done:
                    item = running.pop(fut)
                    error = fut.exception()
                    if isinstance(error, BrokenProcessPool):
                        suspects.append(item)
                        broken = True
                    else:
                        yield item, None if error else fut.result(), error
                if broken:  # every task still in flight fails the same way: all are suspects
                    for fut, item in running.items():
                        if fut.done() and not isinstance(fut.exception(), BrokenProcessPool):
                            error = fut.exception()
                            yield item, None if error else fut.result(), error
                        else:
                            suspects.append(item)
                    break
        for item in suspects:
            yield _alone(fn, item, ctx)


def _alone(fn: Callable[[T], Any], item: T, ctx: BaseContext) -> tuple[T, Any, BaseException | None]:
    """Run one task in a pool of its own: if that pool breaks, this task broke it."""
    with recycled_pool(1, ctx) as pool:
        fut = pool.submit(fn, item)
        try:
            return item, fut.result(), None
        except BrokenProcessPool:
            return item, None, WorkerDiedError(WORKER_DIED)
        except Exception as exc:  # noqa: BLE001 - the task's own error is its result
            return item, None, exc
