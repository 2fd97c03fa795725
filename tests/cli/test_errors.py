"""One way to fail: every error a user can cause is one line on stderr and exit status 1; wrong
usage is Typer's usage message and exit status 2. Walks representative cases of every command,
through the real entry points (``cli.common.run``), with progress bars enabled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import affdata_app, affmodels_app

from .helpers import call


@dataclass(frozen=True)
class Case:
    tool: str
    args: tuple[str, ...]
    code: int
    says: str  # a piece of the message
    env: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.tool} {' '.join(self.args)}"


CASES = [
    # affdata
    Case("affdata", ("sql", "DELETE FROM video", "--db", "{db}"), 1, "read-only"),
    Case("affdata", ("export", "--part", "train", "--out", "{tmp}/x"), 2, "--split"),
    Case("affdata", ("export", "--split", "official", "--db", "{db}"), 2, "--part and --out"),
    Case("affdata", ("export", "--split", "nope", "--part", "train", "--out", "{tmp}/x", "--db", "{db}"), 1, "nope"),
    Case("affdata", ("export", "--split", "official", "--part", "nope", "--out", "{tmp}/x", "--db", "{db}"), 1,
         "val (1 video)"),
    Case("affdata", ("export", "labels", "{tmp}/abaw", "--source", "nope", "--db", "{db}"), 1, "nope"),
    Case("affdata", ("export", "labels", "{tmp}/abaw", "--format", "csv", "--db", "{db}"), 2, "abaw"),
    Case("affdata", ("split", "show", "nope", "--db", "{db}"), 1, "nope"),
    Case("affdata", ("split", "create", "s", "--ratios", "a,b", "--db", "{db}"), 2, "ratios"),
    Case("affdata", ("labels", "consensus", "-s", "nope", "--db", "{db}"), 1, "nope"),
    Case("affdata", ("labels", "agreement", "-s", "nope", "--db", "{db}"), 1, "nope"),
    Case("affdata", ("ingest", "boxes", "{tmp}/none.csv", "--db", "{db}"), 1, "none.csv"),
    Case("affdata", ("stats", "--db", "{tmp}/no/such/folder/x.db"), 1, "there is no affdata store"),
    Case("affdata", ("db", "upgrade", "--db", "{tmp}/no/such/folder/x.db"), 1, "no such directory"),
    Case("affdata", ("demo", "generate", "{train}"), 1, "not empty"),
    Case("affdata", ("db", "current", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x"), 1,
         "cannot open the store"),
    # affmodels
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--model", "resnet"), 2, "resnet"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--epochs", "0"), 2, "epochs"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--workers", "0", "--pretrained",
                       "{tmp}/vgg_face.pth"), 1, "vgg_face.pth"),
    Case("affmodels", ("train", "--data", "{noau}", "--out", "{tmp}/r", "--workers", "0", "--balance", "1,1,1"), 1,
         "no row"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--workers", "0", "--balance", "1,-1,1"), 1,
         "balance"),
    Case("affmodels", ("train", "--data", "{tmp}/nothing", "--out", "{tmp}/r", "--workers", "0"), 1, "not an export"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{runs}/mtl", "--workers", "0"), 1, "already holds a run"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--workers", "0", "--resume"), 1,
         "nothing to resume"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--device", "cuda:99"), 1, "cuda"),
    Case("affmodels", ("train", "--data", "{train}", "--out", "{tmp}/r", "--device", "gpu"), 1, "not a device"),
    Case("affmodels", ("train", "--model", "gan", "--data", "{train}", "--out", "{tmp}/r", "--workers", "0"), 1,
         "torchrun", env=(("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0"))),
    Case("affmodels", ("eval", "--checkpoint", "{runs}/gan/last.pt", "--data", "{val}"), 1, "not a multi-task"),
    Case("affmodels", ("eval", "--checkpoint", "{tmp}/none.pt", "--data", "{val}"), 1, "no such checkpoint"),
    Case("affmodels", ("eval", "--checkpoint", "{runs}/mtl/last.pt", "--data", "{tmp}/nothing"), 1, "not an export"),
    Case("affmodels", ("predict", "--checkpoint", "{runs}/mtl/last.pt", "--out", "{tmp}/p"), 2, "--data"),
    Case("affmodels", ("predict", "--checkpoint", "{tmp}/none.pt", "--data", "{val}", "--out", "{tmp}/p"), 1,
         "no such checkpoint"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/gan/last.pt", "--image", "{face}", "--out", "{tmp}/g",
                       "--expression", "contempt"), 1, "contempt"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/gan/last.pt", "--image", "{face}", "--out", "{tmp}/g",
                       "--au", "AU9=1"), 1, "AU9"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/gan/last.pt", "--image", "{face}", "--out", "{tmp}/g",
                       "--au", "AU12"), 1, "AU12=1"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/gan/last.pt", "--image", "{tmp}/none.png", "--out",
                       "{tmp}/g"), 1, "no such image"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/gan/last.pt", "--image", "{face}", "--out", "{tmp}/g",
                       "--targets", "{tmp}/none.csv"), 1, "no such targets file"),
    Case("affmodels", ("generate", "--checkpoint", "{runs}/mtl/last.pt", "--image", "{face}", "--out", "{tmp}/g"), 1,
         "not a GAN"),
    Case("affmodels", ("eval-gan", "--checkpoint", "{runs}/mtl/last.pt", "--evaluator", "{runs}/mtl/last.pt",
                       "--data", "{val}"), 1, "not a GAN"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_errors_are_one_line_or_a_usage_message(case: Case, tiny, runs, tmp_path: Path, capsys, monkeypatch) -> None:
    fill = {"db": str(tiny["db"]), "train": str(tiny["train"]), "val": str(tiny["val"]), "tmp": str(tmp_path),
            "runs": str(runs["runs"]), "noau": str(runs["noau"]), "face": str(runs["face"])}
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    main = affdata_app.main if case.tool == "affdata" else affmodels_app.main
    code, out, err = call(main, case.tool, [a.format(**fill) for a in case.args], capsys, monkeypatch)
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code == 1:
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err  # no progress bar, no blank line, no box
        assert lines[0].startswith("error: ") and case.says in lines[0], lines[0]
    else:
        assert "Usage:" in err and case.says in err, err


def test_the_debug_variable_shows_the_traceback_of_an_affmodels_error(runs, tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["affmodels", "eval", "--checkpoint", str(runs["runs"] / "gan" / "last.pt"),
                                     "--data", str(tiny["val"])])
    monkeypatch.setenv("AFFDATA_DEBUG", "1")
    from affmodels.checkpoint import CheckpointError

    with pytest.raises(CheckpointError):
        affmodels_app.main()


def test_a_report_with_failures_leaves_no_empty_progress_bar(tmp_path: Path, capsys, monkeypatch) -> None:
    """Nothing to probe: the failure line and the table, not a "probing videos 0/0" bar."""
    code, out, err = call(affdata_app.main, "affdata", ["ingest", "videos", str(tmp_path / "none"), "--db",
                                                        str(tmp_path / "s.db")], capsys, monkeypatch)
    assert code == 1
    # a command that writes creates the store and says so; then only the failure
    assert err.strip().splitlines() == [f"created a new affdata store at sqlite:///{tmp_path / 's.db'}",
                                        f"failed {tmp_path / 'none'}: does not exist"]
    assert "added" in out
