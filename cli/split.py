"""``affdata split``: named, versioned, subject-disjoint splits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import DbOption, JsonOption, note, open_store, print_json, print_table

if TYPE_CHECKING:
    from affdata.splits import SplitSummary

app = typer.Typer(no_args_is_help=True, help="Create and inspect splits (train / val / test).")


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Split name; saving it again with another assignment makes a new version.")],
    by: Annotated[str, typer.Option(help="Keep each 'subject' (default) or each 'video' in one part.")] = "subject",
    ratios: Annotated[str, typer.Option(help="Comma-separated shares of the parts, summing to 1.")] = "0.8,0.1,0.1",
    parts: Annotated[str | None, typer.Option(help="Comma-separated part names (default train,val,test).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle: the same seed gives the same split.")] = 0,
    stratify: Annotated[str | None, typer.Option(help="'expression': balance expression classes across parts.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Assign videos to parts, subject-disjoint by default, deterministic for a seed.

    Example: affdata split create s1 --by subject --ratios 0.8,0.1,0.1 --seed 7 --stratify expression
    """
    try:
        shares = [float(r) for r in ratios.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--ratios must be numbers separated by commas, not {ratios!r}") from None
    if by not in ("subject", "video"):
        raise typer.BadParameter(f"--by must be 'subject' or 'video', not {by!r}")
    if stratify not in (None, "expression"):
        raise typer.BadParameter(f"--stratify supports 'expression', not {stratify!r}")
    from affdata.splits import create_split, show_split

    store = open_store(db, create=True)
    result = create_split(store, name, by=by, ratios=shares, seed=seed, stratify=stratify,
                          parts=parts.split(",") if parts else None)
    if json:
        print_json(result.to_dict())
        return
    verb = "created" if result.created else "unchanged (same assignment as)"
    note(f"split {result.name} version {result.version} {verb}")
    _print(show_split(store, f"{result.name}@{result.version}"))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="NAME (newest version) or NAME@VERSION.")],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Counts per part (videos, subjects, frames, labelled frames per task) and class balance.

    Example: affdata split show official
    """
    from affdata.splits import show_split

    info = show_split(open_store(db), name)
    if json:
        print_json(info.to_dict())
    else:
        _print(info)


def _print(info: SplitSummary) -> None:
    print_table(["part", "videos", "subjects", "frames", "VA", "AU", "EXPR"],
                [[p.part, p.videos, p.subjects, p.frames, p.va, p.au, p.expr] for p in info.parts],
                title=f"Split {info.name}@{info.version} (by {info.unit})")
    classes = sorted({c for p in info.parts for c in p.classes})
    if classes:
        rows = []
        for p in info.parts:
            total = sum(p.classes.values()) or 1
            rows.append([p.part] + [f"{100 * p.classes.get(c, 0) / total:.1f}%" for c in classes])
        print_table(["part", *classes], rows, title="Expression balance (share of labelled frames)")
