"""Task-balanced sampling: a deterministic per-epoch resampling of rows, with replacement.

AU and expression labels cover far fewer frames than VA. ``balance={"va": 1, "au": 1,
"expr": 1}`` makes each of the epoch's draws (as many as the export has rows, unless told
otherwise) pick a task with probability ``w_t / sum(w)``, then a row uniformly among the rows
that carry that task's label. So rows labelled for a task make up at least ``w_t / sum(w)`` of
the draws (more where labels overlap), whatever the raw counts. The draws become per-row
multiplicities, which the order module shuffles as usual: reading stays block by block.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from affmodels.data.order import rng
from affmodels.errors import ConfigError

TASKS = ("va", "au", "expr")


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(TASKS))
    if unknown:
        raise ConfigError(f"balance: unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    out = {t: float(weights.get(t, 0.0)) for t in TASKS}
    bad = [t for t, w in out.items() if not (np.isfinite(w) and w >= 0)]
    if bad:
        raise ConfigError(f"balance: weights must be finite and >= 0, got {', '.join(f'{t}={out[t]}' for t in bad)}")
    if sum(out.values()) <= 0:
        raise ConfigError("balance: at least one weight must be > 0")
    return out


def balanced_counts(has: Mapping[str, np.ndarray], weights: Mapping[str, float], *, seed: int,
                    epoch: int, draws: int | None = None) -> np.ndarray:
    """(rows,) int64 multiplicities of one epoch's draws; a pure function of its arguments.

    ``has[t]`` is the (rows,) bool mask of rows labelled for task ``t``. A task with a
    positive weight and no labelled row is an error (its share could not be honoured).
    """
    w = check_weights(weights)
    n = len(next(iter(has.values())))
    draws = n if draws is None else draws
    if draws < 0:
        raise ValueError(f"balance: draws must be >= 0, got {draws}")
    empty = [t for t in TASKS if w[t] > 0 and not has[t].any()]
    if empty:
        raise ConfigError(f"balance: weight > 0 for {', '.join(empty)} but no row has that label; "
                         "set its weight to 0")
    g = rng(seed, epoch, 2)
    p = np.array([w[t] for t in TASKS]) / sum(w.values())
    per_task = g.multinomial(draws, p)
    counts = np.zeros(n, dtype=np.int64)
    for t, k in zip(TASKS, per_task):
        if k:
            labelled = np.flatnonzero(has[t])
            counts += np.bincount(labelled[g.integers(0, len(labelled), k)], minlength=n)
    return counts


__all__ = ["TASKS", "balanced_counts", "check_weights"]
