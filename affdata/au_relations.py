"""How action units go with expressions: the prototype table multi-task models couple tasks by.

Source: Du, Tao & Martinez, "Compound facial expressions of emotion", PNAS 111(15), 2014,
Table 1 (prototypical AUs of each basic emotion, observed on 230 people posing them, with the
share of people who showed each secondary AU), as Kollias et al. use it to couple AUs and
expressions: FaceBehaviorNet ("Face behavior a la carte", BMVC 2019, Table 1) and
"Distribution matching for heterogeneous multi-task learning" (2021). An AU that every person
showed has probability 1; the others carry Du et al.'s percentage.

:data:`AU_GIVEN_EXPRESSION` maps a canonical expression id to ``{AU number: p(AU | expression)}``.
An AU not in a row has probability 0 for that expression. Neutral (no AU active) is our
assumption, not Du et al.'s: it is the class the table defines by absence. Other and Contempt
have no row and carry no relation (frames of those classes get no relation target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affdata.vocab import EXPRESSIONS, au_number, expression_id

#: Canonical expression id -> {AU: p(AU | expression)} (Du et al. 2014, Table 1).
AU_GIVEN_EXPRESSION: dict[int, dict[int, float]] = {
    0: {},  # Neutral: no AU (our assumption, see above)
    1: {4: 1.0, 7: 1.0, 24: 1.0, 10: 0.26, 17: 0.52, 23: 0.29},  # Anger
    2: {9: 1.0, 10: 1.0, 17: 1.0, 4: 0.31, 24: 0.26},  # Disgust
    3: {1: 1.0, 4: 1.0, 20: 1.0, 25: 1.0, 2: 0.57, 5: 0.63, 26: 0.33},  # Fear
    4: {12: 1.0, 25: 1.0, 6: 0.51},  # Happiness
    5: {4: 1.0, 15: 1.0, 1: 0.60, 6: 0.50, 11: 0.26, 17: 0.67},  # Sadness
    6: {1: 1.0, 2: 1.0, 25: 1.0, 26: 1.0, 5: 0.66},  # Surprise
}


@dataclass(frozen=True)
class RelationTable:
    """The table restricted to one model's outputs.

    ``p_au`` (C, K): p(AU k | class c) for the model's classes and AUs; ``known`` (C,): the
    class has a row (Other, Contempt: no); ``related`` (K,): the AU appears in some row (an AU
    no expression implies is left out of every relation loss)."""

    p_au: np.ndarray
    known: np.ndarray
    related: np.ndarray

    @property
    def empty(self) -> bool:
        return not (self.known.any() and self.related.any())


def relation_table(classes: Sequence[str | int], aus: Sequence[str | int]) -> RelationTable:
    """The relation table for an export's expression classes (names or canonical ids, in the
    model's output order) and AUs (``AU12`` or 12, in output order)."""
    ids = [c if isinstance(c, int) else expression_id(c) for c in classes]
    numbers = [a if isinstance(a, int) else au_number(a) for a in aus]
    p = np.zeros((len(ids), len(numbers)), dtype=np.float32)
    known = np.zeros(len(ids), dtype=bool)
    for i, c in enumerate(ids):
        row = AU_GIVEN_EXPRESSION.get(c)
        if row is None:
            continue
        known[i] = True
        for k, n in enumerate(numbers):
            p[i, k] = row.get(n, 0.0)
    in_any = {n for row in AU_GIVEN_EXPRESSION.values() for n in row}
    related = np.array([n in in_any for n in numbers], dtype=bool)
    return RelationTable(p, known, related)


def describe() -> list[tuple[str, str]]:
    """(expression, 'AU12 1.00, AU25 1.00, AU6 0.51') rows, for documentation and --help."""
    return [(EXPRESSIONS[c], ", ".join(f"AU{a} {p:.2f}" for a, p in row.items()) or "none")
            for c, row in AU_GIVEN_EXPRESSION.items()]
