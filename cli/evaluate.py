"""``affmodels eval``: a checkpoint's metrics on an export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, NoVerifyOption, note, num, print_json, print_table, shown_path

METRICS = [("ccc_valence", "CCC valence"), ("ccc_arousal", "CCC arousal"), ("ccc_mean", "CCC mean"),
           ("mse_valence", "MSE valence"), ("mse_arousal", "MSE arousal"), ("au_f1_mean", "AU mean F1"),
           ("au_accuracy", "AU accuracy"), ("expr_f1_macro", "EXPR macro-F1"), ("expr_accuracy", "EXPR accuracy"),
           ("abaw2020_expr", "ABAW2020 EXPR (0.67 F1 + 0.33 acc)"), ("abaw2020_au", "ABAW2020 AU (0.5 F1 + 0.5 acc)"),
           ("score", "ABAW score (CCC + F1 + F1)")]


def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="A best.pt or last.pt of affmodels train.")],
    data: Annotated[Path, typer.Option(help="Export folder to evaluate on.")],
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 256,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    per_video: Annotated[bool, typer.Option("--per-video", help="Also print the per-video breakdown.")] = False,
    no_verify: NoVerifyOption = False,
    json: JsonOption = False,
) -> None:
    """Evaluate over the whole export (never averaged per batch): CCC, MSE, F1, accuracy, ABAW scores.

    Where the export's AUs or expression classes differ from the model's, the ones both have
    are scored and the others are named on stderr (and under left_out with --json).

    Example: affmodels eval --checkpoint runs/cnn1/best.pt --data exports/val
    """
    from affmodels.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, data, batch_size=batch_size, device=device, verify=not no_verify)
    if json:
        print_json({"metrics": result.metrics, "per_video": result.per_video, "left_out": result.left_out})
        return
    for line in left_out_lines(result.left_out):
        note(line)
    m = result.metrics
    print_table(["metric", "value"], [[label, num(m.get(k), 4)] for k, label in METRICS],
                title=f"{shown_path(checkpoint)} on {shown_path(data)}")
    aus = sorted((k.split("/", 1)[1] for k in m if k.startswith("au_f1/")), key=au_order)
    if aus:
        print_table(["AU", "F1", "accuracy", "frames"],
                    [[a, num(m[f"au_f1/{a}"]), num(m[f"au_accuracy/{a}"]), m[f"au_count/{a}"]] for a in aus],
                    title="Per AU")
    if per_video:
        print_table(["video", "CCC mean", "AU F1", "EXPR F1"],
                    [[v, num(r.get("ccc_mean")), num(r.get("au_f1_mean")), num(r.get("expr_f1_macro"))]
                     for v, r in sorted(result.per_video.items())],
                    title="Per video")


def au_order(name: str) -> tuple[int, str]:
    """AU1, AU2, AU4, ..., AU12 (by number, not as text); names without a number last."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 1 << 30, name)


def left_out_lines(left_out: dict[str, dict[str, list[str]]]) -> list[str]:
    """What an evaluation could not score because only the model or only the export has it."""
    lines = []
    for task, what in (("au", "AUs"), ("expr", "classes")):
        sides = left_out.get(task, {})
        for side, reason in (("data", "in the export, not predicted by the model"),
                             ("model", "predicted by the model, not in the export")):
            names = sides.get(side, [])
            if names:
                shown = sorted(names, key=au_order) if task == "au" else names
                lines.append(f"left out ({what} {reason}): {', '.join(shown)}")
    return lines
