"""MM-IMDb from its release layout: multi-hot genres, BERT token ids, posters, the release's split, errors."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tests.conftest import need
from tests.trainer.datasets.releases import WORDS, write_mmimdb, write_tiny_bert
from trainer.datasets import DatasetError, mmimdb
from trainer.datasets.preparation import prepare
from trainer.datasets.prepared import load_prepared


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    need(importlib.util.find_spec("transformers") is not None, "transformers (the text extra) is not installed")
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


def settings(bert, **changes):
    return mmimdb.PrepareSettings(tokenizer=str(bert), max_tokens=12, image_size=32, **changes)


def test_the_releases_split_gives_the_splits_with_dev_as_validation(tmp_path, bert):
    plan = mmimdb.preparation(write_mmimdb(tmp_path / "mmimdb"), settings(bert)).plan
    listing = json.loads((tmp_path / "mmimdb" / "split.json").read_text())
    assert [s.id for s in plan["train"]] == listing["train"] and [s.id for s in plan["val"]] == listing["dev"]


def test_genres_become_multi_hot_over_the_23_genres_and_others_are_ignored(tmp_path, bert):
    source = write_mmimdb(tmp_path / "mmimdb")
    prepare(mmimdb.preparation(source, settings(bert)), tmp_path / "prepared")
    labels = np.load(tmp_path / "prepared" / "train" / "label.npy")
    assert labels.shape == (10, 23) and len(mmimdb.GENRES) == 23
    first = json.loads((source / "dataset" / "0000000.json").read_text())["genres"]
    assert first == ["Drama", "Romance", "Talk-Show"]  # Talk-Show is not one of the 23
    assert np.flatnonzero(labels[0]).tolist() == sorted([mmimdb.GENRES.index("Drama"), mmimdb.GENRES.index("Romance")])


def test_the_first_plot_becomes_padded_bert_token_ids(tmp_path, bert):
    source = write_mmimdb(tmp_path / "mmimdb")
    manifest = prepare(mmimdb.preparation(source, settings(bert)), tmp_path / "prepared")
    assert manifest.modalities["text"].model_dump(include={"kind", "shape", "dtype", "vocab_size", "mean"}) == {
        "kind": "text", "shape": [12], "dtype": "int64", "vocab_size": len(WORDS), "mean": None,
    }
    ids = np.load(tmp_path / "prepared" / "train" / "text.npy")[1]  # movie 1: "friends laugh in the city"
    words = [WORDS[i] for i in ids]
    assert words[:7] == ["[CLS]", "friends", "laugh", "in", "the", "city", "[SEP]"] and set(words[7:]) == {"[PAD]"}
    data = load_prepared(mmimdb.INFO, str(tmp_path / "prepared"))
    assert data.info.task == "multilabel" and data.info.modalities["text"].vocab_size == len(WORDS)
    assert data.train.rows(np.array([1]))["text"].dtype == np.int64
    assert data.train.rows(np.array([1]))["image"].shape == (1, 3, 32, 32)


def test_a_release_without_its_split_file_is_named(tmp_path, bert):
    source = write_mmimdb(tmp_path / "mmimdb")
    (source / "split.json").unlink()
    with pytest.raises(DatasetError, match="missing: split.json"):
        mmimdb.preparation(source, settings(bert))


def test_movies_listed_without_their_poster_are_named(tmp_path, bert):
    source = write_mmimdb(tmp_path / "mmimdb")
    (source / "dataset" / "0000003.jpeg").unlink()
    with pytest.raises(DatasetError, match="split.json lists movies whose files are missing: dataset/0000003.jpeg"):
        mmimdb.preparation(source, settings(bert))


def test_a_split_file_of_another_shape_is_named(tmp_path, bert):
    source = write_mmimdb(tmp_path / "mmimdb")
    (source / "split.json").write_text(json.dumps({"train": ["0000000"], "val": []}))
    with pytest.raises(DatasetError, match="must map 'train', 'dev' and 'test' to lists of movie ids; wrong or absent: dev, test"):
        mmimdb.preparation(source, settings(bert))


def test_the_folder_above_mmimdb_is_accepted_as_the_source(tmp_path, bert):
    write_mmimdb(tmp_path / "downloads" / "mmimdb")
    assert len(mmimdb.preparation(tmp_path / "downloads", settings(bert)).plan["test"]) == 4
