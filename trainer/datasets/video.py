"""One frame of a video clip, extracted with the ``ffmpeg`` command line when it is installed.

CREMA-D's clips are Flash videos (``VideoFlash/*.flv``); the paper feeds one frame
per clip to the visual encoder. The frame taken is the one at the middle of the clip
(``ffprobe`` reads its duration), decoded to PNG on a pipe, never written to disk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image

from trainer.datasets.base import DatasetError
from trainer.datasets.images import open_image

TIMEOUT = 60  # seconds per call; a clip of a few seconds decodes in well under one


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _run(command: list[str], path: Path) -> bytes:
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DatasetError(f"{path}: {command[0]} took more than {TIMEOUT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise DatasetError(f"{path}: {command[0]} failed: {message[-1] if message else f'exit status {done.returncode}'}")
    return done.stdout


def middle_frame(path: Path) -> Image.Image:
    """The frame at the middle of the video at ``path``."""
    text = _run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)], path)
    try:
        middle = max(float(text.decode().strip()), 0.0) / 2
    except ValueError:
        middle = 0.0  # no duration in the container: take the first frame
    for start in (middle, 0.0):
        png = _run(["ffmpeg", "-v", "error", "-ss", f"{start:.3f}", "-i", str(path), "-frames:v", "1",
                    "-f", "image2pipe", "-vcodec", "png", "-"], path)
        if png:
            return open_image(png)
    raise DatasetError(f"{path}: ffmpeg found no video frame in it")
