"""Audio for the prepare step: reading WAV files, resampling, spectrograms and mel filters.

SciPy does the signal processing (`scipy.io.wavfile` reads PCM and float WAV files of
any rate and channel count, `scipy.signal.resample_poly` resamples, and
`scipy.signal.spectrogram` is the spectrogram the OGM-GE code base computes for
CREMA-D); the mel filters are the HTK triangles, written out below.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import signal
from scipy.io import wavfile

from trainer.datasets.base import DatasetError

LOG_FLOOR = 1e-7


def read_wav(path: Path, rate: int) -> np.ndarray:
    """The clip at ``path`` as mono float32 in [-1, 1], resampled to ``rate`` Hz."""
    try:
        source_rate, data = wavfile.read(path)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"{path} cannot be read as a WAV file: {error}") from None
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        audio = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    else:
        audio = data.astype(np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise DatasetError(f"{path} holds no samples")
    if source_rate != rate:
        common = math.gcd(int(source_rate), rate)
        audio = signal.resample_poly(audio, rate // common, int(source_rate) // common)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def fit_length(audio: np.ndarray, length: int, *, repeat: bool) -> np.ndarray:
    """``audio`` cut to ``length`` samples; a shorter clip is repeated (``repeat``) or padded with silence."""
    if len(audio) >= length:
        return audio[:length]
    if repeat:
        return np.tile(audio, -(-length // len(audio)))[:length]
    return np.pad(audio, (0, length - len(audio)))


def log_spectrogram(audio: np.ndarray, rate: int, window: int, overlap: int) -> np.ndarray:
    """``log(S + 1e-7)`` of SciPy's power spectrogram with ``window``-sample segments overlapping by
    ``overlap`` (its default Tukey window): [window // 2 + 1 frequencies, frames]."""
    _, _, power = signal.spectrogram(audio, rate, nperseg=window, noverlap=overlap)
    return np.log(power + LOG_FLOOR).astype(np.float32)


def mel_filterbank(n_fft: int, n_mels: int, rate: int, low: float = 0.0, high: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale, [n_fft // 2 + 1 frequencies, n_mels] (float64)."""

    def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(low), hz_to_mel(rate / 2 if high is None else high), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel(audio: np.ndarray, rate: int, *, n_fft: int, hop: int, frames: int, n_mels: int) -> np.ndarray:
    """A [n_mels, frames] log-mel spectrogram (10 log10 of the power) of the first
    ``n_fft + hop * (frames - 1)`` samples (zero-padded), with Hann windows of ``n_fft``."""
    needed = n_fft + hop * (frames - 1)
    audio = fit_length(audio, needed, repeat=False)
    starts = np.arange(frames) * hop
    windows = audio[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2  # [frames, freq]
    mel = power @ mel_filterbank(n_fft, n_mels, rate)
    return (10.0 * np.log10(np.maximum(mel, 1e-10))).T.astype(np.float32)


def resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D float array resized bilinearly to [height, width]."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # a float32 array is mode "F"
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
