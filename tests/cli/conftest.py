"""The CLI tests share the tiny real export of the training tests (built once per session)."""

from __future__ import annotations

from tests.training.conftest import tiny  # noqa: F401  (a fixture, registered by import)
