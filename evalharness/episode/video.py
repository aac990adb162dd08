"""Episode videos: an MP4 writer that never leaves half-written files, and when to record.

Why it looks like this:

- Frames are streamed to ffmpeg (through imageio's FFMPEG plugin) as the episode runs, so
  a long episode never holds all its frames in memory.
- In "failures" mode whether to keep the video is known only when the episode ends, so
  frames go to a temporary file next to the destination and :meth:`EpisodeVideo.finish`
  either renames it atomically into place or deletes it. A crash leaves at most a hidden
  ``.*.partial.mp4`` file, never a truncated video under the final name.
- The encoding is explicit (H.264 via libx264, yuv420p, CRF quality, preset) instead of
  ffmpeg's defaults, so videos play everywhere (browsers, QuickTime) and are comparable
  between machines. yuv420p needs even dimensions: odd frames are padded by repeating
  the last row/column, never resized, so pixels are not resampled.
- The file carries no metadata we did not choose: container metadata is dropped and
  ``bitexact`` removes the muxer version tag; the x264 "options" SEI message (encoder
  version and settings) is stripped with the ``filter_units`` bitstream filter. The only
  text left is the codec name. Nothing from the environment can end up in the file.
"""

from __future__ import annotations

import math
import os
import re
import uuid
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np


__all__ = [
    "EpisodeVideo",
    "mp4_is_complete",
    "video_filename",
]

_OUTCOMES = ("success", "failure", "error")


# -- the writer ------------------------------------------------------------------------------


class EpisodeVideo:
    """Write one episode's frames to ``path`` (an MP4), deciding at the end whether to keep it.

    Use as a context manager::

        with EpisodeVideo(run_dir / "videos" / name, fps=20) as video:
            for frame in frames:
                video.add_frame(frame)          # uint8, H x W x 3, RGB
            final = video.finish(keep=failed)   # Path, or None when discarded

    Leaving the block without calling :meth:`finish` discards the video (and warns when no
    exception is propagating, since that is a bug in the caller).

    ``crf`` is libx264's constant rate factor (0 = lossless, 18 ~ visually lossless, 23
    the x264 default, 51 worst); ``preset`` trades encoding speed for file size.
    ``macro_block_size`` is the multiple the frame dimensions are padded to (2 is what
    yuv420p needs; 16 suits some old decoders).
    """

    CODEC = "libx264"
    PIXEL_FORMAT = "yuv420p"

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        *,
        crf: int = 20,
        preset: str = "medium",
        macro_block_size: int = 2,
        ffmpeg_log_level: str = "error",
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in 0..51, got {crf!r}")
        if not isinstance(macro_block_size, int) or macro_block_size < 2 or macro_block_size % 2:
            raise ValueError(f"macro_block_size must be an even int >= 2, got {macro_block_size!r}")
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.macro_block_size = macro_block_size
        self.ffmpeg_log_level = ffmpeg_log_level
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp_path = self.path.parent / f".{self.path.stem}.{uuid.uuid4().hex[:12]}.partial.mp4"
        self._writer: Any = None
        self._input_size: tuple[int, int] | None = None  # (H, W) of the frames given
        self._frames = 0
        self._finished = False

    # -- properties

    @property
    def frame_count(self) -> int:
        """Frames added so far."""
        return self._frames

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(H, W) of the encoded video (input size padded to ``macro_block_size``)."""
        if self._input_size is None:
            return None
        h, w = self._input_size
        return (h + (-h) % self.macro_block_size, w + (-w) % self.macro_block_size)

    # -- writing

    def _ffmpeg_output_params(self) -> list[str]:
        return [
            "-crf", str(self.crf),
            "-preset", self.preset,
            # Metadata: only what we chose. Drop container metadata, the muxer's version
            # tag (bitexact), and x264's SEI with its version/options string (NAL type 6).
            "-map_metadata", "-1",
            "-fflags", "+bitexact",
            "-flags:v", "+bitexact",
            "-bsf:v", "filter_units=remove_types=6",
            # Index at the front, so browsers can start playing before the download ends.
            "-movflags", "+faststart",
            "-f", "mp4",
        ]  # fmt: skip

    def _open_writer(self) -> None:
        import imageio.v2 as iio  # local: keeps `import evalharness.episode.video` cheap

        self._writer = iio.get_writer(
            str(self.temp_path),
            format="FFMPEG",
            mode="I",
            fps=self.fps,
            codec=self.CODEC,
            pixelformat=self.PIXEL_FORMAT,
            quality=None,  # we pass -crf ourselves; imageio's scale would override it
            macro_block_size=self.macro_block_size,  # frames are pre-padded: never rescales
            ffmpeg_log_level=self.ffmpeg_log_level,
            output_params=self._ffmpeg_output_params(),
        )

    def add_frame(self, frame: np.ndarray) -> None:
        """Append one RGB frame (uint8, shape H x W x 3); all frames must share one size."""
        if self._finished:
            raise RuntimeError(f"video {self.path} is already finished")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            shape = getattr(frame, "shape", None)
            dtype = getattr(frame, "dtype", type(frame).__name__)
            raise ValueError(f"frame must be a uint8 array of shape (H, W, 3), got {dtype} {shape}")
        h, w = frame.shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"frame has an empty dimension: {frame.shape}")
        if self._input_size is None:
            self._input_size = (h, w)
        elif (h, w) != self._input_size:
            raise ValueError(f"frame size {(h, w)} differs from the first frame's {self._input_size}")
        out_h, out_w = self.output_size  # type: ignore[misc]
        if (out_h, out_w) != (h, w):
            frame = np.pad(frame, ((0, out_h - h), (0, out_w - w), (0, 0)), mode="edge")
        if self._writer is None:
            self._open_writer()
        self._writer.append_data(np.ascontiguousarray(frame))
        self._frames += 1

    def finish(self, keep: bool) -> Path | None:
        """Close the encoder; keep (atomic rename into ``path``) or delete the video.

        Returns the final path when kept, None when discarded or when no frame was added
        (there is no video to keep). Calling it again returns None.
        """
        if self._finished:
            return None
        self._finished = True
        writer, self._writer = self._writer, None
        if not keep:
            try:
                if writer is not None:
                    writer.close()
            except Exception:  # noqa: BLE001 - a discarded video's encoder error is moot
                pass
            finally:
                self.temp_path.unlink(missing_ok=True)
            return None
        if writer is None:
            return None
        try:
            try:
                writer.close()  # waits for ffmpeg to finish encoding
            except OSError as exc:
                self._raise_if_out_of_space(exc)
                raise
            if not self.temp_path.exists() or self.temp_path.stat().st_size == 0:
                raise RuntimeError(f"ffmpeg produced no output for {self.path}")
            if not mp4_is_complete(self.temp_path):
                # imageio does not check ffmpeg's exit status: one that died writing the
                # index (a full disk) leaves a file that will not play. Never keep it.
                self._raise_if_out_of_space(None)
                raise RuntimeError(f"ffmpeg left an incomplete mp4 for {self.path}")
            fd = os.open(self.temp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.temp_path, self.path)
        except BaseException:
            self.temp_path.unlink(missing_ok=True)
            raise
        return self.path

    def _raise_if_out_of_space(self, exc: BaseException | None) -> None:
        """Say so when a write failed for lack of space (judged before the file is deleted)."""
        from evalharness.results.disk_full import DISK_FULL_ERRNOS, disk_full_cause, space_cause

        cause = (disk_full_cause(exc) if exc is not None else None) or space_cause(self.temp_path)
        if cause is not None:
            code = next(c for c, text in DISK_FULL_ERRNOS.items() if cause.startswith(text))
            raise OSError(code, f"{cause}: writing {self.path}") from exc

    def abort(self) -> None:
        """Discard the video (same as ``finish(keep=False)``)."""
        self.finish(keep=False)

    # -- context manager

    def __enter__(self) -> "EpisodeVideo":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            if exc_type is None:
                warnings.warn(
                    f"EpisodeVideo for {self.path} left without finish(); video discarded",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self.finish(keep=False)


# -- integrity --------------------------------------------------------------------------------


def mp4_is_complete(path: str | os.PathLike[str]) -> bool:
    """Whether the file is a whole MP4: top-level boxes that tile it exactly, with an index.

    A truncated file (the encoder died, the disk filled) breaks the tiling or lacks the
    ``moov`` index. Reads only the box headers, so it costs nothing next to encoding.
    """
    seen: set[bytes] = set()
    try:
        with open(path, "rb") as handle:
            end = os.fstat(handle.fileno()).st_size
            offset = 0
            while offset < end:
                handle.seek(offset)
                header = handle.read(16)
                if len(header) < 8:
                    return False
                size, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if size == 1:  # 64-bit size follows
                    if len(header) < 16:
                        return False
                    size = int.from_bytes(header[8:16], "big")
                elif size == 0:  # the box runs to the end of the file
                    size = end - offset
                if size < 8 or offset + size > end:
                    return False
                seen.add(kind)
                offset += size
    except OSError:
        return False
    return {b"ftyp", b"moov", b"mdat"} <= seen


# -- file names ------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_TASK_CHARS = 80


def _slug(text: str, fallback: str) -> str:
    slug = _UNSAFE.sub("-", text).strip(".-_")
    return slug or fallback


def video_filename(
    suite: str,
    task_index: int,
    task_name: str,
    init_state: int,
    outcome: str,
    *,
    seed: int | None = None,
    tag: str | None = None,
) -> str:
    """A safe, sortable file name, e.g. ``libero_10_t03_put-the-bowl_init007_failure.mp4``.

    Only ``[A-Za-z0-9._-]`` survive (so no path separators, no hidden files); the task
    name is cut to 80 characters (the task index keeps names unique). Pass ``seed`` when
    an init state is run with several seeds, or their videos would share a name, and
    ``tag`` for what else sets the episode apart (a perturbation: see
    :mod:`evalharness.episode.video_names`); it goes before the outcome.
    """
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome must be one of {_OUTCOMES}, got {outcome!r}")
    if task_index < 0 or init_state < 0:
        raise ValueError("task_index and init_state must be >= 0")
    task = _slug(task_name, "task")[:_MAX_TASK_CHARS].rstrip(".-_")
    seed_part = f"_s{seed}" if seed is not None else ""
    tag_part = f"_{_slug(tag, 'tag')}" if tag else ""
    return f"{_slug(suite, 'suite')}_t{task_index:02d}_{task}_init{init_state:03d}{seed_part}{tag_part}_{outcome}.mp4"
