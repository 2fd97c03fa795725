"""Benchmark: the annotation studio.

1. Autosave round trip with N simulated annotators (default 20) writing VA drafts at once to a
   real server (``affdata annotate serve`` in its own process, on loopback): p50 and p99 of the
   PUT, against the same server's trivial endpoint (``/api/ping``) hit the same way. Bounded:
   ``--saves`` per annotator and ``--max-seconds`` in all.
2. Time from opening an item to the first frame shown (the first requestVideoFrameCallback, in
   the page's own clock from navigation start), in headless chromium, against a bare page with
   only a ``<video>`` of the same media URL; for a directly played H.264 clip, and for an HEVC
   ``.mov`` through its proxy when cold (made on request) and when cached. (Without the real
   clips in ../shared/data/videos: a generated H.264 clip, and the same as VP9 WebM, proxied.)
3. Proxy encoding speed against a bare PyAV decode (to RGB) of the same file.

Prints one JSON object; ratios are what to quote (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affdata.annotate import assignments, campaigns, users  # noqa: E402
from affdata.db import Store  # noqa: E402
from affdata.videos import ingest_videos  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "videos"
H264 = "pyfeat__single_face.mp4"
HEVC = "pyfeat__face_noface.mov"
PASSWORD = "bench-password-1"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def start_server(db: Path, proxy_dir: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "cli.affdata_app", "annotate", "serve", "--port", "0",
                             "--db", str(db), "--proxy-dir", str(proxy_dir)],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "annotation studio at" in line:
            return proc, line.split(" at ")[1].split()[0].rstrip("/")
    raise SystemExit("the server did not start")


def autosave(url: str, ids: dict[str, int], frames: int, saves: int, max_s: float) -> dict:
    import httpx

    put_ms: list[float] = []
    ping_ms: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_s
    barrier = threading.Barrier(len(ids))

    def annotator(name: str, aid: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            csrf = http.post("/api/login", json={"name": name, "password": PASSWORD}).json()["csrf"]
            head = {"X-CSRF-Token": csrf}
            barrier.wait()
            for seq in range(1, saves + 1):
                if time.monotonic() > deadline:
                    break
                done = seq * frames // saves
                trace = [round(0.5 * (i % 30) / 30, 3) if i < done else None for i in range(frames)]
                t0 = time.perf_counter()
                r = http.put(f"/api/assignments/{aid}/draft", headers=head,
                             json={"seq": seq, "data": {"valence": trace, "arousal": trace, "position": 0}})
                t1 = time.perf_counter()
                http.get("/api/ping")
                t2 = time.perf_counter()
                assert r.status_code == 200, r.text
                with lock:
                    put_ms.append((t1 - t0) * 1000)
                    ping_ms.append((t2 - t1) * 1000)

    threads = [threading.Thread(target=annotator, args=item) for item in ids.items()]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"annotators": len(ids), "saves": len(put_ms), "frames_per_draft": frames, "seconds": round(wall, 2),
            "autosave_ms_p50": round(pct(put_ms, 0.5), 2), "autosave_ms_p99": round(pct(put_ms, 0.99), 2),
            "ping_ms_p50": round(pct(ping_ms, 0.5), 2), "ping_ms_p99": round(pct(ping_ms, 0.99), 2),
            "p50_ratio_to_ping": round(pct(put_ms, 0.5) / pct(ping_ms, 0.5), 2),
            "saves_per_s": round(len(put_ms) / wall, 1)}


def first_frame(url: str, name: str, items: dict[str, int], repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/")
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_selector("#work:not([hidden])")

        def wait(expr: str) -> None:
            deadline = time.monotonic() + 120
            while not page.evaluate(expr):
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out: {expr}")
                page.wait_for_timeout(10)

        def studio(aid: int) -> float:
            page.goto(f"{url}/static/annotate.html?a={aid}")
            wait("window.studio && window.studio.stats.firstFrameMs !== null")
            return float(page.evaluate("window.studio.stats.firstFrameMs"))

        media_of: dict[str, str] = {}

        def bare_page(route) -> None:  # a page with nothing but a <video> of the same media URL
            media = media_of[route.request.url.rsplit("-", 1)[1].split(".")[0]]
            route.fulfill(content_type="text/html", body=(
                "<!doctype html><video id=v preload=auto muted></video><script>const v=document.getElementById('v');"
                "v.requestVideoFrameCallback(()=>{window.firstFrameMs=performance.now()});"
                f"v.src='{media}';</script>"))

        page.route("**/static/bare-*.html", bare_page)

        def bare(key: str) -> float:
            page.goto(f"{url}/static/bare-{key}.html")
            wait("window.firstFrameMs !== undefined")
            return float(page.evaluate("window.firstFrameMs"))

        for label, aid in items.items():
            media_of[str(aid)] = page.evaluate(f"fetch('/api/assignments/{aid}').then(r => r.json()).then(j => j.video_url)")
            first = studio(aid)  # cold: for the HEVC item this makes the proxy
            ours = [studio(aid) for _ in range(repeat)]
            base = [bare(str(aid)) for _ in range(repeat)]
            out[label] = {"studio_first_ms": round(first, 1), "studio_ms_median": round(statistics.median(ours), 1),
                          "bare_video_ms_median": round(statistics.median(base), 1),
                          "ratio": round(statistics.median(ours) / statistics.median(base), 2)}
        browser.close()
    return out


def proxy_speed(db: Store, video_id: int, path: Path, proxy_dir: Path, repeat: int) -> dict:
    import av

    from affdata.annotate.proxy import make_proxy

    decode, encode = [], []
    frames = 0
    for k in range(repeat):
        t0 = time.perf_counter()
        with av.open(str(path)) as c:
            frames = sum(1 for f in c.decode(video=0) if f.to_ndarray(format="rgb24") is not None)
        decode.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        make_proxy(db, video_id, proxy_dir / f"run{k}")
        encode.append(time.perf_counter() - t0)
    d, e = statistics.median(decode), statistics.median(encode)
    return {"file": path.name, "frames": frames, "bare_decode_fps": round(frames / d, 1),
            "proxy_fps": round(frames / e, 1), "proxy_time_ratio_to_decode": round(e / d, 2)}


def generated_clips(folder: Path) -> tuple[Path, Path]:
    """Without the real clips: a generated H.264 MP4, and the same frames as VP9 WebM (proxied)."""
    import av

    from affdata.synthetic import generate_dataset

    generate_dataset(folder / "ds", subjects=1, seconds=6, seed=0)
    h264 = sorted((folder / "ds" / "videos").glob("*.mp4"))[0]
    other = folder / "clip-vp9.webm"
    with av.open(str(h264)) as src, av.open(str(other), "w") as dst:
        s_in = src.streams.video[0]
        out = dst.add_stream("libvpx-vp9", rate=s_in.average_rate)
        out.width, out.height, out.pix_fmt = s_in.width, s_in.height, "yuv420p"
        for frame in src.decode(s_in):
            frame.pts = None
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    return h264, other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--saves", type=int, default=20, help="drafts per annotator")
    ap.add_argument("--frames", type=int, default=1800, help="frames per draft (a 1-minute 30 fps video)")
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--videos", type=Path, default=VIDEOS, help="folder with the real clips")
    args = ap.parse_args()
    result: dict = {"benchmark": "annotate"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if (args.videos / H264).is_file() and (args.videos / HEVC).is_file():
            direct, proxied = args.videos / H264, args.videos / HEVC
        else:  # a fresh clone without ../shared/data
            direct, proxied = generated_clips(tmp_path)
        result["clips"] = {"direct": direct.name, "proxied": proxied.name}
        db = tmp_path / "studio.db"
        store = Store(str(db))
        assert ingest_videos(store, [direct, proxied]).ok
        names = [f"ann{k:02d}" for k in range(args.annotators)]
        for name in names:
            users.add_user(store, name, "annotator", PASSWORD)
        campaigns.create_campaign(store, "bench", "va", videos=[direct.stem], per_item=args.annotators)
        assignments.assign_round_robin(store, "bench", names)
        campaigns.create_campaign(store, "bench-hevc", "va", videos=[proxied.stem])
        hevc_aid = assignments.assign(store, "bench-hevc", names[0], proxied.stem)
        ids = {a.user: a.id for n in names for a in assignments.assignments_of(store, users.get_user(store, n))
               if a.campaign.name == "bench"}
        proc, url = start_server(db, tmp_path / "proxies")
        try:
            result["autosave"] = autosave(url, ids, args.frames, args.saves, args.max_seconds)
            if shutil.which("chromium"):
                result["first_frame"] = first_frame(url, names[0], {"direct": ids[names[0]],
                                                                    "proxy": hevc_aid}, args.repeat)
            else:
                result["first_frame"] = "skipped: no chromium (apt-get install -y chromium)"
        finally:
            proc.terminate()
            proc.wait(10)
        with store.connect() as conn:
            vid = conn.exec_driver_sql("SELECT id FROM video WHERE name = ?", (proxied.stem,)).scalar()
        result["proxy"] = proxy_speed(store, vid, proxied, tmp_path / "proxy-bench", args.repeat)
        store.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
