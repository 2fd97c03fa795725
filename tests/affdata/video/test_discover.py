"""list_videos: video files and frame folders, with what was skipped and why."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from affdata.video import is_frame_folder, list_videos


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _frames(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, n + 1):
        Image.new("RGB", (4, 4)).save(folder / f"{k:05d}.jpg")
    return folder


def _tree(root: Path) -> dict[str, Path]:
    return {
        "mp4": _touch(root / "a.mp4"),
        "gif": _touch(root / "b.GIF"),
        "txt": _touch(root / "notes.txt"),
        "hidden": _touch(root / ".DS_Store"),
        "frames": _frames(root / "cropped_aligned" / "video1"),
        "frames2": _frames(root / "cropped_aligned" / "video2"),
        "deep": _touch(root / "sub" / "deeper" / "c.webm"),
        "deep_avi": _touch(root / "sub" / "d.avi"),
        "mixed": _frames(root / "mixed"),
        "mixed_video": _touch(root / "mixed" / "e.mkv"),
    }


def test_non_recursive(tmp_path):
    t = _tree(tmp_path)
    videos, skipped = list_videos([tmp_path], recursive=False)
    assert videos == sorted([t["mp4"], t["gif"]])
    reasons = dict(skipped)
    assert reasons[t["txt"]] == "not a video (.txt)"
    assert "recursive" in reasons[tmp_path / "sub"]
    assert "recursive" in reasons[tmp_path / "cropped_aligned"]
    assert t["hidden"] not in reasons


def test_cropped_aligned_folder_lists_its_videos(tmp_path):
    t = _tree(tmp_path)
    videos, skipped = list_videos([tmp_path / "cropped_aligned"], recursive=False)
    assert videos == [t["frames"], t["frames2"]]
    assert skipped == []
    # a frame folder passed directly is itself the video
    assert list_videos([t["frames"]], recursive=False) == ([t["frames"]], [])


def test_recursive(tmp_path):
    t = _tree(tmp_path)
    videos, skipped = list_videos([tmp_path], recursive=True)
    assert videos == sorted(
        [t["mp4"], t["gif"], t["frames"], t["frames2"], t["deep"], t["deep_avi"], t["mixed_video"]]
    )
    reasons = dict(skipped)
    assert "beside video files" in reasons[t["mixed"] / "00001.jpg"]
    assert t["txt"] in reasons


def test_missing_and_non_video_paths_and_duplicates(tmp_path):
    t = _tree(tmp_path)
    videos, skipped = list_videos([tmp_path / "gone.mp4", t["txt"], t["mp4"], t["mp4"]], recursive=False)
    assert videos == [t["mp4"]]
    reasons = dict(skipped)
    assert reasons[tmp_path / "gone.mp4"] == "does not exist"
    assert reasons[t["txt"]].startswith("not a video (.txt")


def test_is_frame_folder(tmp_path):
    t = _tree(tmp_path)
    assert is_frame_folder(t["frames"])
    assert not is_frame_folder(t["mixed"])  # holds a video file
    assert not is_frame_folder(tmp_path / "sub")
