"""``affmodels generate`` and ``affmodels eval-gan`` (and the GAN side of ``affmodels train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    GrowingTable,
    JsonOption,
    err,
    num,
    plural,
    print_json,
    print_json_line,
    print_table,
    progress_bar,
    shown_path,
)


def train_gan(*, data: Path, out: Path, val: Path | None, epochs: int, batch_size: int, lr: float | None, device: str,
              workers: int, threads: int | None, seed: int, checkpoint_every: int, max_steps: int | None,
              resume: bool, json: bool, verify: bool = True) -> None:
    """What `affmodels train --model gan` runs (its options are train's)."""
    from affmodels.gan.train import GanTrainConfig
    from affmodels.gan.train import train_gan as run

    cfg = GanTrainConfig(data=str(data), out=str(out), val=str(val) if val else None, epochs=epochs,
                         batch_size=batch_size, lr_g=lr or 2e-4, lr_d=lr or 2e-4,
                         workers=workers, seed=seed, device=device, threads=threads,
                         checkpoint_every=checkpoint_every, max_steps=max_steps, resume=resume, verify=verify)

    from cli.train import planned_steps, summary

    table = GrowingTable(["epoch", "step", "D loss", "G loss", "G cycle", "D as recogniser: score", "samples/s"])

    def on_epoch(record) -> None:
        if json:
            print_json_line(record.to_dict())
            return
        t, v = record.train, record.val
        table.add([record.epoch, record.step, num(t.get("d_loss")), num(t.get("g_loss")), num(t.get("g_cycle")),
                   num(v.get("score")), f"{record.samples_per_s:.0f}"])

    with progress_bar("training the GAN", enabled=not json) as bar:
        result = run(cfg, progress=bar, on_epoch=on_epoch,
                     on_start=lambda steps, e, done: bar.total(planned_steps(steps, e, max_steps) - done))
    if not json:
        err.print(f"{summary(result)}; grids of generated faces in {shown_path(result.out)}/grid-epoch*.png",
                  highlight=False, soft_wrap=True)


def generate(
    checkpoint: Annotated[Path, typer.Option(help="A GAN checkpoint (affmodels train --model gan).")],
    image: Annotated[Path, typer.Option(help="A face image; its centred square is used.")],
    out: Annotated[Path, typer.Option(help="Folder for the generated PNGs.")],
    valence: Annotated[float, typer.Option(help="Target valence in [-1, 1].")] = 0.0,
    arousal: Annotated[float, typer.Option(help="Target arousal in [-1, 1].")] = 0.0,
    au: Annotated[list[str] | None, typer.Option("--au", help="Target AU as NAME=1 (present) or NAME=0, e.g. --au AU12=1; repeat. Unnamed AUs are 0; a bare NAME is refused.")] = None,
    expression: Annotated[str | None, typer.Option(help="Target expression, e.g. happiness.")] = None,
    targets: Annotated[Path | None, typer.Option(help="CSV of targets: columns valence, arousal, expression, AU...; one face per row.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
) -> None:
    """Draw the face in --image showing a target affect (or each row of --targets).

    Writes one PNG per target at the GAN's own size and a grid of the source and every target
    enlarged to at least 128 pixels a face.

    Example: affmodels generate --checkpoint runs/gan/last.pt --image face.png --valence 0.7 --arousal 0.3 --au AU12=1 --expression happiness --out gen
    """
    from affmodels.checkpoint import load_checkpoint
    from affmodels.gan.generate import make_target, parse_aus, read_targets
    from affmodels.gan.generate import generate as run

    vocab = load_checkpoint(checkpoint)["vocabulary"]
    if targets is not None:
        wanted = read_targets(targets, vocab["au_names"], vocab["expressions"])
    else:
        wanted = [make_target(vocab["au_names"], vocab["expressions"], valence=valence, arousal=arousal,
                              aus=parse_aus(au or []), expression=expression)]
    paths = run(checkpoint, image, wanted, out, device=device)
    err.print(f"{plural(len(paths) - 1, 'face')} and a grid ({paths[-1].name}) in {shown_path(out)}", highlight=False)


def eval_gan(
    checkpoint: Annotated[Path, typer.Option(help="A GAN checkpoint.")],
    evaluator: Annotated[Path, typer.Option(help="A multi-task checkpoint trained separately (affmodels train).")],
    data: Annotated[Path, typer.Option(help="Export whose faces are the sources (and whose labels give the targets): "
                                            "test subjects that neither the GAN nor the evaluator saw.")],
    identity: Annotated[Path | None, typer.Option(help="An identity embedding (affmodels train-identity), trained "
                                                       "on other people: identity figures and KID in its space.")] = None,
    n: Annotated[int, typer.Option(min=1, help="How many faces to generate and score (the rest are the real reference).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the source and target draws.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    json: JsonOption = False,
) -> None:
    """Score generated faces beside an untrained generator and the copy-the-input baseline: target
    VA CCC, AU F1 and expression accuracy by a separate recogniser; identity by an embedding of
    other people (checked first on real faces); KID to real faces; and the discriminator as a
    recogniser.

    Example: affmodels eval-gan --checkpoint runs/gan/last.pt --evaluator runs/cnn1/best.pt --identity runs/identity.pt --data exports/test
    """
    from affmodels.gan.evaluate import evaluate_gan

    result = evaluate_gan(checkpoint, evaluator, data, identity=identity, n=n, seed=seed, device=device)
    if json:
        print_json(result.to_dict())
        return
    gens = (result.trained, result.untrained, result.copy)
    keys = [("ccc_valence", "CCC valence to target"), ("ccc_arousal", "CCC arousal to target"),
            ("au_f1_mean", "AU F1 to target"), ("expr_accuracy", "expression accuracy"),
            ("expr_f1_macro", "expression macro-F1"), ("expr_chance", "expression chance (1 / classes)")]
    rows = [[label, *(num(getattr(g, k)) for g in gens)] for k, label in keys]
    if result.trained.identity is not None:
        rows += [[label, *(num(getattr(g.identity, k)) for g in gens)] for k, label in (
            ("own_distance", "identity: distance to source"), ("verified", "identity: verified share"),
            ("identified", "identity: identified share"), ("chance", "identity: chance"))]
        rows.append(["KID, identity features", *(f"{num(g.kid_identity.mean)} ± {num(g.kid_identity.std)}" for g in gens)])
    rows.append(["KID, random features", *(f"{num(g.kid_random.mean)} ± {num(g.kid_random.std)}" for g in gens)])
    print_table(["figure", "trained G", "untrained G", "copy"], rows,
                title=f"{plural(result.sources, 'source face')} of {plural(result.subjects, 'subject')} scored by "
                      f"{shown_path(evaluator)}; {result.reference} real reference faces")
    checks = [("evaluator features", result.evaluator_feature_check)]
    if result.identity_check is not None:
        checks.insert(0, ("identity embedding", result.identity_check))
    print_table(["space", "same person, other expr.", "other person, same expr.", "ordered right", "triplets"],
                [[name, num(c.same_person_other_expr), num(c.other_person_same_expr), num(c.ordered_right),
                  str(c.triplets)] for name, c in checks],
                title="Real faces: does the space measure identity?")
    d = result.discriminator
    print_table(["VA mean CCC", "AU mean F1", "EXPR macro-F1", "score"],
                [[num(d.get(k)) for k in ("ccc_mean", "au_f1_mean", "expr_f1_macro", "score")]],
                title="The discriminator as a recogniser")


def train_identity(
    data: Annotated[Path, typer.Option(help="Export of the people the embedding learns (none of the GAN's or test subjects).")],
    val: Annotated[Path, typer.Option(help="Export of other people, to choose the epoch on.")],
    out: Annotated[Path, typer.Option(help="Checkpoint file to write.")],
    epochs: Annotated[int, typer.Option(min=1)] = 6,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int | None, typer.Option(help="torch threads")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    json: JsonOption = False,
) -> None:
    """Train the subject embedding that `eval-gan --identity` measures identity with.

    Example: affmodels train-identity --data ids/train --val ids/val --out runs/identity.pt
    """
    from affmodels.gan.identity import IdentityConfig, load_faces
    from affmodels.gan.identity import train_identity as run

    result = run(load_faces(data), load_faces(val), out, IdentityConfig(epochs=epochs, seed=seed, threads=threads),
                 device=device)
    if json:
        print_json(result.to_dict())
        return
    c = result.val_check
    err.print(f"epoch {result.best_epoch} kept in {shown_path(out)}: on {c.subjects} unseen people, same person "
              f"{num(c.same_person_other_expr)} apart, other person {num(c.other_person_same_expr)}, "
              f"{num(c.ordered_right)} of {c.triplets} triplets ordered right", highlight=False)
