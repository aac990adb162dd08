"""EpisodeVideo writes real, decodable H.264 MP4s; file naming; recording modes."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from evalharness.episode.video import EpisodeVideo, video_filename


def decode(path):
    return np.stack(list(iio.imiter(path, plugin="FFMPEG")))


def solid(h, w, rgb):
    return np.full((h, w, 3), rgb, dtype=np.uint8)


def test_writes_decodable_video(tmp_path):
    dest = tmp_path / "videos" / "ep.mp4"
    colours = [(200, 30, 60)] * 6 + [(20, 180, 240)] * 6
    with EpisodeVideo(dest, fps=20) as video:
        for c in colours:
            video.add_frame(solid(64, 96, c))
        assert video.frame_count == 12
        assert not dest.exists()  # frames go to a temporary file until finish
        assert video.temp_path.parent == dest.parent
        final = video.finish(keep=True)
    assert final == dest and dest.is_file()
    assert os.listdir(dest.parent) == ["ep.mp4"]  # temp file renamed away
    frames = decode(dest)
    assert frames.shape == (12, 64, 96, 3)
    for frame, c in zip(frames, colours):
        err = np.abs(frame.astype(float) - np.array(c, dtype=float)).mean()
        assert err < 6.0, (c, frame.mean(axis=(0, 1)))
    meta = iio.immeta(dest, plugin="FFMPEG")
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == pytest.approx(20)


def test_content_of_a_patterned_frame_survives(tmp_path):
    rng = np.random.default_rng(0)
    # Smooth content (blocks), which H.264 at the default quality keeps closely.
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    frame = np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))
    with EpisodeVideo(tmp_path / "p.mp4", fps=10) as video:
        for _ in range(3):
            video.add_frame(frame)
        video.finish(keep=True)
    decoded = decode(tmp_path / "p.mp4")
    assert decoded.shape == (3, 96, 128, 3)
    assert np.abs(decoded[-1].astype(float) - frame).mean() < 8.0


def test_odd_size_is_padded_not_resized(tmp_path):
    h, w = 45, 61
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[:, : w // 2] = (250, 250, 250)  # left half white, right half black
    with EpisodeVideo(tmp_path / "odd.mp4", fps=10) as video:
        for _ in range(4):
            video.add_frame(frame)
        assert video.output_size == (46, 62)
        video.finish(keep=True)
    decoded = decode(tmp_path / "odd.mp4")
    assert decoded.shape == (4, 46, 62, 3)
    # Not resized: the original pixels are in place (away from the edge between halves).
    crop = decoded[0, :h, :w].astype(float)
    assert np.abs(crop[:, : w // 2 - 3] - 250).mean() < 6.0
    assert crop[:, w // 2 + 3 :].mean() < 6.0
    # The padding repeats the edge: the extra column is as dark as the last one.
    assert decoded[0, :, w].mean() < 10.0


def test_keep_false_leaves_no_file(tmp_path):
    dest = tmp_path / "gone.mp4"
    with EpisodeVideo(dest, fps=10) as video:
        for _ in range(5):
            video.add_frame(solid(32, 32, (10, 200, 10)))
        assert video.finish(keep=False) is None
    assert not dest.exists()
    assert os.listdir(tmp_path) == []


def test_exception_inside_block_discards(tmp_path):
    with pytest.raises(KeyError):
        with EpisodeVideo(tmp_path / "x.mp4", fps=10) as video:
            video.add_frame(solid(16, 16, (0, 0, 0)))
            raise KeyError("episode crashed")
    assert os.listdir(tmp_path) == []


def test_leaving_without_finish_warns_and_discards(tmp_path):
    with pytest.warns(RuntimeWarning, match="without finish"):
        with EpisodeVideo(tmp_path / "x.mp4", fps=10) as video:
            video.add_frame(solid(16, 16, (0, 0, 0)))
    assert os.listdir(tmp_path) == []


def test_no_frames_keeps_nothing(tmp_path):
    with EpisodeVideo(tmp_path / "empty.mp4", fps=10) as video:
        assert video.finish(keep=True) is None
    assert os.listdir(tmp_path) == []


def test_frame_validation(tmp_path):
    video = EpisodeVideo(tmp_path / "v.mp4", fps=10)
    with pytest.raises(ValueError):
        video.add_frame(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        video.add_frame(np.zeros((8, 8), dtype=np.uint8))
    video.add_frame(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="differs"):
        video.add_frame(np.zeros((8, 10, 3), dtype=np.uint8))
    video.finish(keep=False)
    with pytest.raises(RuntimeError):
        video.add_frame(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        EpisodeVideo(tmp_path / "v.mp4", fps=0)


def test_metadata_holds_nothing_from_the_environment(tmp_path, monkeypatch):
    secret = "s3cr3t-token-value-9f8e7d"
    monkeypatch.setenv("EVALHARNESS_TEST_SECRET", secret)
    dest = tmp_path / "m.mp4"
    with EpisodeVideo(dest, fps=10) as video:
        for _ in range(3):
            video.add_frame(solid(32, 32, (1, 2, 3)))
        video.finish(keep=True)
    data = dest.read_bytes()
    assert secret.encode() not in data
    assert b"Lavf" not in data  # muxer version tag removed (bitexact)
    assert b"x264 - core" not in data  # encoder options SEI stripped
    assert b"options:" not in data


def test_video_filename():
    name = video_filename("libero_10", 3, "KITCHEN_SCENE3 put/the ../bowl: on *plate*", 7, "failure")
    assert name == "libero_10_t03_KITCHEN_SCENE3-put-the-..-bowl-on-plate_init007_failure.mp4"
    assert "/" not in name and not name.startswith(".")
    long = video_filename("libero_90", 12, "x" * 500, 0, "success", seed=4)
    assert len(long) < 130 and long.endswith("_init000_s4_success.mp4")
    assert video_filename("s", 0, "...", 1, "error") == "s_t00_task_init001_error.mp4"
    with pytest.raises(ValueError):
        video_filename("s", 0, "t", 0, "win")
