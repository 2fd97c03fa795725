"""Every endpoint of the studio, and its access rules, on SQLite and PostgreSQL.

Each refusal is checked twice: the status code, and that nothing was written (drafts,
submissions, labels and assignment states are counted before and after).
"""

from __future__ import annotations

import pytest

from affdata.annotate import users
from affdata.errors import AuthError
from tests.affdata.annotate.conftest import PASSWORDS, Client, Studio


def _state(studio: Studio) -> tuple:
    with studio.store.connect() as conn:
        q = conn.exec_driver_sql
        return (q("SELECT COUNT(*) FROM draft").scalar(), q("SELECT COUNT(*) FROM submission").scalar(),
                q("SELECT COUNT(*) FROM va_label").scalar(), q("SELECT COUNT(*) FROM expr_label").scalar(),
                tuple(q("SELECT id, status FROM assignment ORDER BY id").all()),
                q("SELECT COUNT(*) FROM campaign").scalar(), q("SELECT COUNT(*) FROM assignment").scalar())


def _trace(n: int) -> dict:
    return {"valence": [round(-0.5 + i / n, 3) for i in range(n)], "arousal": [0.25] * n}


def test_ping_and_static_need_no_login(clients: dict[str, Client]) -> None:
    anon = clients["anon"]
    assert anon.get("/api/ping").json() == {"ok": True}
    page = anon.get("/static/index.html")
    assert page.status_code == 200 and "<script type=\"module\"" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert anon.get("/", follow_redirects=False).status_code in (302, 307)


def test_login_sets_a_strict_httponly_cookie_and_csrf(app) -> None:
    from starlette.testclient import TestClient

    r = TestClient(app).post("/api/login", json={"name": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert len(r.json()["csrf"]) >= 32 and r.json()["role"] == "annotator"


def test_wrong_password_and_lockout(app, studio: Studio) -> None:
    from starlette.testclient import TestClient

    http = TestClient(app)
    for _ in range(users.MAX_FAILED):
        assert http.post("/api/login", json={"name": "alice", "password": "nope-nope"}).status_code == 401
    # locked now: even the right password is refused until the lock ends
    r = http.post("/api/login", json={"name": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 401 and "locked" in r.json()["error"]
    # an unknown name gets the same answer as a wrong password
    assert http.post("/api/login", json={"name": "mallory", "password": "x" * 10}).json()["error"] == "wrong name or password"
    with pytest.raises(AuthError):
        users.log_in(studio.store, "alice", PASSWORDS["alice"])


def test_login_from_a_form_is_refused(app) -> None:
    from starlette.testclient import TestClient

    r = TestClient(app).post("/api/login", data={"name": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 422 and "set-cookie" not in r.headers


def test_per_address_login_limit(app, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from affdata.annotate.web import app as web

    monkeypatch.setattr(web, "IP_FAILURES", 3)
    http = TestClient(app)
    for name in ("u1", "u2", "u3"):
        assert http.post("/api/login", json={"name": name, "password": "whatever1"}).status_code == 401
    assert http.post("/api/login", json={"name": "bob", "password": PASSWORDS["bob"]}).status_code == 429


def test_me_and_logout(clients: dict[str, Client]) -> None:
    alice = clients["alice"]
    assert alice.get("/api/me").json()["name"] == "alice"
    assert alice.post("/api/logout", json={}, csrf="wrong").status_code == 403
    assert alice.post("/api/logout", json={}).status_code == 200
    assert alice.get("/api/me").status_code == 401


def test_own_assignments_only(clients: dict[str, Client], studio: Studio) -> None:
    mine = clients["alice"].get("/api/assignments").json()
    assert [a["id"] for a in mine] == [studio.alice_va]
    bobs = {a["id"] for a in clients["bob"].get("/api/assignments").json()}
    assert bobs == {studio.bob_va, studio.bob_expr}
    item = clients["alice"].get(f"/api/assignments/{studio.alice_va}").json()
    assert item["media"]["frame_count"] == 72 and len(item["media"]["pts_s"]) == 72
    assert item["video_url"] == f"/api/videos/{studio.video}/media"
    assert "path" not in str(item).lower().replace("video_url", "")  # no file path anywhere
    assert "/work/" not in str(item)


@pytest.mark.parametrize("who", ["anon", "alice"])
def test_reading_anothers_assignment_is_refused(clients: dict[str, Client], studio: Studio, who: str) -> None:
    for aid in (studio.bob_va, studio.bob_expr, 999999):
        r = clients[who].get(f"/api/assignments/{aid}")
        assert r.status_code == (401 if who == "anon" else 404)
        assert "bob" not in r.text


def test_writing_anothers_draft_or_submission_is_refused(clients: dict[str, Client], studio: Studio) -> None:
    before = _state(studio)
    alice = clients["alice"]
    # B's assignment in the same campaign, B's draft of another campaign, an id that does not exist
    for aid in (studio.bob_va, studio.bob_expr, 424242):
        assert alice.put(f"/api/assignments/{aid}/draft", json={"seq": 1, "data": _trace(72)}).status_code == 404
        assert alice.post(f"/api/assignments/{aid}/submit", json={"data": _trace(72)}).status_code == 404
    # an admin may look at any assignment but writes only their own
    root = clients["root"]
    assert root.get(f"/api/assignments/{studio.bob_va}").json()["readonly"] is True
    assert root.put(f"/api/assignments/{studio.bob_va}/draft", json={"seq": 1, "data": {}}).status_code == 404
    assert _state(studio) == before


def test_no_cookie_or_wrong_csrf_writes_nothing(clients: dict[str, Client], studio: Studio) -> None:
    before = _state(studio)
    alice, anon = clients["alice"], clients["anon"]
    url = f"/api/assignments/{studio.alice_va}"
    assert anon.put(url + "/draft", json={"seq": 1, "data": {}}).status_code == 401
    assert anon.post(url + "/submit", json={"data": _trace(72)}).status_code == 401
    for bad in ("", "x" * 43, clients["bob"].csrf):  # missing, made up, another session's
        assert alice.put(url + "/draft", json={"seq": 1, "data": {}}, csrf=bad).status_code == 403
        assert alice.post(url + "/submit", json={"data": _trace(72)}, csrf=bad).status_code == 403
        assert alice.post("/api/admin/campaigns", json={"name": "x", "task": "va"}, csrf=bad).status_code == 403
    assert clients["root"].post("/api/admin/campaigns", json={"name": "x", "task": "va", "videos": ["pyfeat__no_face"]},
                                csrf="nope").status_code == 403
    assert _state(studio) == before


def test_videos_by_id_only_for_assigned_users_with_ranges(clients: dict[str, Client], studio: Studio) -> None:
    alice = clients["alice"]
    r = alice.get(f"/api/videos/{studio.video}/media", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["content-range"].startswith("bytes 0-99/")
    assert r.headers["content-type"] == "video/mp4"
    full = alice.get(f"/api/videos/{studio.video}/media")
    assert full.status_code == 200 and full.content[:100] == r.content
    # a video of B's assignment, a video never assigned, no video at all, no login
    for vid in (studio.video2, studio.unassigned_video, 987654):
        assert alice.get(f"/api/videos/{vid}/media").status_code == 404
    assert clients["anon"].get(f"/api/videos/{studio.video}/media").status_code == 401
    assert clients["bob"].get(f"/api/videos/{studio.video2}/media").status_code == 200
    assert clients["root"].get(f"/api/videos/{studio.unassigned_video}/media").status_code == 200


@pytest.mark.parametrize("path", [
    "/api/videos/..%2F..%2Fetc%2Fpasswd/media", "/api/videos/%2Fetc%2Fpasswd/media",
    "/api/videos/1.0/media", "/api/videos/-1/media", "/api/assignments/..%2F1",
    "/static/..%2F..%2F..%2Fdb.py", "/static/../app.py",
])
def test_a_path_in_place_of_an_id_is_not_found(clients: dict[str, Client], path: str) -> None:
    r = clients["root"].get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert b"sqlalchemy" not in r.content and b"import" not in r.content


def test_draft_is_idempotent_and_ordered(clients: dict[str, Client], studio: Studio) -> None:
    alice = clients["alice"]
    url = f"/api/assignments/{studio.alice_va}/draft"
    assert alice.put(url, json={"seq": 5, "data": {"v": 5}}).json() == {"seq": 5, "saved": True}
    assert alice.put(url, json={"seq": 5, "data": {"v": 5}}).json() == {"seq": 5, "saved": False}
    assert alice.put(url, json={"seq": 3, "data": {"v": 3}}).json() == {"seq": 5, "saved": False}  # late retry
    assert alice.put(url, json={"seq": 6, "data": {"v": 6}}).json() == {"seq": 6, "saved": True}
    item = alice.get(f"/api/assignments/{studio.alice_va}").json()
    assert item["draft"] == {"seq": 6, "data": {"v": 6}} and item["status"] == "draft"
    assert alice.put(url, json={"seq": -1, "data": {}}).status_code == 422
    assert alice.put(url, json={"seq": 7, "data": [1, 2]}).status_code == 422
    # bob's own assignment of the same item has no draft: drafts never cross
    assert clients["bob"].get(f"/api/assignments/{studio.bob_va}").json()["draft"] is None


def test_submit_va_writes_the_annotator_source(clients: dict[str, Client], studio: Studio) -> None:
    alice = clients["alice"]
    url = f"/api/assignments/{studio.alice_va}/submit"
    trace = _trace(72)
    trace["valence"][10] = None  # a frame the browser skipped: interpolated
    trace["arousal"][10] = None
    r = alice.post(url, json={"data": trace})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "imported", "frames": 72, "interpolated": 1, "partial": False, "rows": 72}
    with studio.store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT l.frame_idx, l.valence, s.kind, s.name, i.key, i.path FROM va_label l "
            "JOIN label_source s ON s.id = l.source_id JOIN label_import i ON i.id = l.import_id ORDER BY l.frame_idx").all()
        sub = conn.exec_driver_sql("SELECT s.import_id, i.key FROM submission s JOIN label_import i ON i.id = s.import_id").one()
    assert len(rows) == 72 and {(r.kind, r.name) for r in rows} == {("annotator", "alice")}
    assert rows[10].valence == pytest.approx((trace["valence"][9] + trace["valence"][11]) / 2)
    assert rows[0].key == f"campaign/va1/assignment/{studio.alice_va}" == sub.key
    assert rows[0].path == f"annotate://campaign/va1/assignment/{studio.alice_va}"
    assert alice.get("/api/assignments").json()[0]["status"] == "submitted"
    # the same again is a no-op; a changed trace replaces the old rows in one go
    assert alice.post(url, json={"data": trace}).json()["status"] == "unchanged"
    trace["arousal"] = [-0.75] * 72
    assert alice.post(url, json={"data": trace}).json()["status"] == "replaced"
    with studio.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*), MIN(arousal), MAX(arousal) FROM va_label").one() == (72, -0.75, -0.75)
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM label_import").scalar() == 1


@pytest.mark.parametrize("bad, message", [
    ({"valence": [0.1] * 71, "arousal": [0.1] * 72}, "list of 72"),
    ({"valence": [1.5] + [0.1] * 71, "arousal": [0.1] * 72}, "outside"),
    ({"valence": ["x"] * 72, "arousal": [0.1] * 72}, "not a number"),
    ({"valence": [None] * 30 + [0.1] * 42, "arousal": [0.1] * 72}, "30 frames are not traced"),
    ([1, 2], "JSON object"),
])
def test_bad_va_submissions_are_refused(clients: dict[str, Client], studio: Studio, bad, message: str) -> None:
    before = _state(studio)
    r = clients["alice"].post(f"/api/assignments/{studio.alice_va}/submit", json={"data": bad})
    assert r.status_code == 422 and message in r.json()["error"]
    assert _state(studio) == before


def test_partial_va_submission(clients: dict[str, Client], studio: Studio) -> None:
    trace = {"valence": [None] * 30 + [0.1] * 42, "arousal": [None] * 30 + [0.2] * 42}
    r = clients["alice"].post(f"/api/assignments/{studio.alice_va}/submit", json={"data": trace, "partial": True})
    assert r.json()["frames"] == 42 and r.json()["partial"] is True


def test_expression_ranges(clients: dict[str, Client], studio: Studio) -> None:
    bob = clients["bob"]
    url = f"/api/assignments/{studio.bob_expr}/submit"
    n = 78
    assert bob.post(url, json={"data": {"ranges": [{"start": 0, "end": 40, "expr": 4}]}}).status_code == 422
    before = _state(studio)
    for bad in ([{"start": 0, "end": 78, "expr": 4}], [{"start": 5, "end": 2, "expr": 4}],
                [{"start": 0, "end": 77, "expr": 8}],  # Contempt is not an abaw2020 class
                [{"start": 0, "end": 50, "expr": 4}, {"start": 40, "end": 77, "expr": 6}]):
        assert bob.post(url, json={"data": {"ranges": bad}}).status_code == 422
    assert _state(studio) == before
    ok = [{"start": 0, "end": 40, "expr": 4}, {"start": 41, "end": n - 1, "expr": 0}]
    r = bob.post(url, json={"data": {"ranges": ok}})
    assert r.status_code == 200 and r.json()["rows"] == n
    with studio.store.connect() as conn:
        got = dict(conn.exec_driver_sql("SELECT expr_id, COUNT(*) FROM expr_label GROUP BY expr_id").all())
    assert got == {4: 41, 0: 37}


def test_admin_endpoints_need_the_admin_role(clients: dict[str, Client], studio: Studio) -> None:
    alice, root = clients["alice"], clients["root"]
    before = _state(studio)
    for url in ("/api/admin/users", "/api/admin/campaigns", f"/api/admin/campaigns/{studio.va}/progress",
                f"/api/admin/campaigns/{studio.va}/review?item=1"):
        assert alice.get(url).status_code == 403
        assert clients["anon"].get(url).status_code == 401
        assert root.get(url).status_code == 200, url
    assert alice.post("/api/admin/campaigns", json={"name": "c", "task": "va", "videos": ["pyfeat__no_face"]}).status_code == 403
    assert alice.post(f"/api/admin/campaigns/{studio.va}/assign", json={"users": ["alice"]}).status_code == 403
    assert alice.post(f"/api/admin/campaigns/{studio.va}/consensus", json={}).status_code == 403
    assert _state(studio) == before
    assert {u["name"] for u in root.get("/api/admin/users").json()} == {"alice", "bob", "root"}


def test_admin_creates_assigns_and_watches(clients: dict[str, Client], studio: Studio) -> None:
    root = clients["root"]
    r = root.post("/api/admin/campaigns", json={"name": "au1", "task": "au", "videos": ["pyfeat__no_face"],
                                                "classes": ["AU12", "AU6"], "per_item": 2})
    assert r.status_code == 201 and r.json()["class_names"] == ["AU12", "AU6"]
    cid = r.json()["id"]
    assert root.post(f"/api/admin/campaigns/{cid}/assign", json={"users": ["alice", "bob"]}).json() == {"added": 2}
    assert root.post(f"/api/admin/campaigns/{cid}/assign", json={"users": ["alice", "bob"]}).json() == {"added": 0}
    assert root.post("/api/admin/campaigns", json={"name": "au1", "task": "au", "videos": ["x"]}).status_code == 422
    assert root.post("/api/admin/campaigns", json={"name": "z", "task": "va", "videos": ["nope"]}).status_code == 404
    mine = [a for a in clients["alice"].get("/api/assignments").json() if a["campaign"]["name"] == "au1"][0]
    n = clients["alice"].get(f"/api/assignments/{mine['id']}").json()["media"]["frame_count"]
    r = clients["alice"].post(f"/api/assignments/{mine['id']}/submit",
                              json={"data": {"ranges": [{"start": 2, "end": 9, "aus": [12]}]}})
    assert r.status_code == 200 and r.json()["rows"] == 2 * n
    progress = root.get(f"/api/admin/campaigns/{cid}/progress").json()
    assert progress["users"] == {"alice": {"open": 0, "draft": 0, "submitted": 1},
                                 "bob": {"open": 1, "draft": 0, "submitted": 0}}
    with studio.store.connect() as conn:
        present = conn.exec_driver_sql("SELECT au_id, SUM(present) FROM au_label GROUP BY au_id ORDER BY au_id").all()
    assert present == [(6, 0), (12, 8)]


def test_review_and_consensus(clients: dict[str, Client], studio: Studio) -> None:
    n = 72
    base = [0.8 * ((i % 24) / 12 - 1) for i in range(n)]
    clients["alice"].post(f"/api/assignments/{studio.alice_va}/submit",
                          json={"data": {"valence": base, "arousal": [0.1 + v / 4 for v in base]}})
    late = base[-3:] + base[:-3]  # bob reacts 3 frames later
    clients["bob"].post(f"/api/assignments/{studio.bob_va}/submit",
                        json={"data": {"valence": late, "arousal": [0.1 + v / 4 for v in late]}})
    root = clients["root"]
    item = root.get(f"/api/admin/campaigns/{studio.va}/progress").json()["items"][0]
    assert item["submitted"] == 2
    r = root.get(f"/api/admin/campaigns/{studio.va}/review?item={item['item']}").json()
    assert r["annotators"] == ["alice", "bob"] and len(r["consensus"]["valence"]) == n
    assert r["lags_s"]["bob"] == pytest.approx(3 / 30, abs=1e-6) and r["lags_s"]["alice"] == pytest.approx(-3 / 30, abs=1e-6)
    assert r["pairs"][0]["ccc_valence"] < 0.5 and r["flagged"] is True
    assert root.get(f"/api/admin/campaigns/{studio.va}/review?item=99999").status_code == 404
    assert root.get(f"/api/admin/campaigns/{studio.va}/review?item=x").status_code == 422
    done = root.post(f"/api/admin/campaigns/{studio.va}/consensus", json={}).json()
    assert done["source"] == "va1-consensus" and done["frames"]["va"] == n


def test_a_missing_video_file_does_not_leak_its_path(clients: dict[str, Client], studio: Studio) -> None:
    with studio.store.transaction() as conn:
        conn.exec_driver_sql(f"UPDATE video SET path = '/nowhere/secret-folder/clip.mp4' WHERE id = {studio.video}")
    r = clients["alice"].get(f"/api/videos/{studio.video}/media")
    assert r.status_code == 500 and "secret-folder" not in r.text and "cannot be played" in r.json()["error"]


def test_labels_and_their_submission_commit_together(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while recording the submission rolls the labels back with it: one transaction."""
    from affdata.annotate import submit as submitting
    from affdata.annotate.assignments import assignments_of
    from affdata.annotate.users import get_user

    a = next(x for x in assignments_of(studio.store, get_user(studio.store, "alice")) if x.id == studio.alice_va)
    real_utcnow = submitting.utcnow

    def broken() -> object:
        raise RuntimeError("the disk went away while recording the submission")

    monkeypatch.setattr(submitting, "utcnow", broken)
    with pytest.raises(RuntimeError, match="disk went away"):
        submitting.submit(studio.store, a, _trace(72))
    with studio.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM va_label").scalar() == 0
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM label_import").scalar() == 0
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM submission").scalar() == 0
    monkeypatch.setattr(submitting, "utcnow", real_utcnow)
    assert submitting.submit(studio.store, a, _trace(72)).status == "imported"
    with studio.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM submission").scalar() == 1
