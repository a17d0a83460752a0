"""BERT as the text encoder, built from a tiny configuration saved locally (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch

from tests.conftest import need
from tests.trainer.datasets.releases import WORDS, write_tiny_bert
from trainer.config import ModelConfig
from trainer.datasets import ModalitySpec
from trainer.encoders import RandomInitWarning
from trainer.models import MultiHeadFusionNet
from trainer.text import TextEncoderError, load_bert, text_encoder


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    need(importlib.util.find_spec("transformers") is not None, "transformers (the text extra) is not installed")
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


def test_a_local_bert_encodes_token_ids_into_its_pooled_features(bert):
    encoder = text_encoder(str(bert), tokens=8, vocab_size=len(WORDS))
    ids = torch.tensor([[2, 7, 9, 3, 0, 0, 0, 0], [2, 10, 3, 0, 0, 0, 0, 0]])
    assert encoder(ids).shape == (2, 16)


def test_padding_does_not_change_what_bert_reads(bert):
    encoder = text_encoder(str(bert), tokens=12, vocab_size=len(WORDS)).eval()
    short = torch.tensor([[2, 7, 9, 3, 0, 0]])
    long = torch.tensor([[2, 7, 9, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(encoder(short), encoder(long), atol=1e-6)


def test_a_vocabulary_larger_than_the_models_is_refused(bert):
    with pytest.raises(TextEncoderError, match="vocabulary of 30522 tokens, but the BERT model knows only 22"):
        text_encoder(str(bert), tokens=8, vocab_size=30522)


def test_more_tokens_than_positions_are_refused(bert):
    with pytest.raises(TextEncoderError, match="holds 128 tokens per text, more than the 64 positions"):
        text_encoder(str(bert), tokens=128, vocab_size=len(WORDS))


def test_weights_that_cannot_be_had_give_random_bert_base_with_a_warning(bert, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a name to download, on a machine that cannot
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_bert("no-such-org/no-such-bert")
    assert model.config.hidden_size == 768 and model.config.num_hidden_layers == 12
    assert any(w.category is RandomInitWarning and "could not be loaded" in str(w.message) for w in caught)


def test_a_text_modality_gets_bert_in_the_fusion_network(bert):
    modalities = {"text": ModalitySpec("text", (8,), len(WORDS)), "image": ModalitySpec("image", (3, 16, 16))}
    config = ModelConfig(embed_dim=16, cnn_width=4, pretrained={"text": str(bert)})
    model = MultiHeadFusionNet(modalities, "concat", 23, config)
    out = model({"text": torch.tensor([[2, 7, 3, 0, 0, 0, 0, 0]] * 3), "image": torch.randn(3, 3, 16, 16)})
    assert out.fused.shape == (3, 23) and out.features["text"].shape == (3, 16)
    assert any(p is model.encoders["text"].trunk.bert.embeddings.word_embeddings.weight for p in model.parameter_groups()["text"])
