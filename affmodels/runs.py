"""A training run's folder: what may be written there, its ``metrics.jsonl`` records, and the
batches of an epoch that resumes exactly. Shared by the multi-task and the GAN loops, which keep
only their step logic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affmodels.checkpoint import set_rng_state
from affmodels.errors import RunFolderError


def epoch_batches(loader: Any, rng: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The loader's batches; a resumed run's RNG state is restored only once the loader has
    started, because starting a DataLoader draws a seed from the global RNG."""
    batches = iter(loader)
    first = next(batches, None)
    if rng is not None:
        set_rng_state(rng)
    if first is not None:
        yield first
        yield from batches


def check_run_folder(out: Path, resume: bool) -> None:
    """A new run needs a folder without a run in it; a resumed one needs its last.pt."""
    if resume and not (out / "last.pt").is_file():
        raise RunFolderError(f"{out / 'last.pt'}: nothing to resume")
    if not resume and (out / "last.pt").exists():
        raise RunFolderError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One line of ``metrics.jsonl``: strict JSON (NaN and infinities as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(_strict(record), default=float, allow_nan=False) + "\n")


def _strict(obj: Any) -> Any:
    """NaN and infinities as null (an undefined metric): strict JSON parsers refuse bare NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


__all__ = ["append_record", "check_run_folder", "epoch_batches"]
