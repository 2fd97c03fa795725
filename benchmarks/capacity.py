"""Benchmark: per-core rates of the per-video stages, for the capacity estimate in docs/scale.md.

On real 640x360 clips (../shared/data/videos, Aff-Wild2-like size), in this process, one thread
where the stage allows it, each stage timed by the CPU time this process spends (so a busy
shared machine slows the wall clock, not the figure):

* **probe** (``ingest videos``, one worker): CPU seconds per 1000 frames;
* **detect** (``detect faces --stride 5``, one detector thread): per 1000 frames;
* **export** (crop + encode + write, ``--workers 1``, 112 px JPEG, a centred box on every frame):
  per 1000 rows;
* **train step** (the cnn model at 112 px, batch 64, forward + backward on this CPU, one
  thread): per 1000 samples; a GPU's rate is not measured here (see docs/scale.md).

Prints one JSON object: frames per CPU-second for each stage (medians of --repeat).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "videos"
CLIPS = ("pyfeat__single_face.mp4", "wtomin_mtl__utterance_1.mp4", "pyfeat__WolfgangLanger_Pexels.mp4")


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from benchmarks.export import real_store
    from affdata.db import Store
    from affdata.export import export_part
    from affdata.faces import DetectOptions, detect_faces
    from affdata.videos import ingest_videos

    clips = [DATA / c for c in CLIPS if (DATA / c).is_file()]
    out: dict[str, list[float]] = {"probe": [], "detect_stride5": [], "export": [], "train_step_cpu": []}
    with tempfile.TemporaryDirectory(prefix="affdata-capacity-") as tmp:
        root = Path(tmp)
        for r in range(args.repeat):
            store = Store(str(root / f"probe{r}.db"))
            report = None

            def probe() -> None:
                nonlocal report
                report = ingest_videos(store, clips)
            cpu = _cpu(probe)
            frames = sum(o.frames or 0 for o in report.outcomes)
            out["probe"].append(frames / cpu)
            options = DetectOptions(stride=5)
            cpu = _cpu(lambda: detect_faces(store, all_videos=True, options=options))
            out["detect_stride5"].append(frames / cpu)
        store = real_store(root / "real")  # labels and a centred box on every frame
        for r in range(args.repeat):
            result = {}
            cpu = _cpu(lambda: result.update(r=export_part(store, split="official", part="train",
                                                           out=root / f"x{r}", size=112)))
            out["export"].append(result["r"].rows / cpu)
        from affmodels.model import ModelConfig, MultiTaskNet

        model = MultiTaskNet(ModelConfig(trunk="cnn", image_size=112))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        x = torch.rand(64, 3, 112, 112)
        for r in range(args.repeat + 1):
            def step() -> None:
                out_ = model(x)
                loss = sum(t.float().mean() for t in out_)
                opt.zero_grad()
                loss.backward()
                opt.step()
            cpu = _cpu(lambda: [step() for _ in range(3)])
            if r:  # the first is a warm-up
                out["train_step_cpu"].append(3 * 64 / cpu)
    print(json.dumps({"benchmark": "capacity", "unit": "frames (samples) per CPU-second, one core",
                      "clips": [c.name for c in clips],
                      **{k: round(statistics.median(v), 1) for k, v in out.items()}}, indent=1))


if __name__ == "__main__":
    main()
