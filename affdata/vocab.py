"""Vocabularies: action units, expression classes, and the class orders datasets use.

Every AU is identified by its FACS number (``AU1`` and ``AU01`` are both 1), and every
expression by its index in one canonical order, the ABAW order extended with Contempt:

    0 Neutral, 1 Anger, 2 Disgust, 3 Fear, 4 Happiness, 5 Sadness, 6 Surprise, 7 Other, 8 Contempt

A dataset's own class order (ABAW, AffectNet, FER2013, py-feat) is a named *expression order*
mapping its class ids onto canonical ids; a dataset's AU set is a named *AU set*. The same
constants seed the ``action_unit``, ``expression``, ``vocabulary`` and ``vocabulary_item`` and
``vocab_alias`` tables in the first migration, so SQL on the store sees the same names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from affdata.errors import VocabularyError

#: FACS number -> (short name, description)
ACTION_UNITS: dict[int, str] = {
    1: "Inner brow raiser",
    2: "Outer brow raiser",
    4: "Brow lowerer",
    5: "Upper lid raiser",
    6: "Cheek raiser",
    7: "Lid tightener",
    9: "Nose wrinkler",
    10: "Upper lip raiser",
    11: "Nasolabial deepener",
    12: "Lip corner puller",
    14: "Dimpler",
    15: "Lip corner depressor",
    17: "Chin raiser",
    18: "Lip pucker",
    20: "Lip stretcher",
    22: "Lip funneler",
    23: "Lip tightener",
    24: "Lip pressor",
    25: "Lips part",
    26: "Jaw drop",
    27: "Mouth stretch",
    28: "Lip suck",
    43: "Eyes closed",
    45: "Blink",
}

#: Canonical expression order (ids are positions).
EXPRESSIONS: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
    "Contempt",
)

#: Named AU sets, in the column order the dataset uses.
AU_SETS: dict[str, tuple[int, ...]] = {
    # Aff-Wild2 / ABAW 2020 (the multi-task paper's 8 AUs)
    "abaw2020": (1, 2, 4, 6, 12, 15, 20, 25),
    # ABAW 2021 onwards (12 AUs)
    "abaw": (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26),
}

#: Named expression orders: position in the dataset's files -> canonical expression id.
EXPRESSION_ORDERS: dict[str, tuple[int, ...]] = {
    "abaw2020": (0, 1, 2, 3, 4, 5, 6),
    "abaw": (0, 1, 2, 3, 4, 5, 6, 7),
    # AffectNet: Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt
    "affectnet": (0, 4, 5, 6, 3, 2, 1, 8),
    # FER2013: Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral
    "fer2013": (1, 2, 3, 4, 5, 6, 0),
    # py-feat's emotion columns: anger, disgust, fear, happiness, sadness, surprise, neutral
    "pyfeat": (1, 2, 3, 4, 5, 6, 0),
}

#: Other spellings of expression names (lower case) -> canonical id.
EXPRESSION_ALIASES: dict[str, int] = {
    "neutral": 0,
    "anger": 1,
    "angry": 1,
    "disgust": 2,
    "disgusted": 2,
    "fear": 3,
    "fearful": 3,
    "afraid": 3,
    "happiness": 4,
    "happy": 4,
    "joy": 4,
    "sadness": 5,
    "sad": 5,
    "surprise": 6,
    "surprised": 6,
    "other": 7,
    "contempt": 8,
}

_AU_RE = re.compile(r"^\s*AU\s*0*(\d+)(?:_[rc])?\s*$", re.IGNORECASE)


def au_number(name: str | int) -> int:
    """FACS number of an AU written as ``AU1``, ``AU01``, ``au12``, ``AU12_r`` or ``12``."""
    if isinstance(name, int):
        number = name
    else:
        match = _AU_RE.match(name)
        if match:
            number = int(match.group(1))
        elif name.strip().isdigit():
            number = int(name.strip())
        else:
            raise VocabularyError(f"not an action unit name: {name!r} (expected e.g. AU1 or AU01)")
    if number not in ACTION_UNITS:
        raise VocabularyError(f"unknown action unit AU{number}; known: {au_names(ACTION_UNITS)}")
    return number


def au_name(number: int) -> str:
    """Canonical short name, ``AU1`` (never zero-padded)."""
    return f"AU{au_number(number)}"


def au_names(numbers: Iterable[int]) -> list[str]:
    return [f"AU{n}" for n in numbers]


def au_set(name: str) -> tuple[int, ...]:
    try:
        return AU_SETS[name]
    except KeyError:
        raise VocabularyError(f"unknown AU set {name!r}; known: {', '.join(AU_SETS)}") from None


def expression_id(name: str | int) -> int:
    """Canonical id of an expression given by name (any alias, any case) or canonical id."""
    if isinstance(name, int):
        if 0 <= name < len(EXPRESSIONS):
            return name
        raise VocabularyError(f"expression id {name} is outside 0..{len(EXPRESSIONS) - 1}")
    key = name.strip().lower()
    if key in EXPRESSION_ALIASES:
        return EXPRESSION_ALIASES[key]
    raise VocabularyError(
        f"unknown expression {name!r}; known: {', '.join(e.lower() for e in EXPRESSIONS)}"
    )


def expression_name(canonical_id: int) -> str:
    return EXPRESSIONS[expression_id(canonical_id)]


def expression_order(name: str) -> tuple[int, ...]:
    try:
        return EXPRESSION_ORDERS[name]
    except KeyError:
        known = ", ".join(EXPRESSION_ORDERS)
        raise VocabularyError(f"unknown expression order {name!r}; known: {known}") from None


def order_from_header(names: Sequence[str]) -> tuple[int, ...]:
    """Canonical ids for a header such as ``Neutral,Anger,...`` (any alias, any case)."""
    return tuple(expression_id(n) for n in names)
