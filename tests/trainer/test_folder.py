"""The folder format for users' own data, and a clear error for every malformed input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.config import TrainConfig
from trainer.datasets import DatasetError, load_dataset


def write_folder(root, *, sizes=(20, 6, 6), multilabel=False, meta=None, edit=None):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        arrays = {
            "label": (rng.integers(0, 2, (n, 3)).astype(np.float32) if multilabel else np.arange(n) % 3),
            "audio": rng.standard_normal((n, 5)).astype(np.float32),
            "image": rng.standard_normal((n, 8, 8)).astype(np.float32),
        }
        if edit:
            edit(split, arrays)
        np.savez(root / f"{split}.npz", **arrays)
    if meta is not None:
        (root / "meta.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return root


def load(root, modalities=None):
    return load_dataset(TrainConfig(dataset="folder", data_path=str(root), modalities=modalities))


def test_a_well_formed_folder_loads_with_kinds_shapes_and_classes(tmp_path):
    root = write_folder(tmp_path / "data", meta={"classes": ["a", "b", "c"], "kinds": {"audio": "spectrogram"}})
    dataset = load(root)
    assert dataset.info.task == "single_label"
    assert dataset.info.classes == ("a", "b", "c")
    assert {m: (s.kind, s.shape) for m, s in dataset.info.modalities.items()} == {
        "audio": ("spectrogram", (5,)), "image": ("image", (1, 8, 8)),
    }
    assert dataset.info.splits == {"train": 20, "val": 6, "test": 6}
    assert dataset.train.inputs["image"].shape == (20, 1, 8, 8)


def test_relative_data_paths_resolve_under_the_data_root(tmp_path, monkeypatch):
    write_folder(tmp_path / "mine")
    monkeypatch.setenv("MILES_DATA_DIR", str(tmp_path))
    assert load("mine").info.splits["train"] == 20


def test_multilabel_is_inferred_from_multi_hot_labels(tmp_path):
    dataset = load(write_folder(tmp_path / "d", multilabel=True))
    assert dataset.info.task == "multilabel"
    assert dataset.info.num_classes == 3
    assert dataset.train.labels.dtype == np.float32


def drop(name):
    def edit(split, arrays):
        if split == "val":
            del arrays[name]
    return edit


MALFORMED = {
    "missing split": (dict(), "missing test.npz"),
    "missing label": (dict(edit=drop("label")), "has no 'label' array"),
    "missing modality": (dict(edit=drop("image")), "missing: image"),
    "lengths disagree": (
        dict(edit=lambda s, a: a.update(audio=a["audio"][:-1]) if s == "train" else None),
        "has 19 samples but 'label' has 20",
    ),
    "NaN": (dict(edit=lambda s, a: a["audio"].__setitem__((2, 1), np.nan) if s == "test" else None), "NaN or infinite"),
    "inf": (dict(edit=lambda s, a: a["image"].__setitem__((0, 0, 0), np.inf) if s == "train" else None), "first at index (0, 0, 0)"),
    "negative label": (dict(edit=lambda s, a: a["label"].__setitem__(0, -1) if s == "val" else None), "must be 0 or more"),
    "label out of range": (
        dict(meta={"classes": ["a", "b", "c"]}, edit=lambda s, a: a["label"].__setitem__(0, 3) if s == "test" else None),
        "out of range for 3 classes",
    ),
    "one modality": (dict(edit=lambda s, a: a.pop("image")), "needs at least two"),
    "float single labels": (dict(edit=lambda s, a: a.update(label=a["label"].astype(np.float32))), "must be integers"),
    "shape differs between splits": (
        dict(edit=lambda s, a: a.update(image=a["image"][:, :4]) if s == "val" else None), "train.npz has (1, 8, 8)"
    ),
    "bad ndim": (dict(edit=lambda s, a: a.update(audio=a["audio"][:, :, None, None, None])), "expected [N, D]"),
    "multi-hot with 2": (dict(multilabel=True, edit=lambda s, a: a["label"].__setitem__((0, 0), 2)), "only 0 and 1"),
    "bad meta json": (dict(meta="{not json"), "not valid JSON"),
    "unknown meta field": (dict(meta={"labels": []}), "unknown field"),
    "text array": (dict(edit=lambda s, a: a.update(audio=np.array(["x"] * len(a["label"])))), "must hold real numbers"),
    "empty split": (dict(sizes=(20, 0, 6)), "holds no samples"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_folders_are_clear_errors(tmp_path, case):
    options, message = MALFORMED[case]
    root = write_folder(tmp_path / "d", **options)
    if case == "missing split":
        (root / "test.npz").unlink()
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load(root)


def test_a_missing_directory_and_a_corrupt_archive_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="is not a directory"):
        load(tmp_path / "nowhere")
    root = write_folder(tmp_path / "d")
    (root / "val.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="could not be read as a NumPy .npz"):
        load(root)


def test_requested_modalities_must_be_in_the_files(tmp_path):
    with pytest.raises(DatasetError, match="no modality 'video'; available: audio, image"):
        load(write_folder(tmp_path / "d"), modalities=["audio", "video"])


# -- standardisation of vector modalities -----------------------------------------------------------


def badly_scaled(root, *, train_scale=(650.0, 1350.0)):
    """A folder whose 'big' view holds 650 and 1350 in training (mean 1000, standard deviation 350)
    beside a 'small' view of standard normal values, and 2-D 'image' inputs."""
    low, high = train_scale

    def edit(split, arrays):
        n = len(arrays["label"])
        arrays["big"] = np.where(np.arange(n)[:, None] % 2 == 0, low, high) * np.ones((n, 2), np.float32)
        if split == "val":
            arrays["big"][0] = [1700.0, 300.0]
    return write_folder(root, edit=edit)


def folder_config(root, **dataset_params):
    return TrainConfig(dataset="folder", data_path=str(root), modalities=["big", "audio", "image"],
                       dataset_params=dataset_params, epochs=1, batch_size=8, device="cpu",
                       model={"embed_dim": 4, "hidden_dim": 8})


def test_vector_modalities_are_standardised_with_the_training_splits_statistics(tmp_path):
    dataset = load_dataset(folder_config(badly_scaled(tmp_path / "d")))
    assert np.allclose(dataset.train.inputs["big"][:2], [[-1.0, -1.0], [1.0, 1.0]])  # (650 - 1000) / 350
    assert np.allclose(dataset.val.inputs["big"][0], [2.0, -2.0])  # (1700 - 1000) / 350, (300 - 1000) / 350
    assert np.allclose(dataset.train.inputs["audio"].mean(axis=0), 0, atol=1e-6)
    assert np.allclose(dataset.train.inputs["audio"].std(axis=0), 1, atol=1e-5)
    assert np.allclose(dataset.standardization["big"].mean, [1000.0, 1000.0])
    assert np.allclose(dataset.standardization["big"].std, [350.0, 350.0])


def test_two_dimensional_inputs_are_used_as_given(tmp_path):
    root = badly_scaled(tmp_path / "d")
    raw = np.load(root / "train.npz")["image"]
    dataset = load_dataset(folder_config(root))
    assert "image" not in dataset.standardization
    assert np.array_equal(dataset.train.inputs["image"][:, 0], raw)


def test_standardize_false_trains_on_the_features_as_given(tmp_path):
    dataset = load_dataset(folder_config(badly_scaled(tmp_path / "d"), standardize=False))
    assert dataset.standardization == {}
    assert np.array_equal(dataset.train.inputs["big"][:2], [[650.0, 650.0], [1350.0, 1350.0]])


def test_the_checkpoints_keep_the_statistics_and_a_resume_scales_as_the_run_began(tmp_path):
    import torch

    from trainer.checkpoint import BEST, LAST
    from trainer.loop import Training

    root, checkpoints = badly_scaled(tmp_path / "d"), tmp_path / "ckpt"
    Training(folder_config(root), checkpoint_dir=checkpoints).run()
    for name in (BEST, LAST):
        saved = torch.load(checkpoints / name, weights_only=True)["standardization"]
        assert saved["big"]["mean"].tolist() == [1000.0, 1000.0] and saved["big"]["std"].tolist() == [350.0, 350.0]

    badly_scaled(root, train_scale=(0.0, 100.0))  # the files change before the run resumes
    resumed = Training(folder_config(root).model_copy(update={"epochs": 2}), checkpoint_dir=checkpoints)
    assert resumed.run(resume=True).epochs_completed == 2
    # The new training values, 0 and 100, scaled with the first run's statistics: (0 - 1000) / 350 ...
    assert torch.allclose(resumed.train_data.inputs["big"][:2], torch.tensor([[-1000 / 350] * 2, [-900 / 350] * 2]))
