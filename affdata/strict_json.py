"""Strict JSON for both packages: what the CLI prints with ``--json`` and a training run's
``metrics.jsonl``. An undefined figure (NaN, an infinity) is ``null``: strict JSON parsers refuse
the bare ``NaN`` that ``json.dumps`` writes by default.
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities as ``None`` and numpy (or torch) scalars as Python numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if getattr(obj, "shape", None) == () and hasattr(obj, "item"):  # numpy (or torch) scalars
        return json_safe(obj.item())
    return obj


__all__ = ["json_safe"]
