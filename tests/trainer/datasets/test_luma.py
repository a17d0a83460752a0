"""LUMA from its release beside CIFAR: the classes kept, balance, shapes, resampling and errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from tests.trainer.datasets.releases import write_luma
from trainer.datasets import DatasetError, luma
from trainer.datasets.audio import read_wav
from trainer.datasets.preparation import prepare

SETTINGS = luma.PrepareSettings(samples_per_class=8, val_size=6, test_size=6)


def test_classes_with_enough_images_and_recordings_are_kept_in_lumas_order(tmp_path):
    preparation = luma.preparation(write_luma(tmp_path / "source"), SETTINGS)
    # horse has images but two recordings; roses has recordings but no image without the generated ones.
    assert preparation.classes == ("dog", "fish", "cat")
    assert preparation.notes == ["1 recording(s) listed in audio/datalist.csv have no file and were left out"]


def test_lumas_generated_images_count_towards_their_class(tmp_path):
    preparation = luma.preparation(write_luma(tmp_path / "source", generated=True), SETTINGS)
    assert preparation.classes == ("dog", "fish", "cat", "roses")


def test_every_class_is_cut_to_the_same_number_of_pairs_and_split_by_class(tmp_path):
    plan = luma.preparation(write_luma(tmp_path / "source", per_class=10), luma.PrepareSettings(samples_per_class=10, val_size=6, test_size=6)).plan
    everything = [s for split in plan.values() for s in split]
    assert np.bincount([s.label for s in everything]).tolist() == [10, 10, 10]
    assert {split: len(samples) for split, samples in plan.items()} == {"train": 18, "val": 6, "test": 6}
    assert np.bincount([s.label for s in plan["val"]]).tolist() == [2, 2, 2]
    assert len({s.id for s in everything}) == 30


def test_pairs_are_a_96_band_mel_spectrogram_and_a_96_pixel_image(tmp_path):
    source = write_luma(tmp_path / "source")
    manifest = prepare(luma.preparation(source, SETTINGS), tmp_path / "prepared")
    assert {m: (e.shape, e.dtype) for m, e in manifest.modalities.items()} == {
        "audio": ([1, 96, 96], "float32"), "image": ([3, 96, 96], "uint8"),
    }
    assert manifest.classes == ["dog", "fish", "cat"]


def test_recordings_at_48_khz_in_stereo_are_read_at_16_khz_mono(tmp_path):
    source = write_luma(tmp_path / "source")
    stereo = source / "audio" / "cv_audio" / "dog" / "1.wav"  # the fixture writes odd takes at 48 kHz, two channels
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    out = luma.process((image, str(stereo), 96))
    assert out["audio"].shape == (1, 96, 96) and np.isfinite(out["audio"]).all()
    assert read_wav(stereo, 16_000).shape == (8000,)  # 0.5 s


def test_a_cifar_file_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "batches.meta"
    path.write_bytes(pickle.dumps({"label_names": Exploit()}, protocol=2))
    with pytest.raises(DatasetError, match="posix.system is not allowed in a CIFAR file|os.system is not allowed"):
        luma.read_cifar_file(path)


def test_a_source_without_cifar_lists_the_missing_files(tmp_path):
    source = write_luma(tmp_path / "source")
    (source / "cifar-100-python" / "meta").unlink()
    (source / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetError, match=r"missing: cifar-10-batches-py/test_batch, cifar-100-python/meta"):
        luma.preparation(source, SETTINGS)


def test_too_few_samples_per_class_says_what_the_richest_classes_hold(tmp_path):
    source = write_luma(tmp_path / "source")
    with pytest.raises(DatasetError, match=r"fewer than two LUMA classes have 1500 images and recordings \(most: "):
        luma.preparation(source, luma.PrepareSettings())
