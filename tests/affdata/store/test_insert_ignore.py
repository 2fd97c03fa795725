"""``bulk.insert_ignore_returning``: the dialect-specific ``ON CONFLICT`` built in one place."""

from __future__ import annotations

import json

import sqlalchemy as sa

from affdata.bulk import insert_ignore_returning
from affdata.db import Store
from affdata.schema import LabelSource, utcnow


def test_the_first_insert_returns_its_id_and_a_conflicting_one_none(store: Store) -> None:
    row = {"kind": "model", "name": "m", "version": "1", "details": {"lr": 0.1}, "created_at": utcnow()}
    with store.transaction() as conn:
        first = insert_ignore_returning(conn, LabelSource.__table__, row, ["name", "version"], "id")
        again = insert_ignore_returning(conn, LabelSource.__table__, row, ["name", "version"], "id")
        details = conn.execute(sa.text("SELECT details FROM label_source WHERE id = :i"), {"i": first}).scalar_one()
    assert isinstance(first, int) and again is None
    assert (details if isinstance(details, dict) else json.loads(details)) == {"lr": 0.1}  # through the JSON type
