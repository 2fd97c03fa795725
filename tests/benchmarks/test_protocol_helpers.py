"""The protocol's own arithmetic: the interval over seeds, AU thinning, the trivial floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.protocol import floor_predictor, interval, thin_au_labels


def test_interval_is_the_t_interval_over_seeds() -> None:
    got = interval([0.5, 0.6, 0.7])
    half = 4.303 * 0.1 / np.sqrt(3)  # t(0.975, 2 dof) * sd / sqrt(n)
    assert got["mean"] == 0.6 and got["n"] == 3
    assert got["ci95"] == pytest.approx([0.6 - half, 0.6 + half], abs=1e-4)
    assert interval([float("nan")] * 3)["mean"] is None  # a task absent from test: no figure
    assert interval([0.4])["ci95"] is None


def test_thinning_keeps_one_contiguous_run_of_the_labelled_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    body = ["-1,-1"] * 5 + ["1,0"] * 50 + ["0,0"] * 45 + ["-1,-1"] * 10
    path.write_text("\n".join(["AU1,AU2", *body]) + "\n")
    counts = thin_au_labels([path], 0.1, seed=0)
    assert counts == {"labelled_before": 95, "labelled_after": 10}
    lines = path.read_text().splitlines()[1:]
    kept = [i for i, line in enumerate(lines) if line != "-1,-1"]
    assert len(lines) == 110 and len(kept) == 10 and kept == list(range(kept[0], kept[0] + 10))
    assert all(lines[i] == body[i] for i in kept)  # kept labels are unchanged


def test_the_floor_predicts_training_constants() -> None:
    train = {"va": np.array([[0.2, -0.4], [0.4, 0.0], [9, 9]]), "va_mask": np.array([True, True, False]),
             "au": np.zeros((3, 2)), "expr": np.array([2, 2, 1]), "expr_mask": np.array([True, True, True])}
    import torch

    pred = floor_predictor(train, 4)(torch.zeros(5, 3, 16, 16, dtype=torch.uint8))
    assert torch.allclose(pred.va, torch.tensor([[0.3, -0.2]] * 5))
    assert (pred.au_logits > 0).all() and (pred.expr_logits.argmax(1) == 2).all()


def test_seeds_and_wild_knobs_from_the_command_line() -> None:
    from affdata.synthetic import Wild
    from benchmarks.protocol import parse_args, wild_of

    with pytest.raises(SystemExit):
        parse_args(["--seeds", "0,1"])  # the published protocol keeps 3 seeds at least
    with pytest.raises(SystemExit):
        parse_args(["--seeds", "0", "--min-seeds", "1"])  # one seed has no interval at all
    assert parse_args(["--seeds", "0,1", "--min-seeds", "2"]).seeds == [0, 1]
    assert wild_of(parse_args([])) == Wild.pixels()  # the default data: the pixel nuisances (chosen on val)
    assert wild_of(parse_args(["--wild"])) == Wild.preset()
    assert wild_of(parse_args(["--no-wild"])) is None
    one = wild_of(parse_args(["--no-wild", "--wild-knobs", "pose=1"]))
    assert one == Wild(pose=1.0)  # one knob alone: over all-off, not over the preset
    assert wild_of(parse_args(["--wild-knobs", "pose=1"])) == one
    assert wild_of(parse_args(["--wild", "--wild-knobs", "pose=0.5"])) == Wild.parse("pose=0.5", preset=True)
    assert parse_args([]).stratify == "expression" and parse_args(["--stratify", "none"]).stratify == "none"
