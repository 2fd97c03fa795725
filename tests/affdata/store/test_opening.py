"""Which commands may create a store, what is refused before it is touched, and the store's own
failures (unknown revision, damaged or full store) as one line instead of a traceback."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from affdata import migrate
from affdata.bulk import insert_rows
from affdata.db import Store
from affdata.errors import NoStoreError, SchemaTooNewError, StoreError, StoreFullError
from affdata.schema import Frame
from tests.affdata.store.cli_helpers import affdata, row_counts
from tests.affdata.store.test_store import make_video

READ_COMMANDS = {
    "stats": ["stats"],
    "sql": ["sql", "SELECT 1"],
    "split show": ["split", "show", "official"],
    "db current": ["db", "current"],
    "export": ["export", "--split", "official", "--part", "train", "--out", "{tmp}/out"],
    "export labels": ["export", "labels", "{tmp}/labels"],
    "labels agreement": ["labels", "agreement"],
}


def _args(args: list[str], tmp: Path) -> list[str]:
    return [a.format(tmp=tmp) for a in args]


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", READ_COMMANDS)
def test_read_commands_never_create_a_store(empty_db_url: str, name: str, tmp_path: Path,
                                            capsys, monkeypatch) -> None:
    args = _args(READ_COMMANDS[name], tmp_path) + ["--db", empty_db_url]
    line = affdata(capsys, monkeypatch, *args).one_line_error()
    assert "there is no affdata store" in line and "creates one" in line
    if empty_db_url.startswith("sqlite"):
        assert not Path(sa.engine.make_url(empty_db_url).database).exists()
    else:
        assert _tables(empty_db_url) == set()
    assert not (tmp_path / "out").exists() and not (tmp_path / "labels").exists()


def test_a_typo_in_db_creates_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = affdata(capsys, monkeypatch, "sql", "--db", "typo.db", "SELECT 1").one_line_error()
    assert "typo.db (no such file)" in line
    with pytest.raises(NoStoreError):
        Store(str(tmp_path / "missing" / "x.db"), create=False)
    assert list(tmp_path.iterdir()) == []


def test_write_commands_create_the_store_and_say_so(empty_db_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "videos").mkdir()
    outcome = affdata(capsys, monkeypatch, "ingest", "videos", str(tmp_path / "videos"), "--db", empty_db_url)
    assert f"created a new affdata store at {Store(empty_db_url).display_url}" in outcome.err
    with Store(empty_db_url, create=False) as store, store.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    # the second time it exists: nothing is announced
    outcome = affdata(capsys, monkeypatch, "ingest", "videos", str(tmp_path / "videos"), "--db", empty_db_url)
    assert "created" not in outcome.err


def test_db_upgrade_creates_an_empty_database(empty_db_url: str, capsys, monkeypatch) -> None:
    outcome = affdata(capsys, monkeypatch, "db", "upgrade", "--db", empty_db_url)
    assert outcome.code == 0 and "created a new affdata store" in outcome.err
    assert "video" in _tables(empty_db_url)


# --- someone else's database -----------------------------------------------------------------


def _foreign(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA journal_mode = DELETE")
        conn.exec_driver_sql("CREATE TABLE someone_elses (a INTEGER)")
        conn.exec_driver_sql("INSERT INTO someone_elses VALUES (1)")
    engine.dispose()


def _fingerprint(url: str) -> object:
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database)
        files = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
        return files, hashlib.sha256(path.read_bytes()).hexdigest()
    return row_counts(url)


@pytest.mark.parametrize("args", [["db", "upgrade"], ["db", "current"], ["stats"], ["sql", "SELECT 1"],
                                  ["ingest", "videos", "{tmp}"], ["db", "grant-reader"]],
                         ids=lambda a: " ".join(a[:2]))
def test_another_applications_database_is_refused_and_left_as_it_was(
        empty_db_url: str, args: list[str], tmp_path: Path, capsys, monkeypatch) -> None:
    _foreign(empty_db_url)
    before = _fingerprint(empty_db_url)
    line = affdata(capsys, monkeypatch, *_args(args, tmp_path), "--db", empty_db_url).one_line_error()
    assert "not an affdata store" in line
    assert _fingerprint(empty_db_url) == before
    assert _tables(empty_db_url) == {"someone_elses"}
    if empty_db_url.startswith("sqlite"):
        with sqlite3.connect(sa.engine.make_url(empty_db_url).database) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_upgrade_refuses_a_foreign_database_in_the_library_too(empty_db_url: str) -> None:
    _foreign(empty_db_url)
    engine = sa.create_engine(empty_db_url)
    with pytest.raises(StoreError, match="not an affdata store"):
        migrate.upgrade(engine)
    engine.dispose()
    assert _tables(empty_db_url) == {"someone_elses"}


def test_another_alembic_history_is_not_taken_for_a_newer_affdata(empty_db_url: str, capsys, monkeypatch) -> None:
    engine = sa.create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('abc123')")
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER)")
    engine.dispose()
    for args in (["db", "upgrade"], ["stats"]):
        line = affdata(capsys, monkeypatch, *args, "--db", empty_db_url).one_line_error()
        assert "not an affdata store" in line
    assert _tables(empty_db_url) == {"alembic_version", "orders"}


# --- the store's own failures ----------------------------------------------------------------


def test_upgrade_of_a_store_stamped_by_a_newer_affdata(db_url: str, capsys, monkeypatch) -> None:
    with Store(db_url) as store, store.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    line = affdata(capsys, monkeypatch, "db", "upgrade", "--db", db_url).one_line_error()
    assert "f00dfeed" in line and "newer affdata" in line
    with pytest.raises(SchemaTooNewError):
        migrate.upgrade(Store(db_url, check_schema=False).engine)
    info = affdata(capsys, monkeypatch, "db", "current", "--json", "--db", db_url)
    assert info.code == 0 and '"current": "f00dfeed"' in info.out


def test_upgrade_to_an_unknown_revision(db_url: str, capsys, monkeypatch) -> None:
    line = affdata(capsys, monkeypatch, "db", "upgrade", "--revision", "nope", "--db", db_url).one_line_error()
    assert "cannot migrate" in line and "nope" in line


@pytest.mark.parametrize("command", [["stats"], ["ingest", "videos", "{tmp}"], ["db", "upgrade"], ["db", "current"]],
                         ids=lambda a: " ".join(a[:2]))
def test_a_text_file_a_cut_off_file_and_a_folder_as_db(command: list[str], tmp_path: Path, backends,
                                                       capsys, monkeypatch) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n" * 20)
    good = Path(sa.engine.make_url(backends.migrated("sqlite", tmp_path)).database)
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    folder = tmp_path / "folder.db"
    folder.mkdir()
    for path, words in ((text, "not a SQLite database"), (cut, "cut off"), (folder, "is a folder")):
        before = path.read_bytes() if path.is_file() else None
        line = affdata(capsys, monkeypatch, *_args(command, tmp_path), "--db", str(path)).one_line_error()
        assert words in line and str(path) in line
        if before is not None:
            assert path.read_bytes() == before
        assert not Path(f"{path}-wal").exists()


def test_a_damaged_store_is_one_line(tmp_path: Path, backends) -> None:
    """A store whose header is intact but whose pages are not: refused when read, not a traceback."""
    path = Path(sa.engine.make_url(backends.migrated("sqlite", tmp_path)).database)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xff" * (len(data) - page)  # garbage over every page but the first
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged|cannot read"):
        with Store(str(path), create=False) as store:
            for table in sa.inspect(store.engine).get_table_names():
                store.scalar(f"SELECT COUNT(*) FROM {table}")


@pytest.fixture
def tiny_sqlite(tmp_path: Path, backends) -> Store:
    """A SQLite store that cannot grow by more than a few pages: a full disk, as SQLite sees it."""
    store = Store(backends.migrated("sqlite", tmp_path))
    pages = store.scalar("PRAGMA page_count")

    @event.listens_for(store.engine, "connect")
    def _limit(dbapi_conn, _record) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    store.engine.dispose()
    return store


def test_disk_full_is_a_store_error_and_keeps_nothing(tiny_sqlite: Store) -> None:
    video, _ = make_video(tiny_sqlite, frames=2)
    before = row_counts(tiny_sqlite.url)
    rows = [(video, i, i / 25.0, 1) for i in range(2, 200_000)]
    with pytest.raises(StoreFullError, match="is full .*database or disk is full.*rolled back"):
        with tiny_sqlite.transaction() as conn:  # the raw driver path (bulk loads)
            insert_rows(conn, "frame", ["video_id", "idx", "pts_s", "present"], rows)
    with pytest.raises(StoreFullError):
        with tiny_sqlite.transaction() as conn:  # the SQLAlchemy path
            conn.execute(sa.insert(Frame), [{"video_id": video, "idx": i, "pts_s": 0.0} for _, i, *_ in rows])
    assert row_counts(tiny_sqlite.url) == before
    tiny_sqlite.close()


def test_disk_full_through_the_cli_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    from sqlalchemy.pool import Pool

    def _limit(dbapi_conn, _record) -> None:
        if type(dbapi_conn).__module__ == "sqlite3":
            dbapi_conn.execute("PRAGMA max_page_count = 8")

    event.listen(Pool, "connect", _limit)
    try:
        line = affdata(capsys, monkeypatch, "db", "upgrade", "--db", str(tmp_path / "s.db")).one_line_error()
    finally:
        event.remove(Pool, "connect", _limit)
    assert "is full" in line and "free disk space" in line
    shutil.rmtree(tmp_path)
