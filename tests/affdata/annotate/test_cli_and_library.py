"""The ``affdata annotate`` commands, and the library's pure parts (passwords, gap filling, lags)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affdata.annotate import assignments, submit, users
from affdata.annotate.review import reaction_lag
from affdata.annotate.submit import fill_gaps
from cli.affdata_app import app
from tests.affdata.annotate.conftest import Studio

runner = CliRunner()


def test_password_hash_is_salted_scrypt() -> None:
    a, b = users.hash_password("correct horse"), users.hash_password("correct horse")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert users.verify_password("correct horse", a) and not users.verify_password("correct hors", a)
    assert not users.verify_password("x", "md5$abc")


def test_fill_gaps_interpolates_short_interior_gaps_only() -> None:
    pts = np.arange(40) / 30.0
    v = np.full(40, np.nan)
    v[[2, 5, 30]] = [0.0, 0.3, 1.0]
    filled, count = fill_gaps(v, pts)
    assert count == 2 and filled[3:5] == pytest.approx([0.1, 0.2])
    assert np.isnan(filled[:2]).all() and np.isnan(filled[6:30]).all()  # 25 frames = 0.83 s: not filled
    # variable frame rate: the weights follow the timestamps, not the indices
    vfr = np.array([0.0, 0.1, 0.4])
    out, _ = fill_gaps(np.array([0.0, np.nan, 0.4]), vfr)
    assert out[1] == pytest.approx(0.1)


def test_reaction_lag_finds_a_known_shift() -> None:
    rng = np.random.default_rng(0)
    ref = np.convolve(rng.normal(size=400), np.ones(15) / 15, mode="same")
    late = np.roll(ref, 7)
    assert reaction_lag(late, ref, 30) == 7
    assert reaction_lag(ref, late, 30) == -7
    assert reaction_lag(ref[:10], late[:10], 30) is None


def test_user_commands(db_url: str) -> None:
    r = runner.invoke(app, ["annotate", "user", "add", "carol", "--db", db_url])
    assert r.exit_code == 0 and "password (shown once):" in r.stdout
    password = r.stdout.rsplit(": ", 1)[1].strip()
    from affdata.db import Store

    with Store(db_url) as store:
        token, session = users.log_in(store, "carol", password)
        assert session.user.role == "annotator"
    r = runner.invoke(app, ["annotate", "user", "add", "dan", "--role", "admin", "--password-stdin", "--db", db_url],
                      input="a-long-password\n")
    assert r.exit_code == 0 and "a-long-password" not in r.stdout
    r = runner.invoke(app, ["annotate", "user", "add", "eve", "--password-stdin", "--db", db_url], input="short\n")
    assert r.exit_code == 1
    r = runner.invoke(app, ["annotate", "user", "list", "--json", "--db", db_url])
    assert [(u["name"], u["role"]) for u in json.loads(r.stdout)] == [("carol", "annotator"), ("dan", "admin")]
    assert runner.invoke(app, ["annotate", "user", "disable", "carol", "--db", db_url]).exit_code == 0
    with Store(db_url) as store:
        with pytest.raises(users.AuthError):
            users.session_for(store, token)  # disabling ends the sessions
        with pytest.raises(users.AuthError):
            users.log_in(store, "carol", password)


def test_campaign_commands_report_and_proxies(studio: Studio, db_url: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["annotate", "campaign", "create", "va2", "--task", "va", "-v", "pyfeat__no_face",
                            "--per-item", "2", "--db", db_url])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["annotate", "campaign", "assign", "va2", "-u", "alice", "-u", "bob", "--db", db_url])
    assert r.stdout.strip() == "2 new assignments"
    r = runner.invoke(app, ["annotate", "campaign", "progress", "va2", "--json", "--db", db_url])
    assert json.loads(r.stdout)["users"]["alice"] == {"open": 1, "draft": 0, "submitted": 0}
    assert "va2" in runner.invoke(app, ["annotate", "campaign", "list", "--db", db_url]).stdout
    r = runner.invoke(app, ["annotate", "campaign", "create", "bad", "--task", "au", "--classes", "AU999",
                            "-v", "pyfeat__no_face", "--db", db_url])
    assert r.exit_code == 1
    # two submissions, then the report
    n = 72
    for name, aid, shift in (("alice", studio.alice_va, 0), ("bob", studio.bob_va, 2)):
        a = assignments.own_assignment(studio.store, users.get_user(studio.store, name), aid)
        v = [round(0.5 * np.sin((i - shift) / 6), 3) for i in range(n)]
        submit.submit(studio.store, a, {"valence": v, "arousal": v})
    out = tmp_path / "report"
    r = runner.invoke(app, ["annotate", "report", "va1", "--out", str(out), "--json", "--db", db_url])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["items"][0]["lags_s"]["bob"] == pytest.approx(2 / 30, abs=1e-3)
    png = out / summary["items"][0]["png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "summary.json").is_file()
    r = runner.invoke(app, ["annotate", "consensus", "va1", "--json", "--db", db_url])
    assert json.loads(r.stdout)["frames"]["va"] == n
    # proxies: the H.264 clips play directly, nothing to make
    r = runner.invoke(app, ["annotate", "proxies", "--json", "--proxy-dir", str(tmp_path / "px"), "--db", db_url])
    assert {d["status"] for d in json.loads(r.stdout)} == {"plays directly"}
    assert runner.invoke(app, ["annotate", "proxies", "-v", "nope", "--db", db_url]).exit_code == 1


def test_proxy_keeps_every_frame_at_its_timestamp(studio: Studio, shared_data: Path, tmp_path: Path) -> None:
    import av

    from affdata.annotate import proxy
    from affdata.videos import ingest_videos

    store = studio.store
    assert ingest_videos(store, [shared_data / "videos" / "dlib__elon-musk-smoke.gif"]).ok
    with store.connect() as conn:
        vid = conn.exec_driver_sql("SELECT id FROM video WHERE name = 'dlib__elon-musk-smoke'").scalar()
        pts = [r[0] for r in conn.exec_driver_sql(f"SELECT pts_s FROM frame WHERE video_id = {vid} ORDER BY idx")]
    assert not proxy.plays_directly(proxy.video_row(store, vid))
    path, made = proxy.make_proxy(store, vid, tmp_path)
    assert made and proxy.make_proxy(store, vid, tmp_path) == (path, False)  # cached
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        got = [float(f.pts * f.time_base) for f in c.decode(s)]
    assert got == pytest.approx(pts, abs=1e-4)


def test_campaign_from_a_split_part_with_two_tracks(studio: Studio) -> None:
    from affdata.annotate import campaigns
    from affdata.errors import ConfigError, NotFoundError
    from affdata.splits import save_split
    from affdata.videos import ensure_track

    store = studio.store
    save_split(store, "s", "video", {studio.video: "val", studio.video2: "train", studio.unassigned_video: "val"})
    with store.transaction() as conn:  # a two-person video: left and right
        ensure_track(conn, studio.unassigned_video, "left")
        ensure_track(conn, studio.unassigned_video, "right")
    c = campaigns.create_campaign(store, "from-split", "expr", split="s", part="val", classes=["happiness", "neutral"])
    items = campaigns.progress(store, c.id)["items"]
    assert sorted((i["video"], i["track"]) for i in items) == [
        ("pyfeat__no_face", "left"), ("pyfeat__no_face", "right"), ("pyfeat__single_face", "main")]
    assert c.classes == [4, 0]
    with pytest.raises(ConfigError):
        campaigns.create_campaign(store, "x", "va", split="s", part="test")
    with pytest.raises(NotFoundError):
        campaigns.create_campaign(store, "y", "va", split="nope", part="val")
    with pytest.raises(ConfigError):
        campaigns.create_campaign(store, "z", "va", videos=["pyfeat__no_face"], split="s", part="val")


def test_an_mp4_whose_first_frame_is_not_at_zero_gets_a_proxy(studio: Studio, shared_data: Path, tmp_path: Path) -> None:
    import av

    from affdata.annotate import proxy
    from affdata.videos import ingest_videos

    clip = shared_data / "videos" / "face_recognition__short_hamilton_clip.mp4"
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and float(s.start_time * s.time_base) > 0
    assert ingest_videos(studio.store, [clip]).ok
    with studio.store.connect() as conn:
        vid = conn.exec_driver_sql("SELECT id FROM video WHERE name = 'face_recognition__short_hamilton_clip'").scalar()
    assert not proxy.plays_directly(proxy.video_row(studio.store, vid))  # the page's times would be shifted
    assert proxy.plays_directly(proxy.video_row(studio.store, studio.video))
    path = proxy.media_path(studio.store, vid, tmp_path)
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        assert float(first.pts * first.time_base) == 0.0
