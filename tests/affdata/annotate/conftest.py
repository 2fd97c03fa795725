"""A store with two real H.264 clips, three users and two campaigns; a logged-in API client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from affdata.annotate import assignments, campaigns, users
from affdata.db import Store
from affdata.videos import ingest_videos

CLIP = "pyfeat__single_face.mp4"  # 72 frames, 2.4 s, 640x360, H.264
CLIP2 = "liveportrait__driving_d0.mp4"  # 78 frames, 25 fps, 512x512, H.264
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "root": "root-secret-333"}


@dataclass
class Studio:
    store: Store
    va: int  # campaign ids
    expr: int
    alice_va: int  # assignment ids
    bob_va: int
    bob_expr: int
    video: int  # video ids
    video2: int
    unassigned_video: int


def build_studio(store: Store, videos: Path) -> Studio:
    report = ingest_videos(store, [videos / CLIP, videos / CLIP2, videos / "pyfeat__no_face.mp4"])
    assert report.ok, report.outcomes
    for name, pw in PASSWORDS.items():
        users.add_user(store, name, "admin" if name == "root" else "annotator", pw)
    clip, clip2 = Path(CLIP).stem, Path(CLIP2).stem
    va = campaigns.create_campaign(store, "va1", "va", videos=[clip], per_item=2)
    assert assignments.assign_round_robin(store, "va1", ["alice", "bob"]) == 2
    ex = campaigns.create_campaign(store, "ex1", "expr", videos=[clip2], classes=["abaw2020"])
    bob_expr = assignments.assign(store, "ex1", "bob", clip2)
    with store.connect() as conn:
        ids = {r.name: r.id for r in conn.exec_driver_sql("SELECT id, name FROM video")}
    mine = {a.user: a.id for a in assignments.assignments_of(store, users.get_user(store, "alice"))
            + assignments.assignments_of(store, users.get_user(store, "bob")) if a.campaign.name == "va1"}
    return Studio(store, va.id, ex.id, mine["alice"], mine["bob"], bob_expr, ids[clip], ids[clip2],
                  ids["pyfeat__no_face"])


@pytest.fixture
def studio(store: Store, shared_data: Path) -> Studio:
    return build_studio(store, shared_data / "videos")


class Client:
    """A TestClient that logs in and sends the CSRF token on writes."""

    def __init__(self, app, name: str | None = None) -> None:
        from starlette.testclient import TestClient

        self.http = TestClient(app)
        self.csrf = ""
        if name:
            r = self.http.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
            assert r.status_code == 200, r.text
            self.csrf = r.json()["csrf"]

    def get(self, url: str, **kw):
        return self.http.get(url, **kw)

    def put(self, url: str, json=None, csrf: str | None = None, **kw):
        return self.http.put(url, json=json, headers={"X-CSRF-Token": self.csrf if csrf is None else csrf}, **kw)

    def post(self, url: str, json=None, csrf: str | None = None, **kw):
        return self.http.post(url, json=json, headers={"X-CSRF-Token": self.csrf if csrf is None else csrf}, **kw)


@pytest.fixture
def app(studio: Studio, tmp_path: Path):
    from affdata.annotate.web import create_app

    return create_app(studio.store, proxy_dir=tmp_path / "proxies")


@pytest.fixture
def clients(app) -> Iterator[dict[str, Client]]:
    yield {name: Client(app, name) for name in PASSWORDS} | {"anon": Client(app)}
