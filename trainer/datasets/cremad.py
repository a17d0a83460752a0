"""CREMA-D: audio-visual emotion recognition (Cao et al., IEEE Trans. Affective Computing 2014).

The paper's first task: 7,442 clips of 91 actors speaking 12 sentences with one of
six emotions; audio dominates, the face learns slowly. Layout of the public release
(the CREMA-D repository, whose media are stored with git-lfs)::

    AudioWAV/<clip>.wav       16 kHz mono speech, one file per clip
    VideoFlash/<clip>.flv     the same clips as Flash video

``<clip>`` is ``<actor>_<sentence>_<emotion>_<level>``, e.g. ``1001_DFA_ANG_XX``.
Frames are taken from the videos with ``ffmpeg`` when it is installed, or read from a
folder of frames extracted beforehand: ``frames/<clip>/*.jpg`` (or ``.png``), also in
the OGM-GE code base's layout ``frames/Image-01-FPS/<clip>/``.

Preparation (``miles data prepare cremad``), as in the paper and the OGM-GE code:

- audio: the clip at 16 kHz, its first 3 s (a shorter clip is repeated, as OGM-GE
  does), SciPy's spectrogram with 512-sample windows overlapping by 353 samples:
  257 frequencies x 299 frames, ``log(S + 1e-7)``, resized bilinearly to 224 x 224:
  [1, 224, 224];
- visual: one frame per clip, the middle one (of the video, or of the clip's frames
  folder), RGB resized to 224 x 224: [3, 224, 224];
- split: 70 / 15 / 15, stratified by emotion with seed 0; on the 7,442 clips that is
  5,210 / 1,116 / 1,116 **(project choice: the paper gives the fractions; its exact
  counts could not be checked here)**;
- classes in the OGM-GE code's order: NEU, HAP, SAD, FEA, DIS, ANG.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from trainer.datasets.base import (
    SPLITS,
    DatasetError,
    DatasetInfo,
    ModalitySpec,
    exact_stratified_indices,
    split_sizes,
)
from trainer.datasets.preparation import Preparation, Sample, StoredModality
from trainer.datasets.prepared import PreparedParams, reader
from trainer.spec import SpecModel

EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
CLIP = re.compile(r"^(\d{4})_([A-Z]{3})_(NEU|HAP|SAD|FEA|DIS|ANG)_([A-Z]{1,2})$")
RATE, SECONDS, WINDOW, OVERLAP = 16_000, 3, 512, 353
SPECTROGRAM = (WINDOW // 2 + 1, (RATE * SECONDS - OVERLAP) // (WINDOW - OVERLAP))  # (257, 299)
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
CLIPS = 7442



class PrepareSettings(SpecModel):
    size: int = Field(224, ge=16, le=512, description="Side of the square spectrogram and frame (the paper: 224).")
    frames: Literal["video", "folder"] | None = Field(
        None, description="Where frames come from: 'video' (ffmpeg on VideoFlash/) or 'folder' (frames_dir); "
        "default: the folder when it exists, else the videos.",
    )
    frames_dir: str = Field("frames", description="Folder of extracted frames, <frames_dir>/<clip>/*.jpg (relative to the source).")
    seed: int = Field(0, ge=0, description="Seed of the stratified 70/15/15 split.")


INFO = DatasetInfo(
    name="cremad",
    title="CREMA-D (audio-visual emotions)",
    description="7,442 clips of actors speaking with one of six emotions: a spectrogram of the voice and one "
    "frame of the face, both 224 x 224. The paper's first task (ResNet-18 encoders); audio dominates. "
    "Prepare the public release with `miles data prepare cremad`, then give the prepared folder as data_path.",
    task="single_label",
    classes=EMOTIONS,
    modalities={"audio": ModalitySpec("spectrogram", (1, 224, 224)), "visual": ModalitySpec("image", (3, 224, 224))},
    default_modalities=("audio", "visual"),
    splits=dict(zip(SPLITS, split_sizes(CLIPS, (0.15, 0.15)), strict=True)),
    source="CREMA-D (Open Database License / Database Contents License; Cao et al. 2014)",
)

Params = PreparedParams
describe, load = reader(INFO)


def _frames_folder(source: Path, settings: PrepareSettings) -> Path:
    folder = source / settings.frames_dir
    nested = folder / "Image-01-FPS"
    return nested if nested.is_dir() else folder


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES) if folder.is_dir() else []


def process(item: tuple[str, str, str, int]) -> dict[str, np.ndarray]:
    """One clip: (wav path, "video" or "folder", video file or frames folder, size) -> its two inputs."""
    from trainer.datasets import audio, images, video  # SciPy and Pillow load only to prepare

    wav, mode, frames, size = item
    clip = audio.fit_length(audio.read_wav(Path(wav), RATE), RATE * SECONDS, repeat=True)
    spectrogram = audio.log_spectrogram(clip, RATE, WINDOW, OVERLAP)
    assert spectrogram.shape == SPECTROGRAM, spectrogram.shape
    if mode == "video":
        frame = video.middle_frame(Path(frames))
    else:
        files = _frame_files(Path(frames))
        frame = images.open_image(files[len(files) // 2])
    return {"audio": audio.resize(spectrogram, size, size)[None], "visual": images.pixels(frame, size, size)}


def _layout(source: Path, settings: PrepareSettings) -> tuple[dict[str, Path], str, Path]:
    """The clips' WAV files, the frame source chosen and its folder; a `DatasetError` listing what is missing."""
    wav_dir, video_dir, frames_dir = source / "AudioWAV", source / "VideoFlash", _frames_folder(source, settings)
    from trainer.datasets import video

    mode = settings.frames or ("folder" if frames_dir.is_dir() else "video")
    missing = []
    if not wav_dir.is_dir():
        missing.append(f"{wav_dir}/ (the clips' audio, <actor>_<sentence>_<emotion>_<level>.wav)")
    if mode == "folder" and not frames_dir.is_dir():
        missing.append(f"{frames_dir}/ (extracted frames, <clip>/*.jpg)")
    if mode == "video":
        if not video_dir.is_dir():
            missing.append(f"{video_dir}/ (the clips' videos, <clip>.flv), or {frames_dir}/ (extracted frames, <clip>/*.jpg)")
        elif not video.ffmpeg_available():
            missing.append(f"ffmpeg and ffprobe on PATH, to take frames from {video_dir}/ (or extract frames into {frames_dir}/<clip>/)")
    if missing:
        raise DatasetError(f"{source} is not a CREMA-D release as expected; missing: " + "; ".join(missing))
    clips = {p.stem: p for p in wav_dir.glob("*.wav") if CLIP.match(p.stem)}
    if not clips:
        raise DatasetError(f"{wav_dir} holds no clip named <actor>_<sentence>_<emotion>_<level>.wav (e.g. 1001_DFA_ANG_XX.wav)")
    return clips, mode, video_dir if mode == "video" else frames_dir


def preparation(source: Path, settings: PrepareSettings) -> Preparation:
    clips, mode, frames = _layout(source, settings)
    resolved = settings.model_copy(update={"frames": mode})
    samples, unpaired = [], []
    for clip, wav in sorted(clips.items()):
        target = frames / (f"{clip}.flv" if mode == "video" else clip)
        if (mode == "video" and target.is_file()) or (mode == "folder" and _frame_files(target)):
            label = EMOTIONS.index(CLIP.match(clip).group(3))  # type: ignore[union-attr]
            samples.append(Sample(clip, label, (str(wav), mode, str(target), settings.size)))
        else:
            unpaired.append(clip)
    if not samples:
        raise DatasetError(f"no clip of {source / 'AudioWAV'} has its {'video' if mode == 'video' else 'frames'} in {frames}")
    notes = []
    if unpaired:
        shown = ", ".join(unpaired[:5]) + (f" and {len(unpaired) - 5} more" if len(unpaired) > 5 else "")
        notes.append(f"{len(unpaired)} clip(s) without {'a video' if mode == 'video' else 'frames'} were left out: {shown}")
    labels = np.array([s.label for s in samples])
    parts = exact_stratified_indices(labels, split_sizes(len(samples), (0.15, 0.15)), settings.seed)
    side = settings.size
    return Preparation(
        dataset=INFO.name, settings=resolved.model_dump(), task="single_label", classes=EMOTIONS,
        modalities={"audio": StoredModality("spectrogram", (1, side, side), "float32"),
                    "visual": StoredModality("image", (3, side, side), "uint8", scale=1 / 255)},
        plan={split: [samples[i] for i in rows] for split, rows in zip(SPLITS, parts, strict=True)},
        process=process, source=str(source), notes=notes,
    )
