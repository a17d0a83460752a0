"""The built-in datasets on real data: what the registry reports is what loading gives."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from trainer.config import TrainConfig
from trainer.datasets import DATASETS, DatasetError, load_dataset


def assert_matches_its_description(dataset, info):
    for split in ("train", "val", "test"):
        part = dataset.split(split)
        if info.splits:
            assert len(part) == info.splits[split]
        for name, spec in info.modalities.items():
            assert part.inputs[name].shape == (len(part), *spec.shape)
            assert part.inputs[name].dtype == np.float32
        assert part.labels.min() >= 0 and part.labels.max() < info.num_classes


def test_mfeat_ships_in_the_package_with_a_fixed_stratified_split():
    entry = DATASETS["mfeat"]
    dataset = entry.load(entry.params(), None, seed=0)
    assert_matches_its_description(dataset, entry.info)
    assert set(entry.info.modalities) == {"fac", "fou", "kar", "mor", "pix", "zer"}
    for split, per_class in (("train", 140), ("val", 30), ("test", 30)):
        assert np.bincount(dataset.split(split).labels).tolist() == [per_class] * 10
    # standardised with the training split's statistics; independent of the run's seed
    assert np.allclose(dataset.train.inputs["fou"].mean(axis=0), 0, atol=1e-5)
    other = entry.load(entry.params(), None, seed=7)
    assert np.array_equal(other.test.inputs["pix"], dataset.test.inputs["pix"])


def test_avdigits_pairs_each_spoken_digit_with_a_written_digit_of_its_label(data_dir, monkeypatch):
    monkeypatch.setenv("MILES_DATA_DIR", str(data_dir))
    entry = DATASETS["avdigits"]
    dataset = entry.load(entry.params(), None, seed=0)
    assert_matches_its_description(dataset, entry.info)
    assert dataset.train.inputs["audio"].shape[1:] == (1, 32, 32)
    for split in ("train", "val", "test"):
        assert np.bincount(dataset.split(split).labels).tolist() == [len(dataset.split(split)) // 10] * 10
    images = {s: {row.tobytes() for row in dataset.split(s).inputs["image"]} for s in ("train", "test")}
    assert not images["train"] & images["test"], "an image appears in both train and test"
    assert np.isfinite(dataset.train.inputs["audio"]).all()


def test_avdigits_pairing_is_deterministic_for_a_seed(data_dir, monkeypatch):
    monkeypatch.setenv("MILES_DATA_DIR", str(data_dir))
    entry = DATASETS["avdigits"]
    first, again, other = (entry.load(entry.params(), None, seed=s) for s in (1, 1, 2))
    assert np.array_equal(first.train.inputs["image"], again.train.inputs["image"])
    assert not np.array_equal(first.train.inputs["image"], other.train.inputs["image"])
    assert np.array_equal(first.train.inputs["audio"], other.train.inputs["audio"])


def test_avdigits_names_the_expected_files_when_data_is_missing(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv("MILES_DATA_DIR", raising=False)
    entry = DATASETS["avdigits"]
    with pytest.raises(DatasetError, match="MILES_DATA_DIR, which is not set"):
        entry.load(entry.params(), None, 0)
    monkeypatch.setenv("MILES_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"fsdd/recordings.*mnist5k/mnist_5k\.csv\.gz"):
        entry.load(entry.params(), None, 0)
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    (tmp_path / "mnist5k").mkdir()
    shutil.copy(data_dir / "mnist5k" / "mnist_5k.csv.gz", tmp_path / "mnist5k")
    for wav in list((data_dir / "fsdd" / "recordings").glob("*_george_*.wav"))[:3]:
        shutil.copy(wav, tmp_path / "fsdd" / "recordings")
    with pytest.raises(DatasetError, match="and 2992 more"):
        entry.load(entry.params(), None, 0)


def test_synthetic_signal_strength_controls_how_separable_a_modality_is():
    config = TrainConfig(
        dataset="synthetic",
        dataset_params={"signals": {"clear": 5.0, "noise": 0.0}, "dim": 8, "train_size": 400},
    )
    dataset = load_dataset(config)
    assert_matches_its_description(dataset, DATASETS["synthetic"].describe(
        DATASETS["synthetic"].params.model_validate(config.dataset_params), None))

    def nearest_centroid_accuracy(modality):
        x, y = dataset.train.inputs[modality], dataset.train.labels
        centroids = np.stack([x[y == k].mean(0) for k in range(4)])
        return (np.argmin(((x[:, None] - centroids) ** 2).sum(-1), 1) == y).mean()

    assert nearest_centroid_accuracy("clear") > 0.95
    assert nearest_centroid_accuracy("noise") < 0.5


def test_synthetic_image_modalities_are_single_channel_squares():
    config = TrainConfig(
        dataset="synthetic", dataset_params={"signals": {"a": 1, "b": 2}, "dim": 16, "image_modalities": ["b"]}
    )
    dataset = load_dataset(config)
    assert dataset.info.modalities["b"].kind == "image"
    assert dataset.train.inputs["b"].shape[1:] == (1, 4, 4)


def test_loading_keeps_only_the_requested_modalities_in_their_order():
    dataset = load_dataset(TrainConfig(dataset="mfeat", modalities=["zer", "fac", "mor"]))
    assert list(dataset.info.modalities) == ["zer", "fac", "mor"]
    assert list(dataset.test.inputs) == ["zer", "fac", "mor"]
