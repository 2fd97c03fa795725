"""Benchmark: training samples/s of the multi-task network (and the GAN), on the CPU and, where
one is lent, on a GPU.

Measures whole optimisation steps (forward, masked losses, backward, AdamW step) on uint8
batches of the batch contract, after warm-up, median of ``--repeat`` timed windows, for each
trunk and image size asked for. Baseline in the same run: the forward pass alone, so the ratio
says what the backward and the optimiser cost. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affmodels.losses import multitask_loss  # noqa: E402
from affmodels.model import ModelConfig, MultiTaskNet  # noqa: E402
from affmodels.step import float32  # noqa: E402


def batch(b: int, size: int, k: int, c: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {
        "image": torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g),
        "va": torch.rand(b, 2, generator=g) * 2 - 1, "va_mask": torch.rand(b, generator=g) < 0.9,
        "au": (torch.rand(b, k, generator=g) < 0.3).float(), "au_mask": torch.rand(b, k, generator=g) < 0.3,
        "expr": torch.randint(0, c, (b,), generator=g), "expr_mask": torch.rand(b, generator=g) < 0.3,
    }
    return {key: v.to(device) for key, v in out.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(trunk: str, size: int, b: int, device: torch.device, steps: int, repeat: int, amp: bool) -> dict:
    k, c = 8, 7
    model = MultiTaskNet(ModelConfig(trunk=trunk, n_aus=k, n_classes=c, image_size=size)).to(device)
    # what affmodels train does on this device (affmodels.step): fused AdamW on CUDA
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True if device.type == "cuda" else None)
    data = batch(b, size, k, c, device)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if amp else torch.autocast(device.type, enabled=False)

    def step() -> None:
        with ctx:
            pred = model(data["image"])
        loss, _ = multitask_loss(float32(pred), data)  # as in training: losses in float32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def forward() -> None:
        with torch.no_grad(), ctx:
            model(data["image"])

    result = {"trunk": trunk, "size": size, "batch": b, "device": str(device), "bf16": amp,
              "fused_adamw": device.type == "cuda"}
    for name, fn in (("train", step), ("forward_only", forward)):
        for _ in range(2):
            fn()
        rates = []
        for _ in range(repeat):
            sync(device)
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            sync(device)
            rates.append(steps * b / (time.perf_counter() - t))
        result[f"{name}_samples_per_s"] = round(statistics.median(rates), 1)
    result["ratio_train_to_forward"] = round(result["train_samples_per_s"] / result["forward_only_samples_per_s"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trunks", default="cnn")
    parser.add_argument("--sizes", default="64,112")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    runs = []
    for trunk in args.trunks.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            runs.append(measure(trunk, size, args.batch, device, args.steps, args.repeat, amp=False))
            if device.type == "cuda":
                runs.append(measure(trunk, size, args.batch, device, args.steps, args.repeat, amp=True))
    print(json.dumps({"benchmark": "train_step", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
