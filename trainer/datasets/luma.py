"""LUMA: spoken class names paired with CIFAR images (Bezirganyan et al., SIGIR 2025).

The paper's third task, on LUMA's image and audio modalities only: audio dominates,
the image learns slowly. Layout of the source folder: LUMA's release (its
Hugging Face dataset) beside CIFAR, which LUMA's images come from::

    audio/datalist.csv             one row per recording: path (relative to audio/), label, ...
    audio/<source>_audio/<label>/*.wav
    cifar-10-batches-py/           CIFAR-10's Python release (data_batch_1..5, test_batch, batches.meta)
    cifar-100-python/              CIFAR-100's Python release (train, test, meta)
    edm_images.pickle              optional: LUMA's generated images of the CIFAR-100 classes
                                   (a pandas DataFrame; reading it needs pandas)

Preparation (``miles data prepare luma``), after the paper:

- classes: those of LUMA's 50 with at least ``samples_per_class`` (1,500) images
  and recordings, each cut to exactly that many (drawn with ``seed``), so every
  class is balanced; the paper keeps 22 classes this way. CIFAR's class names
  are mapped to LUMA's as LUMA's own tools do (``aquarium_fish`` is ``fish``, ...);
  images of CIFAR's training and test files and the generated ones are pooled;
- split: 25,000 / 4,000 / 4,000 of the 33,000 pairs, stratified by class;
- audio: the recording at 16 kHz, its first second (zero-padded), a 96-band
  log-mel spectrogram of 96 frames (400-sample Hann windows every 164 samples,
  0 to 8 kHz, 10 log10 power): [1, 96, 96] **(project choice: the paper gives the
  96 x 96 size and the 96 bands, not the windows)**;
- image: the 32 x 32 CIFAR image resized bilinearly to 96 x 96: [3, 96, 96].

CIFAR's files are Python pickles; they are read with an unpickler that builds
nothing but NumPy arrays and plain values.
"""

from __future__ import annotations

import csv
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from trainer.datasets.base import (
    SPLITS,
    DatasetError,
    DatasetInfo,
    ModalitySpec,
    exact_stratified_indices,
)
from trainer.datasets.preparation import Preparation, Sample, StoredModality
from trainer.datasets.prepared import PreparedParams, reader
from trainer.spec import SpecModel

# LUMA's 50 classes in LUMA's own order (its label_class_mapping).
LUMA_CLASSES = (
    "man", "boy", "house", "woman", "girl", "table", "road", "horse", "dog", "ship", "bird", "mountain", "bed",
    "train", "bridge", "fish", "cloud", "chair", "cat", "baby", "castle", "forest", "television", "bear", "camel",
    "sea", "fox", "plain", "bus", "snake", "lamp", "clock", "lion", "tank", "palm", "rabbit", "pine", "cattle", "oak",
    "mouse", "frog", "ray", "bicycle", "truck", "elephant", "roses", "wolf", "telephone", "bee", "whale",
)
CIFAR_NAMES = {"aquarium_fish": "fish", "pickup_truck": "truck", "oak_tree": "oak", "rose": "roses",
               "pine_tree": "pine", "palm_tree": "palm"}
CIFAR10 = ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "batches.meta", "label_names", "labels")
CIFAR100 = ("cifar-100-python", ["train", "test"], "meta", "fine_label_names", "fine_labels")
RATE, N_FFT, HOP, BANDS = 16_000, 400, 164, 96
PAPER_CLASSES = 22



class PrepareSettings(SpecModel):
    samples_per_class: int = Field(1500, ge=2, le=100_000, description="Pairs kept per class; classes with fewer are left out (the paper: 1,500).")
    val_size: int = Field(4000, ge=1, description="Validation pairs (the paper: 4,000).")
    test_size: int = Field(4000, ge=1, description="Test pairs (the paper: 4,000).")
    size: int = Field(96, ge=16, le=512, description="Side of the square image and spectrogram frames (the paper: 96).")
    seed: int = Field(0, ge=0, description="Seed of the sampling, pairing and split.")


INFO = DatasetInfo(
    name="luma",
    title="LUMA (spoken words and CIFAR images)",
    description="Recordings of people saying a class name paired with CIFAR images of that class, 22 balanced "
    "classes: a 96-band mel spectrogram and a 96 x 96 image. The paper's third task (ResNet-6 encoders); audio "
    "dominates. Prepare LUMA's release and CIFAR with `miles data prepare luma`, then give the prepared folder "
    "as data_path.",
    task="single_label",
    classes=(),
    modalities={"audio": ModalitySpec("spectrogram", (1, BANDS, BANDS)), "image": ModalitySpec("image", (3, BANDS, BANDS))},
    default_modalities=("audio", "image"),
    splits={"train": 25_000, "val": 4000, "test": 4000},
    source="LUMA (CC BY-SA 4.0; Bezirganyan et al.) with CIFAR-10/100 (Krizhevsky 2009)",
)

Params = PreparedParams
describe, load = reader(INFO)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays and plain values, nothing that could run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR file")
        return super().find_class(module, name)


def read_cifar_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return _ArraysOnly(handle, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise DatasetError(f"{path} cannot be read as a CIFAR file: {error}") from None


def _cifar_images(source: Path) -> dict[str, list[np.ndarray]]:
    """Every CIFAR image (and generated one) of a LUMA class, [32, 32, 3] uint8, by LUMA class name."""
    pooled: dict[str, list[np.ndarray]] = {}
    for folder, files, meta, names_key, labels_key in (CIFAR10, CIFAR100):
        names = [CIFAR_NAMES.get(n, n) for n in read_cifar_file(source / folder / meta)[names_key]]
        for name in files:
            batch = read_cifar_file(source / folder / name)
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            for image, label in zip(data, batch[labels_key], strict=True):
                if names[label] in LUMA_CLASSES:
                    pooled.setdefault(names[label], []).append(image)
    generated = source / "edm_images.pickle"
    if generated.is_file():
        try:
            import pandas
        except ImportError:
            raise DatasetError(f"reading {generated} needs pandas (pip install pandas), or move the file away") from None
        frame = pandas.read_pickle(generated)  # LUMA's own release file, a pickled DataFrame
        for image, label in zip(frame["image"], frame["label"], strict=True):
            name = CIFAR_NAMES.get(label, label)
            if name in LUMA_CLASSES:
                pooled.setdefault(name, []).append(np.asarray(image, dtype=np.uint8).reshape(32, 32, 3))
    return pooled


def _recordings(source: Path) -> tuple[dict[str, list[Path]], int]:
    """The recordings listed in audio/datalist.csv whose files exist, by class; and how many did not."""
    listing = source / "audio" / "datalist.csv"
    with listing.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{listing} must have the columns path and label; it has {reader.fieldnames}")
        rows = list(reader)
    found: dict[str, list[Path]] = {}
    absent = 0
    for row in rows:
        candidates = (source / "audio" / row["path"], source / row["path"])
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            absent += 1
        elif row["label"] in LUMA_CLASSES:
            found.setdefault(row["label"], []).append(path)
    return found, absent


def _layout(source: Path) -> None:
    expected = [source / "audio" / "datalist.csv",
                *(source / CIFAR10[0] / n for n in [*CIFAR10[1], CIFAR10[2]]),
                *(source / CIFAR100[0] / n for n in [*CIFAR100[1], CIFAR100[2]])]
    missing = [str(p.relative_to(source)) for p in expected if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{source} is not a LUMA source as expected (LUMA's audio/ beside CIFAR-10's and CIFAR-100's Python "
            f"releases); missing: {', '.join(missing)}"
        )


def process(item: tuple[np.ndarray, str, int]) -> dict[str, np.ndarray]:
    from trainer.datasets import audio, images  # SciPy and Pillow load only to prepare

    image, wav, size = item
    clip = audio.read_wav(Path(wav), RATE)
    spectrogram = audio.log_mel(clip, RATE, n_fft=N_FFT, hop=HOP, frames=BANDS, n_mels=BANDS)
    if size != BANDS:
        spectrogram = audio.resize(spectrogram, size, size)
    return {"audio": spectrogram[None], "image": images.array_pixels(image, size, size)}


def preparation(source: Path, settings: PrepareSettings) -> Preparation:
    _layout(source)
    pictures = _cifar_images(source)
    recordings, absent = _recordings(source)
    per_class = settings.samples_per_class
    kept = [c for c in LUMA_CLASSES if len(pictures.get(c, [])) >= per_class and len(recordings.get(c, [])) >= per_class]
    if len(kept) < 2:
        counts = Counter({c: min(len(pictures.get(c, [])), len(recordings.get(c, []))) for c in LUMA_CLASSES})
        richest = ", ".join(f"{c} {n}" for c, n in counts.most_common(4))
        raise DatasetError(
            f"fewer than two LUMA classes have {per_class} images and recordings (most: {richest}); "
            "check the source, or lower samples_per_class"
        )
    total = len(kept) * per_class
    if settings.val_size + settings.test_size >= total:
        raise DatasetError(f"val_size + test_size ({settings.val_size + settings.test_size}) leave no training pairs of {total}")
    rng = np.random.default_rng(settings.seed)
    samples = []
    for label, name in enumerate(kept):
        chosen = rng.choice(len(pictures[name]), per_class, replace=False)
        heard = rng.choice(len(recordings[name]), per_class, replace=False)
        for image_index, wav_index in zip(chosen, heard, strict=True):
            wav = recordings[name][wav_index]
            samples.append(Sample(f"{name}/{image_index}+{wav.relative_to(source)}", label,
                                  (pictures[name][image_index], str(wav), settings.size)))
    labels = np.array([s.label for s in samples])
    sizes = (total - settings.val_size - settings.test_size, settings.val_size, settings.test_size)
    parts = exact_stratified_indices(labels, sizes, settings.seed)
    notes = []
    if len(kept) != PAPER_CLASSES and per_class == 1500:
        notes.append(f"{len(kept)} classes have {per_class} images and recordings; the paper kept {PAPER_CLASSES}")
    if absent:
        notes.append(f"{absent} recording(s) listed in audio/datalist.csv have no file and were left out")
    side = settings.size
    return Preparation(
        dataset=INFO.name, settings=settings.model_dump(), task="single_label", classes=tuple(kept),
        modalities={"audio": StoredModality("spectrogram", (1, side, side), "float32"),
                    "image": StoredModality("image", (3, side, side), "uint8", scale=1 / 255)},
        plan={split: [samples[i] for i in rows] for split, rows in zip(SPLITS, parts, strict=True)},
        process=process, source=str(source), notes=notes,
    )
