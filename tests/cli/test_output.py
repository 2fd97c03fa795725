"""Output a person reads and a script parses: strict JSON, one growing epoch table, rounded
scores, a progress bar that counts to the steps run, AU order, plurals, tables in files, curves,
grids, and evaluation on an export whose vocabulary differs from the model's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affmodels.evaluate import VocabularyMatch, evaluate_checkpoint
from cli import affmodels_app
from cli.common import print_table, shown_path
from cli.evaluate import au_order
from cli.train import planned_steps
from tests.affmodels.data.exports import write_export

from .helpers import call, strict_json

LONG_FLOAT = re.compile(r"\d\.\d{5,}")


def models(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    return call(affmodels_app.main, "affmodels", args, capsys, monkeypatch)


def test_json_has_null_where_a_figure_is_undefined(runs, tiny, capsys, monkeypatch) -> None:
    """The export without AU labels has no AU F1: null, not the bare NaN strict parsers refuse."""
    code, out, err = models(["eval", "--checkpoint", str(runs["runs"] / "mtl" / "last.pt"), "--data",
                             str(runs["noau"]), "--json"], capsys, monkeypatch)
    assert code == 0, err
    result = strict_json(out)
    assert result["metrics"]["au_f1_mean"] is None and result["metrics"]["va_count"] > 0
    code, out, err = models(["eval-gan", "--checkpoint", str(runs["runs"] / "gan" / "last.pt"), "--evaluator",
                             str(runs["runs"] / "mtl" / "last.pt"), "--data", str(runs["noau"]), "--n", "8",
                             "--json"], capsys, monkeypatch)
    assert code == 0, err
    gan = strict_json(out)
    assert gan["discriminator"]["au_f1_mean"] is None and gan["trained"]["faces"] == 8


def test_training_prints_one_growing_table_and_a_rounded_summary(tiny, tmp_path, capsys, monkeypatch) -> None:
    out_dir = tmp_path / "run"
    code, out, err = models(["train", "--data", str(tiny["train"]), "--val", str(tiny["val"]), "--out", str(out_dir),
                             "--epochs", "2", "--batch-size", "32", "--workers", "0"], capsys, monkeypatch)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["epoch", "step"]  # one header, one line per epoch
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]
    assert not LONG_FLOAT.search(out) and not LONG_FLOAT.search(err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"run in {out_dir}") and re.search(r"best\.pt is epoch [12] \(score -?\d\.\d{3} on", last)
    records = [strict_json(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # numbered as the table and the curves number them
    assert all(r["val"]["loss"] > 0 and "loss_va" in r["val"] for r in records)


def test_a_max_steps_run_counts_to_the_steps_it_runs(tiny, tmp_path, capsys, monkeypatch) -> None:
    assert planned_steps(138, 10, 60) == 60 and planned_steps(13, 2, None) == 26 and planned_steps(13, 2, 99) == 26
    code, out, err = models(["train", "--data", str(tiny["train"]), "--out", str(tmp_path / "r"), "--epochs", "5",
                             "--batch-size", "8", "--workers", "0", "--max-steps", "3"], capsys, monkeypatch)
    assert code == 0, err
    assert re.search(r"training .* 3/3 ", err), err  # the bar, printed once when it ends (not a terminal)
    assert "stopped by --max-steps" in err
    code, out, err = models(["train", "--data", str(tiny["train"]), "--out", str(tmp_path / "r"), "--epochs", "5",
                             "--batch-size", "8", "--workers", "0", "--max-steps", "5", "--resume"], capsys, monkeypatch)
    assert code == 0, err
    assert re.search(r"training .* 2/2 ", err), err  # resumed at step 3: two steps to go


def test_training_json_lines_are_strict_json(tiny, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = models(["train", "--data", str(tiny["train"]), "--val", str(tiny["val"]), "--out",
                             str(tmp_path / "r"), "--epochs", "1", "--batch-size", "32", "--workers", "0", "--json"],
                            capsys, monkeypatch)
    assert code == 0, err
    [record] = [strict_json(line) for line in out.strip().splitlines()]
    assert record["epoch"] == 1 and err == ""


def test_per_au_tables_are_in_au_number_order(runs, tiny, capsys, monkeypatch) -> None:
    assert sorted(["AU12", "AU2", "AU1", "AU25", "AU4"], key=au_order) == ["AU1", "AU2", "AU4", "AU12", "AU25"]
    code, out, err = models(["eval", "--checkpoint", str(runs["runs"] / "mtl" / "last.pt"), "--data",
                             str(tiny["val"])], capsys, monkeypatch)
    assert code == 0, err
    shown = re.findall(r"│ (AU\d+)\s", out)
    assert shown and shown == sorted(shown, key=au_order) and shown.index("AU2") < shown.index("AU12")


def test_generate_says_1_face(runs, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = models(["generate", "--checkpoint", str(runs["runs"] / "gan" / "last.pt"), "--image",
                             str(runs["face"]), "--out", str(tmp_path / "g"), "--au", "AU12=1"], capsys, monkeypatch)
    assert code == 0, err
    assert err.startswith("1 face and a grid")
    with Image.open(tmp_path / "g" / "face_grid.png") as grid, Image.open(tmp_path / "g" / "face_t00.png") as face:
        assert face.size == (32, 32)  # the GAN's own size
        assert grid.size[0] >= 2 * 128 and grid.size[1] >= 128  # the grid enlarges faces to judge them


def test_training_grids_draw_faces_at_least_128_pixels(runs) -> None:
    [grid] = sorted((runs["runs"] / "gan").glob("grid-epoch*.png"))
    with Image.open(grid) as img:
        rgb = np.asarray(img.convert("RGB"))
    assert img.size[1] >= 6 * 128  # six faces, each at least 128 pixels high
    assert (rgb[:20] < 100).any()  # the title line is drawn above them


def test_tables_in_a_file_keep_one_row_per_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    deep = tmp_path / "exports" / "a-rather-long-folder-name-for-an-export" / "of-the-validation-part" / "val"
    assert shown_path(deep) == "exports/a-rather-long-folder-name-for-an-export/of-the-validation-part/val"
    capsys.readouterr()
    print_table(["path", "rows", "videos", "tracks", "subjects", "va", "au", "expr", "shards", "resumed"],
                [[shown_path(deep), 4400, 25, 31, 6, 4298, 917, 1125, 1, 0]], title="Export")
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "4400" in line]
    assert shown_path(deep) in row and "resumed" in out.splitlines()[2]  # nothing folded onto more lines
    assert len(out.splitlines()) == 6  # title, top rule, header, rule, the row, bottom rule


def test_eval_on_an_export_with_other_aus_scores_the_shared_ones(runs, tmp_path, capsys, monkeypatch) -> None:
    """The model knows AU1, 2, 4, 6, 12, 15, 20, 25 and 7 classes; this export AU1, AU4, AU12 and
    Neutral, Anger, Happiness, Sadness: those are scored, the model's others are named."""
    export = write_export(tmp_path / "other", videos=3, frames=20, size=32, au_rate=0.6, expr_rate=0.5)
    result = evaluate_checkpoint(runs["runs"] / "mtl" / "last.pt", export.root, batch_size=16)
    labelled = json.loads((export.root / "meta" / "info.json").read_text())["counts"]["au_per_unit"]
    assert {k.split("/")[1] for k in result.metrics if k.startswith("au_f1/")} == {"AU1", "AU4", "AU12"}
    assert all(result.metrics[f"au_count/{a}"] == labelled[a] for a in ("AU1", "AU4", "AU12"))
    assert result.metrics["expr_count"] == int(export.has["expr"].sum())
    assert result.left_out == {"au": {"model": ["AU2", "AU6", "AU15", "AU20", "AU25"], "data": []},
                               "expr": {"model": ["Disgust", "Fear", "Surprise"], "data": []}}
    code, out, err = models(["eval", "--checkpoint", str(runs["runs"] / "mtl" / "last.pt"), "--data",
                             str(export.root)], capsys, monkeypatch)
    assert code == 0, err
    assert "left out (AUs predicted by the model, not in the export): AU2, AU6, AU15, AU20, AU25" in err


class _Stream:
    au_names = ["AU1", "AU9", "AU12"]
    expressions = ["Neutral", "Happiness", "Other"]


def test_vocabulary_match_cuts_both_sides_to_what_they_share() -> None:
    import torch

    from affmodels.model import Predictions

    match = VocabularyMatch.of({"au_names": ["AU12", "AU2", "AU1"], "expressions": ["Happiness", "Neutral"]},
                               _Stream())
    assert match.au_names == ["AU1", "AU12"] and match.classes == ["Neutral", "Happiness"]
    assert match.left_out == {"au": {"model": ["AU2"], "data": ["AU9"]}, "expr": {"model": [], "data": ["Other"]}}
    pred = Predictions(torch.zeros(2, 2), torch.tensor([[12.0, 2.0, 1.0]] * 2), torch.tensor([[4.0, 0.0]] * 2))
    cut = match.predictions(pred)
    assert cut.au_logits.tolist() == [[1.0, 12.0]] * 2 and cut.expr_logits.tolist() == [[0.0, 4.0]] * 2
    batch = {"au": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "au_mask": torch.ones(2, 3, dtype=torch.bool),
             "expr": torch.tensor([2, 1]), "expr_mask": torch.tensor([True, True])}
    cut = match.batch(batch)
    assert cut["au"].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert cut["expr"].tolist() == [-1, 1] and cut["expr_mask"].tolist() == [False, True]  # Other: left out
    assert not match.identity
    same = {"au_names": ["AU1", "AU9", "AU12"], "expressions": ["Neutral", "Happiness", "Other"]}
    assert VocabularyMatch.of(same, _Stream()).identity
    reordered = {"au_names": ["AU12", "AU9", "AU1"], "expressions": ["Neutral", "Happiness", "Other"]}
    assert not VocabularyMatch.of(reordered, _Stream()).identity  # same AUs in another order: moved


@pytest.mark.parametrize("args", [["--au", "AU12"], ["--au", "AU12=yes"]])
def test_a_bare_au_is_refused(args, runs, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = models(["generate", "--checkpoint", str(runs["runs"] / "gan" / "last.pt"), "--image",
                             str(runs["face"]), "--out", str(tmp_path / "g"), *args], capsys, monkeypatch)
    assert code == 1 and "NAME=1" in err and not (tmp_path / "g").exists()
