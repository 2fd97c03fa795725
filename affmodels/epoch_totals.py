"""The running sums behind an epoch's training record, carried through a resume.

A run stopped mid-epoch (kill -9 after a ``checkpoint_every`` save, or ``max_steps``) and
resumed must write the same ``metrics.jsonl`` record as a run that was never stopped. So the
loss sums, the batch and sample counts and the seconds already spent in the epoch travel in
each mid-epoch checkpoint (key ``epoch_totals``) and are restored with the weights; the sums
are added to in the same order, so the resumed epoch's means are the same floats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpochTotals:
    sums: dict[str, float] = field(default_factory=dict)
    batches: int = 0
    samples: int = 0
    #: seconds spent in this epoch by earlier processes (before the resume)
    seconds_before: float = 0.0
    started: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, losses: dict[str, Any], samples: int) -> None:
        """One batch: its losses (tensors or floats) and its number of samples."""
        self.batches += 1
        self.samples += samples
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)

    def means(self) -> dict[str, float]:
        return {key: v / max(self.batches, 1) for key, v in self.sums.items()}

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "batches": self.batches, "samples": self.samples,
                "seconds": self.seconds()}

    @classmethod
    def resumed(cls, state: dict[str, Any], epoch: int) -> EpochTotals:
        """The totals of the epoch a checkpoint stopped in, or fresh ones (a checkpoint taken at an
        epoch's end, or one written before checkpoints carried totals)."""
        carried = state.get("epoch_totals")
        if not carried or state.get("epoch") != epoch:
            return cls()
        return cls(dict(carried["sums"]), int(carried["batches"]), int(carried["samples"]),
                   float(carried["seconds"]))
