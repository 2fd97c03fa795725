"""One migration history for both dialects: single head, no drift, down and up again, and
the documented handling of stores that are older or newer than the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from affdata import migrate
from affdata.db import Store
from affdata.errors import SchemaOutdatedError, SchemaTooNewError, StoreError
from affdata.schema import Base

EXPECTED_TABLES = {
    "subject", "video", "frame", "track", "face_box", "label_source", "label_import",
    "va_label", "au_label", "expr_label", "action_unit", "expression", "vocabulary",
    "vocabulary_item", "vocab_alias", "split", "split_assignment", "export",
}


def test_single_head() -> None:
    heads = migrate.script_directory().get_heads()
    assert len(heads) == 1, heads
    # the store check reads the history from the files without Alembic: it must be Alembic's
    assert migrate.head_revision() == heads[0]
    walked = {s.revision: tuple(s._all_down_revisions) for s in migrate.script_directory().walk_revisions()}
    assert migrate.revisions() == walked


def test_a_second_head_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9998_side.py").write_text(
        'revision = "9998"\ndown_revision = "0001"\ndef upgrade():\n    pass\n')
    monkeypatch.setattr(migrate, "migrations_dir", lambda: folder)
    with pytest.raises(StoreError, match="2 heads"):
        migrate.head_revision()


def _drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_from_empty_has_no_drift(empty_db_url: str) -> None:
    store = Store(empty_db_url)
    assert store.created
    with store.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        tables = set(sa.inspect(conn).get_table_names())
        views = set(sa.inspect(conn).get_view_names())
    assert EXPECTED_TABLES <= tables
    assert {"frame_labels", "frame_au_labels"} <= views
    assert _drift(store.engine) == []
    # vocabularies were seeded
    assert store.scalar("SELECT name FROM action_unit WHERE id = 12") == "AU12"
    assert store.scalar("SELECT target_id FROM vocab_alias WHERE kind = 'au' AND alias = 'AU01'") == 1
    assert store.scalar(
        "SELECT e.name FROM vocabulary_item i JOIN vocabulary v ON v.id = i.vocabulary_id "
        "JOIN expression e ON e.id = i.expression_id WHERE v.name = 'fer2013' AND i.position = 0"
    ) == "Anger"
    store.close()


def test_downgrade_then_upgrade_again(empty_db_url: str) -> None:
    store = Store(empty_db_url)
    before, after = migrate.downgrade(store.engine, "base")
    assert (before, after) == (migrate.head_revision(), None)
    with store.connect() as conn:
        left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
        assert sa.inspect(conn).get_view_names() == []
    before, after = migrate.upgrade(store.engine)
    assert (before, after) == (None, migrate.head_revision())
    assert _drift(store.engine) == []
    store.close()
    # a store emptied by a downgrade to base opens like a new one
    again = Store(empty_db_url)
    assert not again.created
    again.close()


def test_store_created_on_first_use_only_once(empty_db_url: str) -> None:
    first = Store(empty_db_url)
    second = Store(empty_db_url)
    assert first.created and not second.created
    first.close()
    second.close()


@pytest.fixture
def newer_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The migrations plus one more revision, as a newer affdata would ship them."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    (folder / "versions" / "9999_next.py").write_text(
        f'"""A later change."""\nimport sqlalchemy as sa\nfrom alembic import op\n'
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n'
        "def upgrade():\n    with op.batch_alter_table('subject') as b:\n"
        "        b.add_column(sa.Column('notes', sa.Text(), nullable=True))\n"
        "def downgrade():\n    with op.batch_alter_table('subject') as b:\n"
        "        b.drop_column('notes')\n"
    )
    monkeypatch.setattr(migrate, "migrations_dir", lambda: folder)
    return "9999"


def test_older_store_is_refused_with_the_upgrade_command(db_url: str, newer_code: str) -> None:
    with pytest.raises(SchemaOutdatedError, match="affdata db upgrade"):
        Store(db_url)
    store = Store(db_url, check_schema=False)
    before, after = migrate.upgrade(store.engine)
    assert after == newer_code and before != after
    with store.connect() as conn:
        assert "notes" in {c["name"] for c in sa.inspect(conn).get_columns("subject")}
    store.close()
    Store(db_url).close()  # now current


def test_newer_store_is_refused(db_url: str) -> None:
    store = Store(db_url)
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    store.close()
    with pytest.raises(SchemaTooNewError, match="newer affdata"):
        Store(db_url)


def test_foreign_database_is_not_taken_over(empty_db_url: str) -> None:
    engine = sa.create_engine(Store(empty_db_url, check_schema=False).url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE someone_elses (a INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not an affdata store"):
        Store(empty_db_url)


def _fill_at_0001(store: Store) -> None:
    """Videos, tracks and labels of every kind of source, written as a 0001 store held them."""
    with store.transaction() as conn:
        def one(sql: str, **p: object) -> int:
            return conn.execute(sa.text(sql), p).scalar_one()

        sources = {name: one("INSERT INTO label_source (kind, name, version, created_at) "
                             "VALUES (:k, :n, '', CURRENT_TIMESTAMP) RETURNING id", k=kind, n=name)
                   for name, kind in (("a", "annotator"), ("b", "dataset"), ("m", "model"), ("c", "consensus"))}
        for v in range(2):
            vid = one("INSERT INTO video (name, path, kind, content_hash, size_bytes, container, codec, decoder, "
                      "fps_num, fps_den, frame_count, width, height, sar_num, sar_den, duration_s, is_vfr, "
                      "ingested_at) VALUES (:n, '/x', 'file', :h, 1, 'mp4', 'h264', 'pyav', 25, 1, 6, 8, 8, 1, 1, "
                      "0.24, false, CURRENT_TIMESTAMP) RETURNING id", n=f"v{v}", h=str(v) * 64)
            for f in range(6):
                conn.execute(sa.text("INSERT INTO frame (video_id, idx, pts_s, present) VALUES (:v, :f, :p, :x)"),
                             {"v": vid, "f": f, "p": f / 25, "x": f != 5})
            for track in ("left", "right"):
                tid = one("INSERT INTO track (video_id, name) VALUES (:v, :t) RETURNING id", v=vid, t=track)
                for f in range(5):
                    for name, src in sources.items():
                        if (f + len(name) + tid) % 3 == 0:
                            continue
                        value = ((f * 7 + src * 3 + tid) % 9 - 4) / 5
                        conn.execute(sa.text("INSERT INTO va_label (track_id, frame_idx, source_id, valence, arousal) "
                                             "VALUES (:t, :f, :s, :v, :a)"), {"t": tid, "f": f, "s": src, "v": value, "a": -value})
                        conn.execute(sa.text("INSERT INTO expr_label (track_id, frame_idx, source_id, expr_id) "
                                             "VALUES (:t, :f, :s, :e)"), {"t": tid, "f": f, "s": src, "e": (f + src) % 3})
                        for au in (1, 12):
                            conn.execute(sa.text(
                                "INSERT INTO au_label (track_id, frame_idx, source_id, au_id, present, intensity) "
                                "VALUES (:t, :f, :s, :u, :p, :i)"),
                                {"t": tid, "f": f, "s": src, "u": au, "p": (f + src + au) % 2, "i": (f % 4) * 1.0})


def _answers(store: Store) -> dict[str, list[tuple]]:
    def norm(v: object) -> object:
        return int(v) if isinstance(v, bool) else round(v, 9) if isinstance(v, float) else v

    with store.connect() as conn:
        return {
            view: [tuple(norm(v) for v in r) for r in conn.execute(sa.text(f"SELECT * FROM {view} ORDER BY {order}"))]
            for view, order in (("frame_labels", "track_id, frame_idx"), ("frame_au_labels", "track_id, frame_idx, au_id"),
                                ("va_label", "track_id, frame_idx, source_id"), ("expr_label", "track_id, frame_idx, source_id"),
                                ("au_label", "track_id, frame_idx, source_id, au_id"))
        }


def test_upgrade_from_0001_keeps_every_row_and_every_answer(empty_db_url: str) -> None:
    store = Store(empty_db_url, check_schema=False)
    migrate.upgrade(store.engine, "0001")
    _fill_at_0001(store)
    before = _answers(store)
    assert len(before["frame_labels"]) == 24 and len(before["va_label"]) > 20
    assert any(r[10] for r in before["frame_labels"]) and before["frame_au_labels"]
    with pytest.raises(SchemaOutdatedError):
        Store(empty_db_url)
    assert migrate.upgrade(store.engine, "0002") == ("0001", "0002")
    assert _answers(store) == before
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM consensus_frame")).scalar_one() == 24
    # and back: the v1 views answer the same again
    migrate.downgrade(store.engine, "0001")
    assert _answers(store) == before
    store.close()


def test_migration_0001_seeds_frozen_vocabularies_equal_to_vocab_py_today() -> None:
    """0001 carries its own copy of the vocabularies: vocab.py may change, 0001 may not.

    When this fails because vocab.py changed, add a migration that inserts the change; do not
    edit 0001 (stores created before the change would differ from stores created after).
    """
    import importlib.util

    from affdata import vocab
    from affdata.migrate import migrations_dir

    path = migrations_dir() / "versions" / "0001_initial_schema.py"
    assert "from affdata import vocab" not in path.read_text() and "import affdata.vocab" not in path.read_text()
    spec = importlib.util.spec_from_file_location("migration_0001", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert m.ACTION_UNITS_V1 == vocab.ACTION_UNITS and m.EXPRESSIONS_V1 == vocab.EXPRESSIONS
    assert m.AU_SETS_V1 == vocab.AU_SETS and m.EXPRESSION_ORDERS_V1 == vocab.EXPRESSION_ORDERS
    assert m.EXPRESSION_ALIASES_V1 == vocab.EXPRESSION_ALIASES


def test_migrate_and_db_do_not_import_each_other() -> None:
    import subprocess
    import sys

    code = "import sys, affdata.migrate; print('affdata.db' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
