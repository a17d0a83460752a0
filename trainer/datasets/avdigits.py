"""Audio-visual digits: spoken digits (FSDD) paired with written digits (MNIST).

Our offline stand-in for the paper's S-MNIST. Each spoken digit of the Free
Spoken Digit Dataset (3,000 clips, 6 speakers, 10 digits, 50 takes; CC BY-SA
4.0) is paired with an MNIST image of the same label (a 5,000-image subset,
500 per class). The image side learns fast and dominates; the audio side
learns slowly: the imbalance MILES is meant to repair.

- Audio: the first second of the 8 kHz clip (zero-padded), a log-mel
  spectrogram computed with torch (256-point Hann STFT, hop 250, 32 mel bands
  from 0 to 4 kHz, 10*log10 power) of 32 bands x 32 frames, as [1, 32, 32].
- Image: the 28 x 28 digit scaled to [0, 1], as [1, 28, 28].
- Splits follow the FSDD custom: takes 0-4 are the test split (300 clips);
  takes 5-9 are the validation split (300); takes 10-49 train (2,400). The
  MNIST images are split once per class (seed 0) into 400 train, 50 val and
  50 test images, so no image is shared between splits.
- Pairing: each clip gets an image of its label from the same split, drawn
  without repetition while the pool lasts, with ``pairing_seed`` (default: the
  run's seed), so the data is deterministic for a seed.
- Both inputs are standardised with the training split's mean and deviation.

Files are read from ``data_path`` if given, else from ``MILES_DATA_DIR``:
``fsdd/recordings/{digit}_{speaker}_{take}.wav`` and
``mnist5k/mnist_5k.csv.gz``.
"""

from __future__ import annotations

import gzip
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import Field

from trainer.datasets.base import (
    Dataset,
    DatasetError,
    DatasetInfo,
    ModalitySpec,
    Split,
    data_root,
    resolve_data_path,
)
from trainer.spec import SpecModel

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
TAKES = 50
SAMPLE_RATE = 8000
N_FFT, HOP, N_MELS, N_FRAMES = 256, 250, 32, 32
MNIST_FILE = Path("mnist5k") / "mnist_5k.csv.gz"
FSDD_DIR = Path("fsdd") / "recordings"
IMAGES_PER_SPLIT = {"test": 50, "val": 50, "train": 400}


class Params(SpecModel):
    pairing_seed: int | None = Field(
        None, ge=0, description="Seed of the audio-image pairing; by default the run's seed."
    )


INFO = DatasetInfo(
    name="avdigits",
    title="Audio-visual digits (FSDD spoken + MNIST written)",
    description="Spoken digits (log-mel spectrograms) paired with handwritten digits of the same label: "
    "the stand-in for the paper's S-MNIST. The image dominates; the audio learns slowly. "
    "Reads FSDD and MNIST files from MILES_DATA_DIR.",
    task="single_label",
    classes=tuple(str(d) for d in range(10)),
    modalities={
        "audio": ModalitySpec("spectrogram", (1, N_MELS, N_FRAMES)),
        "image": ModalitySpec("image", (1, 28, 28)),
    },
    default_modalities=("audio", "image"),
    splits={"train": 2400, "val": 300, "test": 300},
    source="FSDD (CC BY-SA 4.0, Jackson et al.) and MNIST (LeCun, Cortes and Burges)",
)


def describe(params: Params, data_path: str | None) -> DatasetInfo:
    return INFO


def _clip_name(digit: int, speaker: str, take: int) -> str:
    return f"{digit}_{speaker}_{take}.wav"


def _locate(data_path: str | None) -> Path:
    if data_path:
        root = resolve_data_path(data_path)
        origin = f"data_path {data_path!r} ({root})"
    else:
        root = data_root()
        if root is None:
            raise DatasetError(
                "avdigits reads its files from MILES_DATA_DIR, which is not set: set it to a directory "
                f"holding {FSDD_DIR}/{{digit}}_{{speaker}}_{{take}}.wav (FSDD, 3,000 clips) and {MNIST_FILE}"
            )
        origin = f"MILES_DATA_DIR ({root})"
    missing = [str(root / p) for p in (FSDD_DIR, MNIST_FILE) if not (root / p).exists()]
    if not missing:
        names = {
            _clip_name(d, s, t) for d in range(10) for s in SPEAKERS for t in range(TAKES)
        }
        absent = sorted(names - {p.name for p in (root / FSDD_DIR).glob("*.wav")})
        if absent:
            shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
            missing = [f"{root / FSDD_DIR}/: {shown}"]
    if missing:
        raise DatasetError(
            f"avdigits data is incomplete under {origin}; expected {FSDD_DIR}/{{digit}}_{{speaker}}_{{take}}.wav "
            f"for 10 digits x {len(SPEAKERS)} speakers x {TAKES} takes, and {MNIST_FILE}. Missing: "
            + "; ".join(missing)
        )
    return root


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as handle:
        if handle.getframerate() != SAMPLE_RATE or handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise DatasetError(f"{path}: expected 8 kHz mono 16-bit PCM, got {handle.getparams()}")
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    clip[: min(len(frames), SAMPLE_RATE)] = frames[:SAMPLE_RATE] / 32768.0
    return clip


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int):
    """Triangular filters on the HTK mel scale, shape [n_fft // 2 + 1, n_mels]."""
    import torch

    def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2, dtype=torch.float64))
    low, centre, high = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - low) / (centre - low)
    falling = (high - bins[:, None]) / (high - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def log_mel(clips: np.ndarray) -> np.ndarray:
    """Log-mel spectrograms of [N, 8000] clips, shape [N, 1, N_MELS, N_FRAMES]."""
    import torch

    audio = torch.from_numpy(clips)
    spec = torch.stft(
        audio, n_fft=N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True
    )
    power = spec.abs().pow(2).transpose(1, 2)  # [N, frames, freq]
    mel = power @ mel_filterbank(N_FFT, N_MELS, SAMPLE_RATE)  # [N, frames, mels]
    db = 10.0 * torch.log10(mel.clamp(min=1e-10))
    return db.transpose(1, 2)[:, None, :, :N_FRAMES].contiguous().numpy()


@lru_cache(maxsize=2)
def _features(root: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Spectrograms and labels per split, and all MNIST images and labels (cached per directory)."""
    audio: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    split_of_take = {"test": range(0, 5), "val": range(5, 10), "train": range(10, TAKES)}
    for split, takes in split_of_take.items():
        keys = [(d, s, t) for t in takes for s in SPEAKERS for d in range(10)]
        clips = np.stack([_read_wav(root / FSDD_DIR / _clip_name(*k)) for k in keys])
        audio[split] = (log_mel(clips), np.array([k[0] for k in keys], dtype=np.int64))
    with gzip.open(root / MNIST_FILE, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DatasetError(f"{root / MNIST_FILE}: expected rows of 784 pixels and a label, got shape {table.shape}")
    images = (table[:, :784] / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    return audio, images, table[:, 784].astype(np.int64)


def _image_pools(labels: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
    rng = np.random.default_rng(0)
    pools: dict[str, dict[int, np.ndarray]] = {s: {} for s in IMAGES_PER_SPLIT}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split, count in IMAGES_PER_SPLIT.items():
            pools[split][digit] = members[start : start + count]
            start += count
    return pools


def load(params: Params, data_path: str | None, seed: int) -> Dataset:
    root = _locate(data_path)
    audio, images, image_labels = _features(root)
    pools = _image_pools(image_labels)
    rng = np.random.default_rng(seed if params.pairing_seed is None else params.pairing_seed)
    raw: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for split, (spectrograms, labels) in audio.items():
        chosen = np.empty(len(labels), dtype=np.int64)
        for digit in range(10):
            rows = np.flatnonzero(labels == digit)
            pool = pools[split][digit]
            draws = np.concatenate([rng.permutation(pool) for _ in range(-(-len(rows) // len(pool)))])
            chosen[rows] = draws[: len(rows)]
        raw[split] = (spectrograms, images[chosen], labels)
    stats = {i: (raw["train"][i].mean(), raw["train"][i].std()) for i in (0, 1)}
    splits = {
        split: Split(
            {
                "audio": ((a - stats[0][0]) / stats[0][1]).astype(np.float32),
                "image": ((v - stats[1][0]) / stats[1][1]).astype(np.float32),
            },
            y,
        )
        for split, (a, v, y) in raw.items()
    }
    return Dataset(INFO, splits["train"], splits["val"], splits["test"])
