"""Where per-video work runs: this process, a local process pool, or a Dask cluster.

One :class:`Executor`, two backends, chosen by ``--cluster ADDRESS`` (or ``$AFFDATA_CLUSTER``):

- ``local`` (the default): today's process pool (:mod:`affdata.workers`), ``--workers N``.
- ``local:N``: a Dask ``LocalCluster`` of N worker processes on this host (one thread each).
- ``tcp://HOST:8786`` (any Dask scheduler address): a running Dask scheduler and its workers.

The contract is the same on both: work is shipped per item (one video), the result comes back
to the client, and **only the client writes to the store or the export**, in its usual
transactions. Workers touch no database; they only read video files by path. So a worker that
dies mid-task (Dask reruns the task elsewhere) or a task that runs twice can never duplicate or
half-write anything: a task's result is used once, by the client, or not at all.

Shared files: workers must see the video files. When they see them under another mount point,
``--path-map OLD=NEW`` (or ``$AFFDATA_PATH_MAP="OLD=NEW;OLD2=NEW2"``) rewrites a path the client
knows (``OLD/...``) into the one workers open (``NEW/...``); the store keeps the client's paths.

Importing this module imports no Dask: the Dask backend imports it when it starts.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from affdata.errors import ClusterError, ConfigError
from affdata.workers import RECYCLE_EVERY, WORKER_DIED, WorkerDiedError, map_in_workers

log = logging.getLogger(__name__)

CLUSTER_ENV = "AFFDATA_CLUSTER"
PATH_MAP_ENV = "AFFDATA_PATH_MAP"
#: how long to wait for a scheduler to answer
CONNECT_TIMEOUT = "20s"

T = TypeVar("T")
Outcome = tuple[Any, Any, BaseException | None]


@dataclass(frozen=True)
class PathMap:
    """Client path prefixes and the prefixes workers see the same files under."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, specs: Sequence[str] | None = None) -> PathMap:
        """``OLD=NEW`` entries; none given: ``$AFFDATA_PATH_MAP`` (``;``-separated)."""
        if not specs:
            specs = [s for s in os.environ.get(PATH_MAP_ENV, "").split(";") if s.strip()]
        pairs = []
        for spec in specs:
            old, sep, new = spec.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise ConfigError(f"--path-map {spec!r}: expected OLD=NEW (two folder prefixes)")
            pairs.append((old.strip().rstrip("/") or "/", new.strip().rstrip("/") or "/"))
        # the longest prefix wins where several match
        return cls(tuple(sorted(pairs, key=lambda p: -len(p[0]))))

    def to_worker(self, path: str | os.PathLike[str]) -> str:
        return _swap(str(path), self.pairs)

    def to_client(self, path: str | os.PathLike[str]) -> str:
        return _swap(str(path), tuple(sorted(((n, o) for o, n in self.pairs), key=lambda p: -len(p[0]))))


def _swap(path: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        stem = old.rstrip("/")
        if path == old or path.startswith(stem + "/"):
            return new.rstrip("/") + path[len(stem):]
    return path


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed ``--cluster``: ``kind`` is ``local`` (process pool), ``dask-local`` or ``dask``."""

    kind: str
    workers: int
    address: str | None = None

    @classmethod
    def parse(cls, text: str | None, workers: int = 1) -> ClusterSpec:
        text = (text or os.environ.get(CLUSTER_ENV) or "local").strip()
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        if text == "local":
            return cls("local", workers)
        if text.startswith("local:"):
            n = text.split(":", 1)[1]
            if not n.isdigit() or int(n) < 1:
                raise ConfigError(f"--cluster {text!r}: local:N needs a worker count N >= 1")
            return cls("dask-local", int(n))
        if "://" in text:
            return cls("dask", 0, text)
        raise ConfigError(f"--cluster {text!r}: use local, local:N or a scheduler address "
                          "such as tcp://host:8786")


class Executor:
    """Runs ``fn(item)`` for many items: :meth:`map`, each item's failure its own."""

    #: results travel by value (True for Dask: workers may be on other hosts)
    remote = False

    def __init__(self, path_map: PathMap | None = None) -> None:
        self.path_map = path_map or PathMap()

    @property
    def slots(self) -> int:
        raise NotImplementedError

    def map(self, fn: Callable[[T], Any], items: Iterable[T]) -> Iterator[Outcome]:
        """Yields ``(item, result, None)`` or ``(item, None, error)`` as each finishes (any
        order). An exception raised by ``fn`` is that item's error; a worker that dies fails at
        most the item it ran (:class:`WorkerDiedError`), never the others."""
        raise NotImplementedError

    def with_path_map(self, path_map: PathMap) -> Executor:
        """The same workers with another path map (close only the original)."""
        other = copy.copy(self)
        other.path_map = path_map
        return other

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PoolExecutor(Executor):
    """Today's local backend: this process (one worker) or a recycled process pool."""

    def __init__(self, workers: int = 1, path_map: PathMap | None = None,
                 recycle_every: int = RECYCLE_EVERY) -> None:
        super().__init__(path_map)
        self.workers, self.recycle_every = workers, recycle_every

    @property
    def slots(self) -> int:
        return self.workers

    def map(self, fn: Callable[[T], Any], items: Iterable[T]) -> Iterator[Outcome]:
        if self.workers <= 1:
            for item in items:
                try:
                    yield item, fn(item), None
                except Exception as exc:  # noqa: BLE001 - the item's own failure
                    yield item, None, exc
            return
        yield from map_in_workers(fn, items, self.workers, recycle_every=self.recycle_every)


class DaskExecutor(Executor):
    """A Dask client: of a ``LocalCluster`` it starts (``local:N``) or of a running scheduler.

    At most ``window`` tasks are submitted ahead of the results taken, so a long list never
    piles its results up in workers' memory. Dask reruns a task whose worker died (up to
    ``distributed.scheduler.allowed-failures`` times, 3 by default); after that the item fails
    alone with :class:`WorkerDiedError`.
    """

    remote = True

    def __init__(self, spec: ClusterSpec, path_map: PathMap | None = None) -> None:
        super().__init__(path_map)
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is an optional dependency
            raise ClusterError(f"--cluster {spec.address or 'local:N'} needs dask[distributed] "
                               f"installed (pip install 'affdata[cluster]'; {exc})") from None
        _own_error_pickling()
        self.spec, self.cluster = spec, None
        try:
            if spec.kind == "dask-local":
                # a cluster of our own: its scheduler runs in this process, quietly, its
                # dashboard on a free port (never a fixed one another user may hold)
                logging.getLogger("distributed").setLevel(logging.WARNING)
                self.cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1,
                                            processes=True, dashboard_address="127.0.0.1:0",
                                            silence_logs=logging.WARNING)
                self.client = Client(self.cluster)
            else:
                self.client = Client(spec.address, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {spec.address}: {exc}") from None
        log.info("Dask client of %s, %d worker thread(s)", self.address, self.slots)

    @property
    def address(self) -> str:
        return self.spec.address or f"LocalCluster({self.spec.workers})"

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    @property
    def window(self) -> int:
        return 2 * self.slots

    def submit(self, fn: Callable[..., Any], *args: Any) -> DaskTask:
        return DaskTask(self.client.submit(fn, *args, pure=False))

    def map(self, fn: Callable[[T], Any], items: Iterable[T]) -> Iterator[Outcome]:
        from distributed import as_completed

        todo = iter(items)
        pending: dict[str, Any] = {}
        done = as_completed()

        def top_up() -> None:
            while len(pending) < self.window:
                item = next(todo, _END)
                if item is _END:
                    return
                fut = self.client.submit(guarded, fn, item, pure=False)
                pending[fut.key] = item
                done.add(fut)

        top_up()
        for fut in done:
            item = pending.pop(fut.key)
            try:
                if fut.status == "finished":
                    ok, value = fut.result()
                    yield (item, value, None) if ok else (item, None, value)
                else:
                    yield item, None, task_error(fut)
            finally:
                fut.release()
            top_up()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


_END = object()


def _own_error_pickling() -> None:
    """Importing ``distributed`` runs ``tblib.pickling_support.install()``, which replaces the
    pickling of every exception class defined so far, in the whole process; some of ours (a
    ``FileNotFoundError`` with a constructor of its own) then no longer unpickle. They pickle
    by their own means (tests/test_errors_pickle.py), so they are given those back."""
    import copyreg

    for cls in [c for c in copyreg.dispatch_table if isinstance(c, type) and issubclass(c, BaseException)
                and c.__module__.split(".")[0] in ("affdata", "affmodels")]:
        del copyreg.dispatch_table[cls]


def guarded(fn: Callable[[T], Any], item: T) -> tuple[bool, Any]:
    """Runs on a worker: ``fn(item)``'s error is returned as a value (the item's own outcome,
    not a task failure for Dask to log with a traceback on the worker)."""
    try:
        return True, fn(item)
    except Exception as exc:  # noqa: BLE001 - the item's own failure
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an error that cannot travel is described instead
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return False, exc


class DaskTask:
    """One submitted task: :meth:`result` raises the task's own error (a dead worker's as
    :class:`WorkerDiedError`)."""

    def __init__(self, future: Any) -> None:
        self.future = future

    def result(self) -> Any:
        try:
            return self.future.result()
        except Exception as exc:  # noqa: BLE001 - translated, then re-raised
            raise _translate(exc) from None

    def cancel(self) -> None:
        self.future.cancel()


def task_error(future: Any) -> BaseException:
    """The error a finished Dask future failed with, in library terms."""
    try:
        exc = future.exception()
    except BaseException as cancelled:  # noqa: BLE001 - cancelled: the cluster lost the task
        exc = cancelled
    return _translate(exc)


def _translate(exc: BaseException) -> BaseException:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return WorkerDiedError(f"{WORKER_DIED}; Dask gave up after the worker running it died "
                               "several times")
    if type(exc).__name__ in ("CancelledError", "FutureCancelledError"):
        return ClusterError(f"the Dask cluster lost the task ({exc})")
    return exc


def open_executor(cluster: str | None = None, workers: int = 1,
                  path_map: Sequence[str] | PathMap | None = None) -> Executor:
    """The executor ``--cluster``/``--workers``/``--path-map`` ask for (close it when done)."""
    spec = ClusterSpec.parse(cluster, workers)
    pm = path_map if isinstance(path_map, PathMap) else PathMap.parse(path_map)
    if spec.kind == "local":
        return PoolExecutor(spec.workers, pm)
    return DaskExecutor(spec, pm)
