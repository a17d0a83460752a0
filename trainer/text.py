"""BERT as a text encoder (the paper's MM-IMDb plot encoder), from Hugging Face `transformers`.

`transformers` is an optional extra (``pip install 'miles-dashboard[text]'``) and is
imported only when a text encoder is built, never at import time. The encoder takes
token ids, [batch, tokens] (0 is padding, as in BERT's vocabularies), and returns
BERT's pooled [CLS] representation, the input of ``BertForSequenceClassification``'s
classifier.

Weights: a local directory in the format ``save_pretrained`` writes (``config.json``
and ``model.safetensors``), or a model name such as ``bert-base-uncased``, which
`transformers` downloads when this machine can reach the hub. Without either, or
when the download fails, the encoder is BERT-base randomly initialised and a
warning says so.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from trainer.encoders import RandomInitWarning

EXTRA_HINT = "install the text extra: pip install 'miles-dashboard[text]'"


class TextEncoderError(ValueError):
    """A text encoder cannot be built (no `transformers`, or weights that do not fit the data)."""


def transformers_module() -> Any:
    try:
        import transformers
    except ImportError:
        raise TextEncoderError(f"a BERT text encoder needs the transformers package; {EXTRA_HINT}") from None
    return transformers


class BertEncoder(nn.Module):
    def __init__(self, bert: nn.Module, pad_id: int = 0) -> None:
        super().__init__()
        self.bert = bert
        self.pad_id = pad_id
        self.out_features = int(bert.config.hidden_size)

    def forward(self, ids: Tensor) -> Tensor:
        out = self.bert(input_ids=ids, attention_mask=(ids != self.pad_id).long())
        return out.pooler_output


def from_pretrained(kind: Any, source: str) -> Any:
    """``kind.from_pretrained`` (a model or tokenizer class) of a local folder when ``source`` is one,
    without touching the network; else of the hub name ``source``. Raises OSError or ValueError."""
    local = Path(source).expanduser()
    if local.exists():
        return kind.from_pretrained(str(local), local_files_only=True)
    return kind.from_pretrained(source)


def load_bert(source: str | None) -> nn.Module:
    """A ``BertModel`` from a local directory or a hub name; BERT-base randomly initialised (with a
    `RandomInitWarning`) when ``source`` is None or cannot be loaded."""
    transformers = transformers_module()
    if source:
        try:
            return from_pretrained(transformers.BertModel, source)
        except (OSError, ValueError) as error:
            warnings.warn(RandomInitWarning(
                f"BERT weights {source!r} could not be loaded ({_first_line(error)}); the text encoder starts "
                "from random BERT-base weights"
            ), stacklevel=2)
    else:
        warnings.warn(RandomInitWarning(
            "no pretrained BERT was given (model.pretrained.<text modality>): the text encoder starts from "
            "random BERT-base weights; the paper fine-tunes bert-base-uncased"
        ), stacklevel=2)
    return transformers.BertModel(transformers.BertConfig())


def text_encoder(source: str | None, tokens: int, vocab_size: int | None) -> BertEncoder:
    """A `BertEncoder` for sequences of ``tokens`` ids drawn from a vocabulary of ``vocab_size``."""
    bert = load_bert(source)
    config = bert.config
    if vocab_size is not None and vocab_size > config.vocab_size:
        raise TextEncoderError(
            f"the data was tokenized with a vocabulary of {vocab_size} tokens, but the BERT model knows only "
            f"{config.vocab_size}; prepare the data with this model's tokenizer, or give its matching weights"
        )
    if tokens > config.max_position_embeddings:
        raise TextEncoderError(
            f"the data holds {tokens} tokens per text, more than the {config.max_position_embeddings} positions of "
            "the BERT model; prepare it with a smaller max_tokens"
        )
    return BertEncoder(bert, pad_id=int(config.pad_token_id or 0))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
