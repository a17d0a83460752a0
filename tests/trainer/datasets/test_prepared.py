"""Preparing and reading prepared folders: arrays per split and modality, a manifest, resumption, no mixing."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal

import numpy as np
import pytest

from trainer.datasets import DatasetError, preparation
from trainer.datasets import prepared as prep
from trainer.datasets.base import DatasetInfo, ModalitySpec, exact_stratified_indices, split_sizes
from trainer.datasets.preparation import Preparation, Sample, StoredModality, prepare
from trainer.datasets.prepared import Codec, load_prepared

PROCESSED: list[int] = []  # the items processed in this process, for the resumption tests


def process(item: int) -> dict[str, np.ndarray]:
    """Sample ``item``: an image filled with ``item`` and a 'spectrogram' of ``item / 2``."""
    PROCESSED.append(item)
    return {"image": np.full((1, 2, 2), item, dtype=np.uint8), "audio": np.full((1, 3, 1), item / 2, dtype=np.float32)}


INFO = DatasetInfo("toy", "Toy", "A toy", "single_label", ("a", "b"), {}, ("image", "audio"))


def toy(settings=None, sizes=(6, 2, 2)) -> Preparation:
    plan, item = {}, 0
    for split, size in zip(("train", "val", "test"), sizes, strict=True):
        plan[split] = [Sample(f"s{item + i}", (item + i) % 2, item + i) for i in range(size)]
        item += size
    return Preparation(
        dataset="toy", settings=settings or {"size": 2}, task="single_label", classes=("a", "b"),
        modalities={"image": StoredModality("image", (1, 2, 2), "uint8", scale=1 / 255),
                    "audio": StoredModality("spectrogram", (1, 3, 1), "float32")},
        plan=plan, process=process, source="/releases/toy", notes=["one note"],
    )


@pytest.fixture(autouse=True)
def fresh_counter():
    PROCESSED.clear()


def test_a_prepared_folder_holds_an_array_per_split_and_modality_and_the_ids(tmp_path):
    manifest = prepare(toy(), tmp_path / "out")
    train = tmp_path / "out" / "train"
    assert np.load(train / "image.npy").shape == (6, 1, 2, 2) and np.load(train / "image.npy").dtype == np.uint8
    assert np.load(train / "audio.npy")[:, 0, 0, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5]
    assert np.load(train / "label.npy").tolist() == [0, 1, 0, 1, 0, 1]
    assert json.loads((tmp_path / "out" / "test" / "ids.json").read_text()) == ["s8", "s9"]
    assert manifest.splits == {"train": 6, "val": 2, "test": 2}
    assert not (tmp_path / "out" / prep.WORK).exists()


def test_the_manifest_records_settings_checksums_and_the_training_splits_statistics(tmp_path):
    prepare(toy({"size": 2, "seed": 0}), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["dataset"] == "toy" and manifest["settings"] == {"size": 2, "seed": 0}
    assert manifest["notes"] == ["one note"] and manifest["source"] == "/releases/toy"
    # Training pixels are 0..5 (each over 4 values), scaled by 1/255: mean 2.5/255; deviation sqrt(35/12)/255.
    image = manifest["modalities"]["image"]
    assert image["mean"] == [pytest.approx(2.5 / 255)] and image["std"] == [pytest.approx((35 / 12) ** 0.5 / 255)]
    assert manifest["files"]["train/image.npy"]["sha256"] == prep.sha256_of(tmp_path / "out" / "train" / "image.npy")
    assert set(manifest["files"]) == {f"{s}/{n}" for s in ("train", "val", "test")
                                      for n in ("image.npy", "audio.npy", "label.npy", "ids.json")}


def test_worker_processes_prepare_the_same_arrays(tmp_path):
    prepare(toy(), tmp_path / "one")
    prepare(toy(), tmp_path / "two", workers=2)
    for name in ("image.npy", "audio.npy", "label.npy"):
        assert np.array_equal(np.load(tmp_path / "one" / "val" / name), np.load(tmp_path / "two" / "val" / name))


def test_an_interrupted_preparation_resumes_without_redoing_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(preparation, "CHUNK", 2)

    def stop_after_two_chunks(done, total):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(toy(), tmp_path / "out", progress=stop_after_two_chunks)
    assert PROCESSED == [0, 1, 2, 3]
    assert not (tmp_path / "out" / "manifest.json").exists()
    PROCESSED.clear()
    seen = []
    prepare(toy(), tmp_path / "out", progress=lambda done, total: seen.append((done, total)))
    assert PROCESSED == [4, 5, 6, 7, 8, 9]
    assert seen[0] == (4, 10) and seen[-1] == (10, 10)
    assert np.load(tmp_path / "out" / "train" / "image.npy")[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_ctrl_c_during_a_chunk_stops_once_that_chunk_is_written(tmp_path, monkeypatch):
    """SIGINT while the third item is processed: the chunk of items 2 and 3 is still written, then the
    preparation stops (KeyboardInterrupt), and SIGINT's handler is as it was."""
    monkeypatch.setattr(preparation, "CHUNK", 2)
    before = signal.getsignal(signal.SIGINT)

    def interrupting(item):
        if item == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return process(item)

    with pytest.raises(KeyboardInterrupt):
        prepare(dataclasses.replace(toy(), process=interrupting), tmp_path / "out")
    assert PROCESSED == [0, 1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "out" / preparation.WORK / "train").glob("*.npz")) == ["00000.npz", "00001.npz"]
    assert signal.getsignal(signal.SIGINT) is before


def test_preparing_the_same_settings_again_does_nothing(tmp_path):
    first = prepare(toy(), tmp_path / "out")
    PROCESSED.clear()
    assert prepare(toy(), tmp_path / "out") == first
    assert PROCESSED == []


def test_a_folder_prepared_with_other_settings_is_never_mixed(tmp_path):
    prepare(toy({"size": 2}), tmp_path / "out")
    with pytest.raises(DatasetError, match=r"already holds 'toy' with settings \{\"size\": 2\}; you asked for 'toy' with \{\"size\": 3\}"):
        prepare(toy({"size": 3}), tmp_path / "out")


def interrupted_after_one_chunk(plan: Preparation, dest, monkeypatch) -> None:
    monkeypatch.setattr(preparation, "CHUNK", 2)

    def stop(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(plan, dest, progress=stop)


def test_an_unfinished_preparation_with_other_settings_is_not_continued(tmp_path, monkeypatch):
    interrupted_after_one_chunk(toy({"size": 2}), tmp_path / "out", monkeypatch)
    with pytest.raises(DatasetError, match="holds an unfinished preparation of 'toy'"):
        prepare(toy({"size": 3}), tmp_path / "out")


def test_a_source_that_changed_since_the_unfinished_preparation_is_refused(tmp_path, monkeypatch):
    interrupted_after_one_chunk(toy(), tmp_path / "out", monkeypatch)
    with pytest.raises(DatasetError, match="the source changed"):
        prepare(toy(sizes=(5, 2, 3)), tmp_path / "out")


def test_a_folder_another_preparation_is_writing_into_is_refused(tmp_path):
    (tmp_path / "out" / prep.WORK).mkdir(parents=True)
    with (tmp_path / "out" / prep.WORK / "lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running `miles data prepare` holds
        with pytest.raises(DatasetError, match="another `miles data prepare` is writing into"):
            prepare(toy(), tmp_path / "out")
    assert prepare(toy(), tmp_path / "out").splits["train"] == 6


def test_a_folder_holding_other_files_is_refused_as_destination(tmp_path):
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "clip.wav").write_bytes(b"RIFF")
    with pytest.raises(DatasetError, match="is not empty and holds no preparation"):
        prepare(toy(), tmp_path / "release")


def test_verify_names_a_file_that_changed(tmp_path):
    prepare(toy(), tmp_path / "out")
    assert prep.verify(tmp_path / "out") == []
    labels = tmp_path / "out" / "val" / "label.npy"
    data = bytearray(labels.read_bytes())
    data[-1] ^= 1
    labels.write_bytes(bytes(data))
    assert prep.verify(tmp_path / "out") == ["val/label.npy: its SHA-256 differs from the manifest's"]


def test_a_prepared_split_reads_decoded_inputs_from_disk(tmp_path):
    prepare(toy(), tmp_path / "out")
    dataset = load_prepared(INFO, str(tmp_path / "out"))
    assert dataset.info.modalities == {"image": ModalitySpec("image", (1, 2, 2)), "audio": ModalitySpec("spectrogram", (1, 3, 1))}
    assert isinstance(dataset.train.inputs["image"], np.memmap)
    rows = dataset.train.rows(np.array([5, 0]))
    mean, std = 2.5 / 255, (35 / 12) ** 0.5 / 255
    assert rows["image"][:, 0, 0, 0] == pytest.approx([(5 / 255 - mean) / std, (0 - mean) / std], rel=1e-5)
    memory = dataset.train.in_memory(rows=4)
    assert memory.inputs["audio"].dtype == np.float32 and memory.inputs["audio"].shape == (6, 1, 3, 1)
    assert dataset.notes == ["one note"]


def test_a_codec_scales_then_standardises_each_channel():
    codec = Codec(0.5, np.array([1.0, 0.0], dtype=np.float32), np.array([2.0, 4.0], dtype=np.float32))
    stored = np.array([[[[2.0]], [[8.0]]]])  # one sample, two channels, 1 x 1
    assert codec.decode(stored).ravel().tolist() == [(2 * 0.5 - 1) / 2, (8 * 0.5 - 0) / 4]
    ids = np.array([[2, 7, 0]])
    assert Codec(1.0, None, None).decode(ids) is not None and Codec(1.0, None, None).decode(ids).dtype == ids.dtype


def test_loading_names_what_is_wrong_with_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="has no manifest.json"):
        load_prepared(INFO, str(tmp_path))
    prepare(toy(), tmp_path / "out")
    other = DatasetInfo("cremad", "CREMA-D", "", "single_label", (), {}, ())
    with pytest.raises(DatasetError, match="holds a prepared 'toy' dataset, not 'cremad'"):
        load_prepared(other, str(tmp_path / "out"))
    (tmp_path / "out" / "test" / "audio.npy").unlink()
    with pytest.raises(DatasetError, match="incomplete: test/audio.npy missing"):
        load_prepared(INFO, str(tmp_path / "out"))
    with pytest.raises(DatasetError, match="needs data_path"):
        load_prepared(INFO, None)


def test_exact_stratified_split_has_the_exact_sizes_and_keeps_class_shares():
    labels = np.array([0] * 1271 * 5 + [5] * 1087)  # CREMA-D's counts: five emotions of 1,271 clips, NEU 1,087
    sizes = split_sizes(len(labels), (0.15, 0.15))
    assert sizes == (5210, 1116, 1116)
    train, val, test = exact_stratified_indices(labels, sizes, seed=0)
    assert (len(train), len(val), len(test)) == sizes
    assert len(set(train) | set(val) | set(test)) == len(labels)
    assert abs((labels[val] == 5).mean() - 1087 / 7442) < 0.002
