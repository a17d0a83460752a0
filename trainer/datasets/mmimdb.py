"""MM-IMDb: movie genres from the plot and the poster (Arevalo et al., ICLR workshop 2017).

The paper's fourth task, multilabel with F1 as the metric: text dominates, the
poster learns slowly. Layout of the public release (``mmimdb.tar.gz``)::

    split.json              {"train": [ids], "dev": [ids], "test": [ids]}: 15,552 / 2,608 / 7,799
    dataset/<id>.json       the movie's metadata: "plot" (a list of summaries), "genres", ...
    dataset/<id>.jpeg       its poster

(the folder above ``dataset/``, or its parent holding ``mmimdb/``).

Preparation (``miles data prepare mmimdb``):

- labels: the release's 23 genres (those with enough movies, as every MM-IMDb
  paper uses), multi-hot; other genres are ignored;
- text: the first plot summary, tokenized with BERT's tokenizer (``tokenizer``: a
  local folder or a name such as ``bert-base-uncased``; needs the text extra) to
  ``max_tokens`` ids, padded with 0: [max_tokens] int64;
- image: the poster, RGB resized to 224 x 224: [3, 224, 224];
- split: the release's own ``split.json`` (its ``dev`` is the validation split).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from trainer.datasets.base import SPLITS, DatasetError, DatasetInfo, ModalitySpec
from trainer.datasets.preparation import Preparation, Sample, StoredModality
from trainer.datasets.prepared import PreparedParams, reader
from trainer.spec import SpecModel

GENRES = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror", "Documentary", "Mystery",
    "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History", "Music", "Animation", "Musical", "Western",
    "Sport", "Short", "Film-Noir",
)
RELEASE_SPLITS = {"train": "train", "val": "dev", "test": "test"}
MAX_JSON_BYTES = 10 * 2**20



class PrepareSettings(SpecModel):
    tokenizer: str = Field("bert-base-uncased", min_length=1, description="BERT tokenizer: a local folder or a name to download.")
    max_tokens: int = Field(512, ge=8, le=512, description="Tokens per plot, [CLS] and [SEP] included (longer plots are cut).")
    image_size: int = Field(224, ge=16, le=512, description="Side of the square poster (the paper: 224).")


INFO = DatasetInfo(
    name="mmimdb",
    title="MM-IMDb (movie genres from plot and poster)",
    description="25,959 movies, each with its plot and poster, labelled with any of 23 genres (multilabel, F1): "
    "the paper's fourth task (BERT and ResNet-50 encoders); text dominates. Prepare the release with "
    "`miles data prepare mmimdb` (needs the text extra), then give the prepared folder as data_path.",
    task="multilabel",
    classes=GENRES,
    modalities={"text": ModalitySpec("text", (512,), 30522), "image": ModalitySpec("image", (3, 224, 224))},
    default_modalities=("text", "image"),
    splits={"train": 15_552, "val": 2608, "test": 7799},
    source="MM-IMDb (Arevalo et al. 2017; movie data from IMDb, for research use)",
)

Params = PreparedParams
describe, load = reader(INFO)


def _root(source: Path) -> Path:
    return source / "mmimdb" if not (source / "split.json").exists() and (source / "mmimdb" / "split.json").exists() else source


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MiB; it is not MM-IMDb metadata")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path} cannot be read as JSON: {error}") from None


def _split_ids(root: Path) -> dict[str, list[str]]:
    listing = _read_json(root / "split.json")
    wrong = [key for key in RELEASE_SPLITS.values() if not isinstance(listing, dict) or not isinstance(listing.get(key), list)]
    if wrong:
        raise DatasetError(f"{root / 'split.json'} must map 'train', 'dev' and 'test' to lists of movie ids; wrong or absent: {', '.join(wrong)}")
    return {split: [str(i) for i in listing[key]] for split, key in RELEASE_SPLITS.items()}


def _layout(root: Path) -> dict[str, list[str]]:
    missing = [p for p in ("split.json", "dataset") if not (root / p).exists()]
    if missing:
        raise DatasetError(
            f"{root} is not an MM-IMDb release as expected (split.json beside dataset/<id>.json and dataset/<id>.jpeg); "
            f"missing: {', '.join(missing)}"
        )
    ids = _split_ids(root)
    absent = [f"dataset/{movie}.{suffix}" for split in SPLITS for movie in ids[split] for suffix in ("json", "jpeg")
              if not (root / "dataset" / f"{movie}.{suffix}").is_file()]
    if absent:
        raise DatasetError(
            f"{root}: split.json lists movies whose files are missing: {', '.join(absent[:5])}"
            + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        )
    return ids


def tokenizer_for(source: str) -> Any:
    from trainer.text import from_pretrained, transformers_module

    try:
        return from_pretrained(transformers_module().AutoTokenizer, source)
    except (OSError, ValueError) as error:
        raise DatasetError(f"the tokenizer {source!r} cannot be loaded ({error}); give a local folder holding one") from None


def plot_of(metadata: dict[str, Any], path: Path) -> str:
    plot = metadata.get("plot")
    if isinstance(plot, list) and plot and isinstance(plot[0], str):
        return plot[0]
    if isinstance(plot, str):
        return plot
    raise DatasetError(f"{path} has no plot (a list of summaries under 'plot')")


def process(item: tuple[np.ndarray, str, int]) -> dict[str, np.ndarray]:
    from trainer.datasets import images  # Pillow loads only to prepare

    ids, poster, size = item
    return {"text": ids, "image": images.pixels(images.open_image(Path(poster)), size, size)}


def preparation(source: Path, settings: PrepareSettings) -> Preparation:
    root = _root(source)
    ids = _layout(root)
    tokenizer = tokenizer_for(settings.tokenizer)
    plan: dict[str, list[Sample]] = {}
    for split in SPLITS:
        plots, genres = [], []
        for movie in ids[split]:
            path = root / "dataset" / f"{movie}.json"
            metadata = _read_json(path)
            if not isinstance(metadata, dict):
                raise DatasetError(f"{path} must be a JSON object")
            plots.append(plot_of(metadata, path))
            genres.append(tuple(GENRES.index(g) for g in metadata.get("genres") or [] if g in GENRES))
        tokens = tokenizer(plots, max_length=settings.max_tokens, padding="max_length", truncation=True)["input_ids"]
        plan[split] = [
            Sample(movie, labels, (np.asarray(row, dtype=np.int64), str(root / "dataset" / f"{movie}.jpeg"), settings.image_size))
            for movie, labels, row in zip(ids[split], genres, tokens, strict=True)
        ]
    without = sum(1 for split in SPLITS for s in plan[split] if not s.label)
    notes = [f"{without} movie(s) have none of the 23 genres (all-zero labels)"] if without else []
    side = settings.image_size
    return Preparation(
        dataset=INFO.name, settings=settings.model_dump(), task="multilabel", classes=GENRES,
        modalities={"text": StoredModality("text", (settings.max_tokens,), "int64", vocab_size=len(tokenizer)),
                    "image": StoredModality("image", (3, side, side), "uint8", scale=1 / 255)},
        plan=plan, process=process, source=str(source), notes=notes,
    )
