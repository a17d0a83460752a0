"""CREMA-D from its release layout: spectrograms, frames from videos or folders, split, labels, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import need
from tests.trainer.datasets.releases import COLOURS, write_cremad, write_wav
from trainer.datasets import DatasetError, cremad, video
from trainer.datasets.audio import fit_length, log_spectrogram, read_wav
from trainer.datasets.preparation import prepare
from trainer.datasets.prepared import load_prepared

SMALL = cremad.PrepareSettings(size=32)


def test_three_seconds_at_16_khz_give_the_papers_257_by_299_spectrogram(tmp_path):
    wav = write_wav(tmp_path / "1001_DFA_ANG_XX.wav", 5, rate=16_000, seconds=1.2)
    clip = fit_length(read_wav(wav, 16_000), 48_000, repeat=True)
    # 512-sample windows overlapping by 353 step by 159: (48,000 - 353) // 159 = 299 frames; 512 // 2 + 1 = 257 bins.
    assert log_spectrogram(clip, 16_000, 512, 353).shape == (257, 299)
    assert np.array_equal(clip[19_200:19_300], clip[:100])  # a 1.2 s clip is repeated, as OGM-GE does


def test_prepared_clips_are_224_square_spectrograms_and_frames_by_default(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1)
    manifest = prepare(cremad.preparation(source, cremad.PrepareSettings()), tmp_path / "prepared")
    data = load_prepared(cremad.INFO, str(tmp_path / "prepared"))
    assert {m: (e.shape, e.dtype) for m, e in manifest.modalities.items()} == {
        "audio": ([1, 224, 224], "float32"), "visual": ([3, 224, 224], "uint8"),
    }
    assert data.train.rows(np.array([0]))["visual"].shape == (1, 3, 224, 224)
    assert manifest.settings == {"size": 224, "frames": "folder", "frames_dir": "frames", "seed": 0}


def test_labels_are_the_emotion_in_each_clip_name_in_ogm_ges_order(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D")
    plan = cremad.preparation(source, SMALL).plan
    for sample in (s for split in plan.values() for s in split):
        assert cremad.EMOTIONS[sample.label] == sample.id.split("_")[2]
    assert cremad.EMOTIONS == ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def test_the_split_is_70_15_15_and_stratified_by_emotion(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=5)  # 5 actors x 2 sentences x 6 emotions = 60 clips
    plan = cremad.preparation(source, SMALL).plan
    assert {split: len(samples) for split, samples in plan.items()} == {"train": 42, "val": 9, "test": 9}
    counts = np.bincount([s.label for s in plan["train"]], minlength=6)
    assert counts.min() >= 6 and counts.max() <= 8
    ids = [s.id for split in plan.values() for s in split]
    assert len(set(ids)) == 60


def test_the_frame_is_the_middle_one_of_the_clips_frames_folder(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1)
    clip = "1001_DFA_ANG_HI"
    for index, frame in enumerate(sorted((source / "frames" / clip).iterdir())):
        shade = 250 if index == 1 else 0  # only the middle frame is white
        Image.new("RGB", (20, 10), (shade, shade, shade)).save(frame)
    out = cremad.process((str(source / "AudioWAV" / f"{clip}.wav"), "folder", str(source / "frames" / clip), 16))
    assert out["visual"].min() == 250


def test_frames_are_taken_from_the_videos_with_ffmpeg(tmp_path):
    need(video.ffmpeg_available(), "ffmpeg and ffprobe are not installed (Debian's ffmpeg package)")
    source = write_cremad(tmp_path / "CREMA-D", actors=1, videos=True, frames=False)
    preparation = cremad.preparation(source, SMALL)
    assert preparation.settings["frames"] == "video"
    sample = next(s for s in preparation.plan["train"])
    pixel = cremad.process(sample.item)["visual"][:, 16, 16]
    assert np.abs(pixel.astype(int) - COLOURS[sample.label]).max() <= 12  # the clip's colour, through FLV encoding


def test_clips_without_frames_are_left_out_with_a_note(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1, unpaired=2)
    preparation = cremad.preparation(source, SMALL)
    assert sum(len(s) for s in preparation.plan.values()) == 12
    assert preparation.notes == ["2 clip(s) without frames were left out: 1090_TIE_SAD_XX, 1091_TIE_SAD_XX"]


def test_a_release_without_its_audio_folder_is_named_missing(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1)
    shutil.rmtree(source / "AudioWAV")
    with pytest.raises(DatasetError, match=r"missing: .*AudioWAV/ \(the clips' audio"):
        cremad.preparation(source, SMALL)


def test_a_release_without_videos_or_frames_names_both(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1, frames=False)
    with pytest.raises(DatasetError, match=r"VideoFlash/ \(the clips' videos, <clip>.flv\), or .*frames/ \(extracted frames"):
        cremad.preparation(source, SMALL)


def test_videos_without_ffmpeg_ask_for_ffmpeg_or_extracted_frames(tmp_path, monkeypatch):
    source = write_cremad(tmp_path / "CREMA-D", actors=1, frames=False)
    (source / "VideoFlash").mkdir()
    monkeypatch.setattr(video, "ffmpeg_available", lambda: False)
    with pytest.raises(DatasetError, match=r"ffmpeg and ffprobe on PATH, to take frames from .*VideoFlash/"):
        cremad.preparation(source, SMALL)


def test_a_folder_of_wav_files_not_named_as_crema_d_clips_is_refused(tmp_path):
    source = write_cremad(tmp_path / "CREMA-D", actors=1)
    for wav in (source / "AudioWAV").iterdir():
        wav.rename(wav.with_name(f"clip-{wav.name}"))
    with pytest.raises(DatasetError, match="holds no clip named <actor>_<sentence>_<emotion>_<level>.wav"):
        cremad.preparation(source, SMALL)
