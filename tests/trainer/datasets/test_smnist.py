"""S-MNIST from MNIST's IDX files and FSDD's recordings: pairs, shapes, splits and errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.trainer.datasets.releases import write_smnist
from trainer.datasets import DatasetError, smnist
from trainer.datasets.preparation import prepare
from trainer.datasets.prepared import load_prepared

SETTINGS = smnist.PrepareSettings(train_size=40, val_size=20, test_size=20)


def test_pairs_are_both_28_by_28_single_channel(tmp_path):
    source = write_smnist(tmp_path / "source")
    manifest = prepare(smnist.preparation(source, SETTINGS), tmp_path / "prepared")
    assert {m: (e.kind, e.shape) for m, e in manifest.modalities.items()} == {
        "image": ("image", [1, 28, 28]), "audio": ("spectrogram", [1, 28, 28]),
    }
    assert manifest.splits == {"train": 40, "val": 20, "test": 20}
    data = load_prepared(smnist.INFO, str(tmp_path / "prepared"))
    assert data.test.rows(np.arange(3))["audio"].shape == (3, 1, 28, 28)


def test_every_digit_has_the_same_number_of_pairs_and_both_halves_agree(tmp_path):
    plan = smnist.preparation(write_smnist(tmp_path / "source"), SETTINGS).plan
    assert np.bincount([s.label for s in plan["train"]]).tolist() == [4] * 10
    for sample in (s for split in plan.values() for s in split):
        image, wav = sample.item
        assert int(wav.rsplit("/", 1)[1][0]) == sample.label
        assert image[2 + 2 * sample.label, 10] == 250  # the fixture draws each digit's band at its own rows


def test_no_image_or_recording_is_shared_between_splits(tmp_path):
    plan = smnist.preparation(write_smnist(tmp_path / "source"), SETTINGS).plan
    images = {split: {s.id.split("+")[0] for s in samples} for split, samples in plan.items()}
    takes = {split: {int(s.id.rsplit("_", 1)[1]) for s in samples} for split, samples in plan.items()}
    assert not images["train"] & images["val"] and all(i.startswith("test-") for i in images["test"])
    assert takes["test"] <= set(range(5)) and takes["val"] <= set(range(5, 10)) and min(takes["train"]) >= 10


def test_an_idx_file_with_a_wrong_magic_number_is_named(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x03" + b"\x00" * 12)
    with pytest.raises(DatasetError, match="is not an IDX file of unsigned bytes"):
        smnist.read_idx(tmp_path / "bad")


def test_a_source_without_mnist_or_recordings_lists_both(tmp_path):
    source = write_smnist(tmp_path / "source")
    shutil.rmtree(source / "mnist")
    shutil.rmtree(source / "fsdd")
    with pytest.raises(DatasetError, match=r"missing: MNIST's train-images-idx3-ubyte.*; FSDD's recordings in .*fsdd/recordings/"):
        smnist.preparation(source, SETTINGS)


def test_a_split_without_recordings_of_a_digit_is_named(tmp_path):
    source = write_smnist(tmp_path / "source", takes=8)  # no take 10 or more: nothing for training
    with pytest.raises(DatasetError, match="lacks images or recordings for: train digit 0"):
        smnist.preparation(source, SETTINGS)
