"""Small copies of the four public releases, written in each release's own layout.

Every sample carries its class in a form each encoder can learn quickly (a tone
whose pitch rises with the class, an image whose colour follows it), so that a
few epochs on a few dozen samples show learning end to end.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from trainer.datasets.cremad import EMOTIONS
from trainer.datasets.mmimdb import GENRES

COLOURS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 200, 30), (200, 40, 200), (30, 200, 210), (120, 120, 120)]


def write_wav(path: Path, label: int, *, rate: int, seconds: float, seed: int = 0, channels: int = 1) -> Path:
    """16-bit PCM: a tone at 300 + 150 * label Hz with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.4 * np.sin(2 * np.pi * (300 + 150 * label) * t) + 0.02 * rng.standard_normal(t.size)
    frames = (np.clip(tone, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        frames = np.repeat(frames[:, None], 2, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames.tobytes())
    return path


def write_image(path: Path, label: int, size: tuple[int, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[label % len(COLOURS)]) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


# -- CREMA-D: AudioWAV/<clip>.wav and VideoFlash/<clip>.flv (or frames/<clip>/*.jpg) ---------------------


def cremad_clips(actors: int = 2, sentences: tuple[str, ...] = ("DFA", "IEO")) -> list[tuple[str, int]]:
    return [
        (f"{1001 + a}_{s}_{emotion}_{'XX' if emotion == 'NEU' else 'HI'}", label)
        for a in range(actors) for s in sentences for label, emotion in enumerate(EMOTIONS)
    ]


def write_cremad(root: Path, *, videos: bool = False, frames: bool = True, actors: int = 2, unpaired: int = 0) -> Path:
    """CREMA-D's layout: one WAV per clip, and a video (needs ffmpeg) or a folder of frames per clip.
    ``unpaired`` more clips have audio only."""
    clips = cremad_clips(actors)
    for index, (clip, label) in enumerate(clips):
        write_wav(root / "AudioWAV" / f"{clip}.wav", label, rate=16_000, seconds=1.2, seed=index)
        if frames:
            for frame in range(3):
                write_image(root / "frames" / clip / f"frame_{frame + 1:05d}.jpg", label, (64, 48), seed=index * 3 + frame)
        if videos:
            colour = "#{:02x}{:02x}{:02x}".format(*COLOURS[label])
            (root / "VideoFlash").mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c={colour}:s=64x48:d=1:r=10", "-y",
                 str(root / "VideoFlash" / f"{clip}.flv")], check=True, timeout=60,
            )
    for extra in range(unpaired):
        write_wav(root / "AudioWAV" / f"{1090 + extra}_TIE_SAD_XX.wav", 2, rate=16_000, seconds=1.0)
    return root


# -- S-MNIST: MNIST's IDX files and FSDD's recordings/ ----------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def digit_images(per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28 x 28 images whose bright row band sits lower for larger digits."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit)
    images = rng.integers(0, 30, (len(labels), 28, 28))
    for i, digit in enumerate(labels):
        images[i, 2 + 2 * digit : 5 + 2 * digit, 4:24] = 250
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_smnist(root: Path, *, speakers: tuple[str, ...] = ("george", "lucas"), takes: int = 12) -> Path:
    for part, per_digit, seed in (("train", 8, 0), ("t10k", 3, 1)):
        images, labels = digit_images(per_digit, seed)
        write_idx(root / "mnist" / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(root / "mnist" / f"{part}-labels-idx1-ubyte.gz", labels)
    for digit in range(10):
        for speaker in speakers:
            for take in range(takes):
                write_wav(root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav", digit, rate=8000, seconds=0.4, seed=take)
    return root


# -- LUMA: audio/datalist.csv and its WAVs, beside CIFAR-10's and CIFAR-100's Python releases -------------

CIFAR100_NAMES = ["aquarium_fish", "rose", *[f"other_{i}" for i in range(98)]]


def _pickle(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle, protocol=2)  # the protocol CIFAR's own files use


def cifar_images(labels: list[int], seed: int) -> np.ndarray:
    """CIFAR's rows: 3,072 bytes (red plane, green, blue) per 32 x 32 image, coloured by label."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in labels:
        colour = np.array(COLOURS[label % len(COLOURS)])[:, None, None]
        rows.append(np.clip(colour + rng.integers(-15, 15, (3, 32, 32)), 0, 255).reshape(-1))
    return np.array(rows, dtype=np.uint8)


def write_luma(root: Path, *, per_class: int = 8, missing_listed: int = 1, generated: bool = False) -> Path:
    """Three LUMA classes with ``per_class`` images and recordings (dog and cat from CIFAR-10, fish from
    CIFAR-100's aquarium_fish) and one (horse) with too few recordings."""
    cifar10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(root / "cifar-10-batches-py" / "batches.meta", {"label_names": cifar10, "num_cases_per_batch": 4})
    wanted = [5, 3, 7]  # dog, cat, horse
    per_batch = -(-per_class // 6)
    for index, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        labels = [label for label in wanted for _ in range(per_batch)]
        _pickle(root / "cifar-10-batches-py" / name, {"batch_label": name, "labels": labels, "data": cifar_images(labels, index)})
    _pickle(root / "cifar-100-python" / "meta", {"fine_label_names": CIFAR100_NAMES, "coarse_label_names": ["c"] * 20})
    for index, name in enumerate(("train", "test")):
        labels = [0] * (per_class // 2 + 1) + [99] * 2
        _pickle(root / "cifar-100-python" / name, {"fine_labels": labels, "coarse_labels": [0] * len(labels), "data": cifar_images(labels, 10 + index)})
    if generated:
        import pandas

        images = cifar_images([1] * per_class, 20).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        pandas.DataFrame({"image": list(images), "label": ["rose"] * per_class}).to_pickle(root / "edm_images.pickle")
    rows = []
    for label, (name, count) in enumerate((("dog", per_class), ("cat", per_class), ("fish", per_class), ("horse", 2), ("roses", per_class))):
        for take in range(count):
            rate = 48_000 if take % 2 else 16_000  # LUMA mixes sources recorded at different rates
            relative = f"cv_audio/{name}/{take}.wav"
            write_wav(root / "audio" / relative, label, rate=rate, seconds=0.5, seed=take, channels=1 + take % 2)
            rows.append(f"{relative},{name},{name}")
    rows += [f"cv_audio/dog/absent_{i}.wav,dog,dog" for i in range(missing_listed)]
    (root / "audio" / "datalist.csv").write_text("path,label,tts_label\n" + "\n".join(rows) + "\n")
    return root


# -- MM-IMDb: split.json and dataset/<id>.json + dataset/<id>.jpeg; a tiny BERT -------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "man", "woman", "love", "war", "ghost", "laugh",
         "city", "night", "friends", "battle", "house", "##s", "story", "of", "in"]
PLOTS = {  # genre -> words typical of its plots
    "Drama": "the story of a man", "Comedy": "friends laugh in the city", "Romance": "a woman in love",
    "War": "the battle of the war", "Horror": "a ghost in the house at night",
}


def write_mmimdb(root: Path, *, train: int = 10, dev: int = 4, test: int = 4) -> Path:
    dataset = root / "dataset"
    dataset.mkdir(parents=True, exist_ok=True)
    genres = list(PLOTS)
    ids: dict[str, list[str]] = {}
    number = 0
    for split, count in (("train", train), ("dev", dev), ("test", test)):
        ids[split] = []
        for _ in range(count):
            movie = f"{number:07d}"
            main, second = genres[number % len(genres)], genres[(number + 2) % len(genres)]
            labels = [main] + ([second] if number % 3 == 0 else []) + (["Talk-Show"] if number % 4 == 0 else [])
            plot = f"{PLOTS[main]} {PLOTS[second] if number % 3 == 0 else ''}".strip()
            (dataset / f"{movie}.json").write_text(json.dumps({"title": f"movie {number}", "genres": labels, "plot": [plot, "unused"]}))
            write_image(dataset / f"{movie}.jpeg", GENRES.index(main), (40, 60), seed=number)
            ids[split].append(movie)
            number += 1
    (root / "split.json").write_text(json.dumps(ids))
    return root


def write_tiny_bert(folder: Path) -> Path:
    """A BERT of one small layer with its tokenizer, saved as `save_pretrained` writes them."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


def copy_release(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
