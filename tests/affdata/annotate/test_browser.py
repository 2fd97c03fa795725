"""The studio in a real browser: Debian's chromium driven by Playwright, against a real uvicorn
server on a free loopback port, over a SQLite store holding real clips.

Skipped (with the reason) only when no ``chromium`` is installed; ``.ci/run`` installs it.
Screenshots go to ``$AFFDATA_TEST_ARTIFACTS`` (default ``test-artifacts/annotate``).

The VA tracing test and its tolerance. The test moves the mouse along a known path written as a
function of media time, p(t) = (0.8 sin(2 pi t / T), 0.6 cos(2 pi t / T)) with T = 4.8 s, in a
loop that reads ``video.currentTime`` and moves the pointer to p(currentTime). The page records
for each presented frame i the pointer's position at that moment, which is p(t_k) for the last
read t_k before the frame was shown. So |recorded(i) - p(pts_i)| <= S * (gap + frame) + q, where
S = 0.8 * 2 pi / T = 1.05 per media second is the path's largest slope, ``gap`` the longest
media time between two consecutive reads (measured in the run: it depends on the machine's
load), ``frame`` one frame time (``currentTime`` may run ahead of the frame on screen by up to
one frame), and q = 2 / 300 the pad's pixel (a 300-pixel square spans [-1, 1]). Frames the
browser skipped are interpolated linearly by the server across gaps of at most 0.5 s; the
interpolation error of a sine over a gap g is at most S * (2 pi / T) * g^2 / 8, added in.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from affdata.annotate import assignments, campaigns
from affdata.db import Store
from tests.affdata.annotate.conftest import PASSWORDS, Studio, build_studio

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium; .ci/run installs it)")
ARTIFACTS = Path(os.environ.get("AFFDATA_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts" / "annotate"))
T_PATH, AMP_V, AMP_A, PAD_PX = 4.8, 0.8, 0.6, 300


def path_at(t: float) -> tuple[float, float]:
    w = 2 * math.pi * t / T_PATH
    return AMP_V * math.sin(w), AMP_A * math.cos(w)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def served(backends, tmp_path: Path, shared_data: Path) -> Iterator[tuple[Studio, str]]:
    from affdata.annotate.web.serve import BackgroundServer

    store = Store(backends.migrated("sqlite", tmp_path))
    studio = build_studio(store, shared_data / "videos")
    with BackgroundServer(store, proxy_dir=tmp_path / "proxies") as url:
        yield studio, url
    store.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def wait_js(page, expression: str, timeout_s: float = 30.0) -> None:
    """Poll a JS expression (``page.wait_for_function`` would need eval, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def log_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/")
    page.fill("#name", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#login-button")
    page.wait_for_selector("#work:not([hidden])")


def open_item(page, url: str, assignment: int) -> None:
    page.goto(f"{url}/static/annotate.html?a={assignment}")
    page.wait_for_selector("body[data-ready='1']")
    wait_js(page, "document.getElementById('video').readyState >= 2", 60)


def pad_xy(page, v: float, a: float) -> tuple[float, float]:
    box = page.locator("#pad").bounding_box()
    return box["x"] + (v + 1) / 2 * box["width"], box["y"] + (1 - a) / 2 * box["height"]


def trace(page, until_s: float | None = None) -> float:
    """Move the pointer along the path while the video plays; returns the longest read gap (media s)."""
    page.mouse.move(*pad_xy(page, *path_at(0.0)))
    page.evaluate("document.getElementById('video').play()")
    last, gap = 0.0, 0.0
    while True:
        t, ended = page.evaluate("[document.getElementById('video').currentTime, document.getElementById('video').ended]")
        gap = max(gap, t - last)
        last = t
        if ended or (until_s is not None and t >= until_s):
            break
        page.mouse.move(*pad_xy(page, *path_at(t)))
    return gap


def test_va_trace_follows_the_pointer_frame_by_frame(served, page) -> None:
    studio, url = served
    log_in(page, url, "alice")
    shot(page, "assignments")
    open_item(page, url, studio.alice_va)
    page.select_option("#speed", "0.5")
    gap = trace(page)
    shot(page, "va-tracing")
    page.click("#submit")
    wait_js(page, "document.getElementById('saved').textContent.startsWith('submitted')", 30)
    with studio.store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT l.frame_idx, l.valence, l.arousal, f.pts_s FROM va_label l JOIN label_source s ON s.id = l.source_id "
            "JOIN track t ON t.id = l.track_id JOIN frame f ON f.video_id = t.video_id AND f.idx = l.frame_idx "
            "WHERE s.name = 'alice' AND s.kind = 'annotator' ORDER BY l.frame_idx").all()
        sub = conn.exec_driver_sql("SELECT frames, interpolated FROM submission").one()
    assert [r.frame_idx for r in rows] == list(range(72))  # one value per frame of the clip
    fps = 30.0
    slope = AMP_V * 2 * math.pi / T_PATH
    tol = slope * (gap + 1 / fps) + 2 / PAD_PX + slope * (2 * math.pi / T_PATH) * 0.5**2 / 8
    errors = [max(abs(r.valence - path_at(r.pts_s)[0]), abs(r.arousal - path_at(r.pts_s)[1])) for r in rows]
    table = "\n".join(f"{r.frame_idx} {r.pts_s:.3f} v {r.valence:+.3f} ({path_at(r.pts_s)[0]:+.3f}) "
                      f"a {r.arousal:+.3f} ({path_at(r.pts_s)[1]:+.3f}) err {e:.3f}" for r, e in zip(rows, errors))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "va-trace-errors.txt").write_text(f"tolerance {tol:.4f} (longest read gap {gap:.4f} s)\n{table}\n")
    assert max(errors) <= tol, (max(errors), tol, gap)
    assert sub.frames == 72 and sub.interpolated < 36  # most frames were seen, not filled in


def test_reload_mid_trace_finds_the_draft(served, page) -> None:
    studio, url = served
    with studio.store.transaction() as conn:  # the track's face boxes are drawn over the video
        track = conn.exec_driver_sql("SELECT i.track_id FROM assignment a JOIN campaign_item i ON i.id = a.item_id "
                                     f"WHERE a.id = {studio.alice_va}").scalar()
        conn.exec_driver_sql("INSERT INTO face_box (track_id, frame_idx, x, y, w, h) VALUES "
                             + ", ".join(f"({track}, {i}, 100, 50, 200, 150)" for i in range(72)))
    log_in(page, url, "alice")
    open_item(page, url, studio.alice_va)
    wait_js(page, "document.getElementById('overlay').width > 0")
    pixel = page.evaluate("(() => { const c = document.getElementById('overlay'); const s = c.width / 640;"
                          " return Array.from(c.getContext('2d').getImageData(Math.round(100 * s), Math.round(125 * s), 1, 1).data); })()")
    assert pixel[1] > 200 and pixel[3] > 0, pixel  # the box's green left edge at x = 100
    inside = page.evaluate("(() => { const c = document.getElementById('overlay'); const s = c.width / 640;"
                           " return c.getContext('2d').getImageData(Math.round(200 * s), Math.round(125 * s), 1, 1).data[3]; })()")
    assert inside == 0  # only the outline
    page.select_option("#speed", "0.5")
    trace(page, until_s=1.0)
    page.evaluate("document.getElementById('video').pause()")
    traced = page.evaluate("window.studio.state.valence.filter(v => v !== null).length")
    stopped_at = page.evaluate("window.studio.current")
    assert stopped_at >= 25  # about 1 s into the 30 fps clip
    assert traced > 10
    wait_js(page, "window.studio.stats.saves > 0 && window.studio.seq > 0", 10)
    page.evaluate("window.studio.save()")  # whatever the last autosave tick had not sent yet
    page.wait_for_timeout(300)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    shot(page, "va-draft-restored")
    assert page.evaluate("window.studio.state.valence.filter(v => v !== null).length") == traced
    # and the playhead is back where the trace stopped
    wait_js(page, f"Math.abs(window.studio.current - {stopped_at}) <= 1", 10)
    assert "restored" in page.text_content("#saved")


def test_expression_range_with_the_keyboard(served, page) -> None:
    studio, url = served
    log_in(page, url, "bob")
    open_item(page, url, studio.bob_expr)
    kb = page.keyboard
    kb.press("5")  # the fifth class of abaw2020: Happiness
    kb.press("s")
    for _ in range(12):
        kb.press("ArrowRight")
    kb.press("e")
    wait_js(page, "window.studio.state.ranges.length === 1")
    assert page.evaluate("window.studio.current") == 12
    kb.press("1")  # Neutral for the rest
    kb.press("ArrowRight")
    kb.press("s")
    for _ in range(5):
        kb.press("ArrowRight")
    kb.press("e")
    shot(page, "expression-ranges")
    page.check("#partial")
    page.click("#submit")
    wait_js(page, "document.getElementById('saved').textContent.startsWith('submitted')", 30)
    with studio.store.connect() as conn:
        got = conn.exec_driver_sql("SELECT e.name, MIN(l.frame_idx), MAX(l.frame_idx) FROM expr_label l "
                                   "JOIN expression e ON e.id = l.expr_id GROUP BY e.name ORDER BY 2").all()
    assert [tuple(r) for r in got] == [("Happiness", 0, 12), ("Neutral", 13, 18)]


def test_hevc_mov_plays_through_its_proxy(served, page, shared_data: Path) -> None:
    studio, url = served
    from affdata.videos import ingest_videos

    assert ingest_videos(studio.store, [shared_data / "videos" / "pyfeat__face_noface.mov"]).ok
    campaigns.create_campaign(studio.store, "hevc", "va", videos=["pyfeat__face_noface"])
    aid = assignments.assign(studio.store, "hevc", "alice", "pyfeat__face_noface")
    log_in(page, url, "alice")
    open_item(page, url, aid)
    size = page.evaluate("[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
    assert size == [960, 540]
    page.evaluate("document.getElementById('video').play()")
    wait_js(page, "window.studio.stats.presented >= 10", 30)
    page.evaluate("document.getElementById('video').pause()")
    shot(page, "hevc-proxy")
    assert page.evaluate("window.studio.stats.lastIdx") > 0


def test_admin_reviews_two_traces(served, page) -> None:
    from affdata.annotate import submit, users

    studio, url = served
    n = 72
    base = [round(0.7 * math.sin(2 * math.pi * i / 48), 3) for i in range(n)]
    late = base[-4:] + base[:-4]
    for name, aid, values in (("alice", studio.alice_va, base), ("bob", studio.bob_va, late)):
        a = assignments.own_assignment(studio.store, users.get_user(studio.store, name), aid)
        submit.submit(studio.store, a, {"valence": values, "arousal": [round(v / 2, 3) for v in values]})
    log_in(page, url, "root")
    page.goto(f"{url}/static/admin.html")
    page.click("button.show-progress >> nth=0")
    page.click("button.review >> nth=0")
    page.wait_for_selector("#pairs tbody tr")
    assert "CCC valence" in page.text_content("#pairs tbody")
    assert "bob 0.133 s" in page.text_content("#lags")  # 4 frames at 30 fps behind alice
    page.click("#consensus")
    wait_js(page, "document.getElementById('consensus-result').textContent.includes('va1-consensus')")
    shot(page, "admin-review")


def test_one_dimension_passes_with_the_keyboard(served, page) -> None:
    studio, url = served
    campaigns.create_campaign(studio.store, "va-1d", "va", videos=["pyfeat__single_face"], mode="1d")
    aid = assignments.assign(studio.store, "va-1d", "alice", "pyfeat__single_face")
    log_in(page, url, "alice")
    open_item(page, url, aid)
    kb = page.keyboard
    for dimension, key, presses in (("valence", "ArrowRight", 10), ("arousal", "ArrowDown", 6)):
        page.select_option("#dimension", dimension)
        page.evaluate("document.activeElement.blur()")  # keys go to the page, not the select
        for _ in range(presses):
            kb.press(key)
        page.evaluate("(() => { const v = document.getElementById('video'); v.currentTime = 0; v.play(); })()")
        wait_js(page, "document.getElementById('video').ended", 30)
    shot(page, "va-1d-passes")
    page.click("#submit")
    wait_js(page, "document.getElementById('saved').textContent.startsWith('submitted')", 30)
    with studio.store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT COUNT(*), MIN(valence), MAX(valence), MIN(arousal), MAX(arousal) FROM va_label l "
            "JOIN label_import i ON i.id = l.import_id WHERE i.key = ?", (f"campaign/va-1d/assignment/{aid}",)).one()
    assert tuple(rows) == (72, 0.5, 0.5, -0.3, -0.3)
