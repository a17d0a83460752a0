"""Images for the prepare step: decoding with Pillow and resizing to the model's input size.

Pillow reads the JPEG posters, PNG or JPEG video frames and in-memory pixel arrays
(CIFAR, MNIST) of the public releases; each becomes 8-bit [channels, height,
width], resized bilinearly to the paper's size without cropping.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from trainer.datasets.base import DatasetError


def open_image(source: Path | bytes) -> Image.Image:
    """An image file (or its bytes), decoded; a `DatasetError` names the file when it cannot be."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        where = "image data" if isinstance(source, bytes) else str(source)
        raise DatasetError(f"{where} cannot be read as an image: {error}") from None


def pixels(image: Image.Image, height: int, width: int, channels: int = 3) -> np.ndarray:
    """``image`` as uint8 [channels (3: RGB, 1: grey), height, width], resized bilinearly."""
    converted = image.convert("RGB" if channels == 3 else "L")
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(converted, dtype=np.uint8)
    return array[None] if channels == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))


def array_pixels(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """An in-memory [H, W] or [H, W, 3] uint8 image as uint8 [C, height, width]."""
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    return pixels(image, height, width, channels=1 if array.ndim == 2 else 3)
