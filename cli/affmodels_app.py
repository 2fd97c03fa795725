"""The ``affmodels`` command: training, evaluation, prediction and generation."""

from __future__ import annotations

import logging

import typer

from cli import evaluate, gan, predict, train
from cli.common import run

app = typer.Typer(
    name="affmodels",
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Multi-task affect models trained on affdata exports.",
)


app.command()(train.train)
app.command("eval")(evaluate.evaluate)
app.command()(predict.predict)
app.command()(gan.generate)
app.command("eval-gan")(gan.eval_gan)
app.command("train-identity")(gan.train_identity)


@app.command()
def info() -> None:
    """Show the versions of torch and affmodels and the devices available.

    Example: affmodels info
    """
    import torch

    import affmodels
    from cli.common import print_json

    print_json({
        "affmodels": getattr(affmodels, "__version__", "0.1.0"),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    })


@app.callback()
def _root() -> None:
    """Keeps the app a command group (Typer would collapse a one-command app)."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run(app)


if __name__ == "__main__":
    main()
