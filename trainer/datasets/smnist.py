"""S-MNIST: written digits (MNIST) paired with spoken digits (the Free Spoken Digit Dataset).

The paper's second task: the image learns fast and dominates, the audio slowly.
Layout of the source folder, each part as its public release ships it::

    mnist/train-images-idx3-ubyte[.gz]   MNIST's IDX files (LeCun, Cortes and Burges),
    mnist/train-labels-idx1-ubyte[.gz]   also found as MNIST/raw/ (torchvision's layout)
    mnist/t10k-images-idx3-ubyte[.gz]
    mnist/t10k-labels-idx1-ubyte[.gz]
    fsdd/recordings/<digit>_<speaker>_<take>.wav   FSDD's recordings/ folder (8 kHz mono)

Preparation (``miles data prepare smnist``):

- pairs: 8,000 / 2,000 / 2,000, the same number for every digit; each pair is an
  image and a recording of the same digit, drawn with ``seed``. No image and no
  recording is shared between splits: test pairs take MNIST's test images and the
  recordings of takes 0-4 (FSDD's own test split), validation pairs takes 5-9 and
  training pairs the other takes, both with MNIST training images (split once per
  digit). FSDD has far fewer recordings than there are pairs, so a recording
  serves several pairs of its split **(project choice: the paper does not say how
  it paired them)**;
- image: the 28 x 28 digit: [1, 28, 28];
- audio: a 28 x 28 log-mel spectrogram of the recording's first second (512-sample
  Hann windows every 277 samples, 28 mel bands from 0 to 4 kHz, 10 log10 power):
  [1, 28, 28].
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
from pydantic import Field

from trainer.datasets.base import SPLITS, DatasetError, DatasetInfo, ModalitySpec
from trainer.datasets.preparation import Preparation, Sample, StoredModality
from trainer.datasets.prepared import PreparedParams, reader
from trainer.spec import SpecModel

RATE, N_FFT, HOP, SIDE = 8000, 512, 277, 28
RECORDING = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_DIRS = ("mnist", "MNIST/raw")
FSDD_DIRS = ("fsdd/recordings", "recordings")
TEST_TAKES, VAL_TAKES = range(0, 5), range(5, 10)



class PrepareSettings(SpecModel):
    train_size: int = Field(8000, ge=10, le=60_000, description="Training pairs (the paper: 8,000).")
    val_size: int = Field(2000, ge=10, le=20_000, description="Validation pairs (the paper: 2,000).")
    test_size: int = Field(2000, ge=10, le=10_000, description="Test pairs (the paper: 2,000).")
    seed: int = Field(0, ge=0, description="Seed of the pairing.")


INFO = DatasetInfo(
    name="smnist",
    title="S-MNIST (written and spoken digits)",
    description="MNIST digits paired with spoken digits of the same label (FSDD), both 28 x 28: the paper's "
    "second task (ResNet-10 encoders); the image dominates. Prepare MNIST's IDX files and FSDD's recordings "
    "with `miles data prepare smnist`, then give the prepared folder as data_path.",
    task="single_label",
    classes=tuple(str(d) for d in range(10)),
    modalities={"image": ModalitySpec("image", (1, SIDE, SIDE)), "audio": ModalitySpec("spectrogram", (1, SIDE, SIDE))},
    default_modalities=("image", "audio"),
    splits={"train": 8000, "val": 2000, "test": 2000},
    source="MNIST (LeCun, Cortes and Burges) and the Free Spoken Digit Dataset (CC BY-SA 4.0, Jackson et al.)",
)

Params = PreparedParams
describe, load = reader(INFO)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path} cannot be read: {error}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes (its magic number is {data[:4].hex()})")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path} holds {body.size} values, its header promises {shape}")
    return body.reshape(shape)


def _find(source: Path, candidates: tuple[str, ...], names: tuple[str, ...]) -> dict[str, Path] | None:
    for folder in candidates:
        found = {}
        for name in names:
            for suffix in ("", ".gz"):
                if (source / folder / f"{name}{suffix}").is_file():
                    found[name] = source / folder / f"{name}{suffix}"
        if len(found) == len(names):
            return found
    return None


def _layout(source: Path) -> tuple[dict[str, Path], list[Path]]:
    names = tuple(n for pair in MNIST_FILES.values() for n in pair)
    mnist = _find(source, MNIST_DIRS, names)
    recordings = next((source / d for d in FSDD_DIRS if (source / d).is_dir()), None)
    missing = []
    if mnist is None:
        missing.append(f"MNIST's {', '.join(names)} (optionally .gz) in {source / MNIST_DIRS[0]}/ or {source / MNIST_DIRS[1]}/")
    wavs = sorted(p for p in recordings.glob("*.wav") if RECORDING.match(p.stem)) if recordings else []
    if recordings is None:
        missing.append(f"FSDD's recordings in {source / FSDD_DIRS[0]}/ (<digit>_<speaker>_<take>.wav)")
    elif not wavs:
        missing.append(f"recordings named <digit>_<speaker>_<take>.wav in {recordings}/")
    if missing:
        raise DatasetError(f"{source} is not an S-MNIST source as expected; missing: " + "; ".join(missing))
    return mnist, wavs  # type: ignore[return-value]


def _per_digit(total: int) -> list[int]:
    return [total // 10 + (1 if digit < total % 10 else 0) for digit in range(10)]


def _draw(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` items of ``pool``, without repetition while the pool lasts."""
    rounds = -(-count // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:count]


def process(item: tuple[np.ndarray, str]) -> dict[str, np.ndarray]:
    from trainer.datasets import audio  # SciPy loads only to prepare

    image, wav = item
    spectrogram = audio.log_mel(audio.read_wav(Path(wav), RATE), RATE, n_fft=N_FFT, hop=HOP, frames=SIDE, n_mels=SIDE)
    return {"image": np.ascontiguousarray(image, dtype=np.uint8)[None], "audio": spectrogram[None]}


def preparation(source: Path, settings: PrepareSettings) -> Preparation:
    mnist, wavs = _layout(source)
    images, labels = {}, {}
    for part, (image_file, label_file) in MNIST_FILES.items():
        images[part], labels[part] = read_idx(mnist[image_file]), read_idx(mnist[label_file]).astype(np.int64)
        if images[part].ndim != 3 or images[part].shape[1:] != (SIDE, SIDE) or len(images[part]) != len(labels[part]):
            raise DatasetError(f"{mnist[image_file]}: expected [N, 28, 28] images matching {mnist[label_file]}, got {images[part].shape}")
    rng = np.random.default_rng(settings.seed)
    pools: dict[str, dict[int, np.ndarray]] = {split: {} for split in SPLITS}
    sizes = {"train": settings.train_size, "val": settings.val_size, "test": settings.test_size}
    val_share = settings.val_size / (settings.train_size + settings.val_size)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels["train"] == digit))
        cut = max(1, round(len(members) * val_share))
        pools["val"][digit], pools["train"][digit] = members[:cut], members[cut:]
        pools["test"][digit] = np.flatnonzero(labels["test"] == digit)
    recordings: dict[str, dict[int, list[Path]]] = {split: {d: [] for d in range(10)} for split in SPLITS}
    for wav in wavs:
        digit, _, take = RECORDING.match(wav.stem).groups()  # type: ignore[union-attr]
        split = "test" if int(take) in TEST_TAKES else "val" if int(take) in VAL_TAKES else "train"
        recordings[split][int(digit)].append(wav)
    empty = [f"{split} digit {d}" for split in SPLITS for d in range(10)
             if not len(pools[split][d]) or not recordings[split][d]]
    if empty:
        raise DatasetError(
            f"{source} lacks images or recordings for: {', '.join(empty[:6])}{' ...' if len(empty) > 6 else ''} "
            "(test pairs use takes 0-4, validation takes 5-9, training the other takes)"
        )
    plan: dict[str, list[Sample]] = {}
    for split in SPLITS:
        part = "test" if split == "test" else "train"
        plan[split] = []
        for digit, count in enumerate(_per_digit(sizes[split])):
            chosen = _draw(pools[split][digit], count, rng)
            heard = [recordings[split][digit][i] for i in _draw(np.arange(len(recordings[split][digit])), count, rng)]
            plan[split] += [
                Sample(f"{part}-{index}+{wav.stem}", digit, (images[part][index], str(wav)))
                for index, wav in zip(chosen, heard, strict=True)
            ]
    return Preparation(
        dataset=INFO.name, settings=settings.model_dump(), task="single_label", classes=INFO.classes,
        modalities={"image": StoredModality("image", (1, SIDE, SIDE), "uint8", scale=1 / 255),
                    "audio": StoredModality("spectrogram", (1, SIDE, SIDE), "float32")},
        plan=plan, process=process, source=str(source),
    )
