"""``affdata labels``: several annotators into a consensus, and how much they agree."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import DbOption, JsonOption, open_store, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Consensus of several annotators, and their agreement.")

SourcesOption = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="A label source (NAME or NAME@VERSION); repeat for several. Default: every human source."),
]


@app.command()
def consensus(
    sources: SourcesOption = None,
    name: Annotated[str, typer.Option(help="Name of the consensus source to write (replaced if it exists).")] = "consensus",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Fuse annotators: mean VA, majority expression and AU; ties are left out and counted.

    The frame_labels view prefers the consensus to the raw annotations.

    Example: affdata labels consensus -s annotator_a -s annotator_b
    """
    from affdata.labels.consensus import build_consensus

    report = build_consensus(open_store(db, create=True), name=name, sources=sources)
    if json:
        print_json(report.to_dict())
        return
    print_table(["task", "frames written", "rated by 2+", "ties left out"],
                [[t, report.frames[t], report.multi_rated[t], report.ties[t]] for t in ("va", "au", "expr")],
                title=f"Consensus {report.source!r} of {', '.join(report.sources)}")


@app.command()
def agreement(
    sources: SourcesOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Inter-annotator agreement: CCC and ICC(A,1) for VA; Cohen's and Fleiss' kappa for AUs and expressions.

    Example: affdata labels agreement -s annotator_a -s annotator_b --json
    """
    from affdata.labels.agreement import agreement as compute

    result = compute(open_store(db), sources=sources)
    if json:
        print_json(result)
        return

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    va = result["va"]
    print_table(["a", "b", "frames", "CCC valence", "CCC arousal"],
                [[p["a"], p["b"], p["frames"], f(p["ccc_valence"]), f(p["ccc_arousal"])] for p in va["pairs"]],
                title=f"Valence-arousal; {va['icc_form']}: valence {f(va['icc_valence'])} "
                      f"({va['icc_valence_frames']} frames), arousal {f(va['icc_arousal'])}")
    ex = result["expr"]
    print_table(["a", "b", "frames", "Cohen's kappa"],
                [[p["a"], p["b"], p["frames"], f(p["cohen_kappa"])] for p in ex["pairs"]],
                title=f"Expressions; Fleiss' kappa {f(ex['fleiss_kappa'])} ({ex['fleiss_frames']} frames)")
    rows = [[au, f(r["fleiss_kappa"]), r["fleiss_frames"]] + [f(p["cohen_kappa"]) for p in r["pairs"]]
            for au, r in result["au"].items()]
    pairs = [f"{p['a']} / {p['b']}" for r in list(result["au"].values())[:1] for p in r["pairs"]]
    print_table(["AU", "Fleiss' kappa", "frames", *pairs], rows, title="Action units (Cohen's kappa per pair)")
