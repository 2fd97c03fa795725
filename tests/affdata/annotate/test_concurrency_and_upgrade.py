"""Two annotators at once over a real server on PostgreSQL; upgrading a store of the previous
schema keeps every row; importing the library never imports the web framework."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata import migrate
from affdata.db import Store
from tests.affdata.annotate.conftest import PASSWORDS, build_studio
from tests.conftest import BACKENDS


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among AFFDATA_TEST_BACKENDS")
def test_two_annotators_at_once_on_postgresql(backends, tmp_path: Path, shared_data: Path) -> None:
    import httpx

    from affdata.annotate.web.serve import BackgroundServer

    store = Store(backends.migrated("postgresql", tmp_path))
    studio = build_studio(store, shared_data / "videos")
    n = 72
    traces = {"alice": [round(-0.9 + 1.8 * i / n, 3) for i in range(n)], "bob": [round(0.9 - 1.8 * i / n, 3) for i in range(n)]}
    ids = {"alice": studio.alice_va, "bob": studio.bob_va}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name: str, url: str) -> None:
        try:
            with httpx.Client(base_url=url) as http:
                csrf = http.post("/api/login", json={"name": name, "password": PASSWORDS[name]}).json()["csrf"]
                head = {"X-CSRF-Token": csrf}
                barrier.wait()
                v = traces[name]
                for seq in range(1, 21):  # drafts growing frame by frame, interleaved with the other's
                    part = v[: seq * 3] + [None] * (n - seq * 3)
                    r = http.put(f"/api/assignments/{ids[name]}/draft", headers=head,
                                 json={"seq": seq, "data": {"valence": part, "arousal": part}})
                    assert r.status_code == 200 and r.json()["saved"], r.text
                r = http.post(f"/api/assignments/{ids[name]}/submit", headers=head,
                              json={"data": {"valence": v, "arousal": [x / 2 for x in v]}})
                assert r.status_code == 200 and r.json()["rows"] == n, r.text
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    with BackgroundServer(store, proxy_dir=tmp_path / "proxies") as url:
        threads = [threading.Thread(target=work, args=(name, url)) for name in traces]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    with store.connect() as conn:
        for name in traces:
            rows = conn.execute(sa.text(
                "SELECT l.frame_idx, l.valence, l.arousal FROM va_label l JOIN label_source s ON s.id = l.source_id "
                "WHERE s.name = :n AND s.kind = 'annotator' ORDER BY l.frame_idx"), {"n": name}).all()
            assert [r.valence for r in rows] == pytest.approx(traces[name])
            assert [r.arousal for r in rows] == pytest.approx([x / 2 for x in traces[name]])
        drafts = dict(conn.execute(sa.text("SELECT assignment_id, seq FROM draft")).all())
        assert drafts == {ids["alice"]: 20, ids["bob"]: 20}
        assert conn.execute(sa.text("SELECT COUNT(*) FROM submission")).scalar() == 2
    store.close()


TABLES = ["video", "frame", "track", "label_source", "label_import", "va_label", "action_unit", "expression",
          "vocabulary", "vocabulary_item", "vocab_alias"]


def _rows(store: Store) -> dict[str, list[tuple]]:
    with store.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2"))] for t in TABLES}


def test_upgrade_from_the_previous_schema_keeps_every_row(empty_db_url: str, shared_data: Path, tmp_path: Path) -> None:
    from affdata.labels import import_labels
    from affdata.video import probe
    from affdata.videos import register

    store = Store(empty_db_url, check_schema=False)
    # a store as the revision before the studio's left it (today's code writes its rows)
    migrate.upgrade(store.engine, migrate.revisions()["0006"][0])
    with store.connect() as conn:
        assert "app_user" not in sa.inspect(conn).get_table_names()
    register(store, probe(shared_data / "videos" / "pyfeat__single_face.mp4"))
    csv = tmp_path / "va.csv"
    csv.write_text("video,frame,valence,arousal\n" + "".join(f"pyfeat__single_face,{i},0.1,0.2\n" for i in range(72)))
    assert import_labels(store, [csv], source="old", fmt="generic").ok
    before = _rows(store)
    assert len(before["va_label"]) == 72 and len(before["frame"]) == 72
    migrate.upgrade(store.engine)
    with store.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert "app_user" in sa.inspect(conn).get_table_names()
    assert _rows(store) == before
    store.close()


def test_importing_the_library_does_not_import_the_web_framework() -> None:
    code = ("import sys, affdata.annotate.users, affdata.annotate.campaigns, affdata.annotate.assignments, "
            "affdata.annotate.drafts, affdata.annotate.submit, affdata.annotate.review, affdata.annotate.proxy, "
            "cli.affdata_app; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'fastapi', 'httpx')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
