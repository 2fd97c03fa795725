"""Parse-speed measurement for the ABAW per-task readers (not a test; run it by hand).

    .venv/bin/python tests/affdata/formats/bench_parse.py

Writes one VA, one AU (8 AUs) and one EXPR file of 3,000 and of 1,000 frames, parses each many
times, and extrapolates to a 1,000,000-frame dataset (VA + AU + EXPR) in 1,000-frame files.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from affdata.formats import read_abaw_task_file, write_abaw_task_file  # noqa: E402


def make(folder: Path, n: int) -> dict[str, Path]:
    rnd = random.Random(0)
    va = ["valence,arousal"] + [
        "-5,-5" if rnd.random() < 0.05 else f"{round(rnd.uniform(-1, 1), 3)!r},{round(rnd.uniform(-1, 1), 3)!r}"
        for _ in range(n)
    ]
    au = ["AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25"] + [
        ",".join(["-1"] * 8) if rnd.random() < 0.05 else ",".join(rnd.choice("01") for _ in range(8)) for _ in range(n)
    ]
    ex = ["Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"] + [str(rnd.randint(-1, 7)) for _ in range(n)]
    out = {}
    for task, lines in (("va", va), ("au", au), ("expr", ex)):
        out[task] = folder / f"{task}_{n}.txt"
        out[task].write_text("\n".join(lines) + "\n")
    return out


def best_of(fn, repeat: int = 7, number: int = 50) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (3000, 1000):
            files = make(folder, n)
            total = 0.0
            for task, path in files.items():
                t = best_of(lambda: read_abaw_task_file(path, task))
                total += t
                print(f"{task:4s} {n} lines: {t * 1e3:6.2f} ms/file  {n / t / 1e6:5.2f} M rows/s")
            print(f"  VA+AU+EXPR for 1,000,000 frames in {n}-frame files: {total * 1e6 / n:5.2f} s "
                  f"({3e6 / (total * 1e6 / n) / 1e6:.2f} M label rows/s)")  # fmt: skip
        table = read_abaw_task_file(files["va"], "va")
        w = best_of(lambda: write_abaw_task_file(folder / "w.txt", table, "va", n_frames=1000), number=20)
        print(f"write va 1000 frames: {w * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
