"""Videos: frames to MP4 (imageio's ffmpeg plugin) or GIF (Pillow), `mage demo --video` and `mage eval --record`."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mage_core.errors import MageError, UsageError
from mage_core.video import caption_frame, write_video

iio = pytest.importorskip("imageio.v2", reason="the video extra is not installed (pip install -e '.[video]')")
pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed (pip install -e '.[video]')")


def _mage(*args):
    return subprocess.run([sys.executable, "-m", "mage_core", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))


def _frames(n=12, h=61, w=83):
    """Odd-sized frames with a bright square moving right (H.264 needs even sides: the writer pads)."""
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[20:40, 4 * i:4 * i + 20] = (250, 200, 40)
        out.append(f)
    return out


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_frames_round_trip(tmp_path, suffix):
    path = write_video(tmp_path / f"clip{suffix}", _frames(), fps=12)
    back = iio.mimread(path, memtest=False)
    assert len(back) == 12 and back[0].shape[:2] in ((61, 83), (62, 84))
    cols = [np.argmax(f[30, :, 0] > 128) for f in back]  # the square moves right in the decoded frames too
    assert cols[-1] > cols[0] + 30
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"clip{suffix}"]  # nothing else left beside it


def test_bad_suffix_empty_input_and_captions(tmp_path):
    with pytest.raises(UsageError, match=r"\.mp4 or \.gif"):
        write_video(tmp_path / "clip.avi", _frames())
    with pytest.raises(MageError, match="no frames"):
        write_video(tmp_path / "none.mp4", [])
    assert list(tmp_path.iterdir()) == []
    framed = caption_frame(np.zeros((40, 120, 3), np.uint8), ["one line", "two"], font_px=12)
    assert framed.shape[0] > 40 + 2 * 12 and framed.shape[1] == 120 and framed[40:].max() > 150  # text on a band


def test_mp4_without_the_extra_names_the_install_step(tmp_path):
    code = ("import sys; sys.modules['imageio_ffmpeg'] = None\n"
            "from mage_core.video import check_video_path\n"
            "check_video_path(sys.argv[1] + '/a.gif')\n"
            "try:\n    check_video_path(sys.argv[1] + '/a.mp4')\nexcept Exception as exc:\n    print(exc)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert 'pip install "mage-studio[video]"' in r.stdout, r.stderr


@pytest.mark.slow
def test_demo_video_writes_an_mp4_whose_frames_decode(micro_checkpoint, tmp_path):
    video = tmp_path / "demo.mp4"
    r = _mage("demo", "--checkpoint", micro_checkpoint, "--png", tmp_path / "demo.png", "--video", video)
    assert r.returncode == 0, r.stderr
    reader = iio.get_reader(video)
    try:
        frames = [f for f in reader]
        fps = reader.get_meta_data()["fps"]
    finally:
        reader.close()
    assert len(frames) == 301 and fps == 30  # a frame before each of the 300 steps and one at the end
    assert frames[0].shape == (526, 640, 3)  # the scene and a two-line caption band under it
    assert np.abs(frames[0].astype(int) - frames[150].astype(int)).mean() > 0.5  # the agent and its plan moved
    assert f"({len(frames)} frames)" in r.stdout


@pytest.mark.slow
def test_eval_record_writes_one_video_per_episode(micro_checkpoint, tmp_path):
    r = _mage("eval", "--checkpoint", micro_checkpoint, "--episodes", "2", "--envs", "2", "--quiet", "--record",
              tmp_path / "rec", "--record-format", "gif")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert files == ["episode-0-000.gif", "episode-0-001.gif"]
    assert len(iio.mimread(tmp_path / "rec" / files[0], memtest=False)) == 301  # the start and each of 300 steps
