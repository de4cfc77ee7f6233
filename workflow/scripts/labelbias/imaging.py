"""Reading mammograms (DICOM or 16-bit PNG) and turning them into model-ready arrays.

The steps follow the study: window to the display range, invert MONOCHROME1 so
dense tissue is bright, keep the largest connected foreground component (drops
markers and labels), flip so the chest wall is on the left, resize keeping the
aspect ratio, pad, and scale to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import ImageReadError

CACHE_DTYPE = np.uint16
CACHE_MAX = np.iinfo(CACHE_DTYPE).max


@dataclass(frozen=True)
class PreprocessSettings:
    height: int
    width: int
    mask_threshold: float = 0.05


def _first_value(value: object) -> float:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return float(value[0])  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def read_dicom(path: str | Path) -> np.ndarray:
    """Decode a DICOM mammogram into a float32 display image in [0, 1], dense tissue bright."""
    import pydicom

    path = Path(path)
    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array.astype(np.float32)
    except FileNotFoundError as error:
        raise ImageReadError(f"{path}: file not found") from error
    except Exception as error:  # pydicom raises many types for damaged files
        raise ImageReadError(f"{path}: cannot decode DICOM pixel data ({type(error).__name__}: {error})") from error
    if pixels.ndim != 2:
        raise ImageReadError(f"{path}: expected one grey-scale frame, got pixel array of shape {pixels.shape}")
    slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
    intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    center = getattr(dataset, "WindowCenter", None)
    width = getattr(dataset, "WindowWidth", None)
    if center is not None and width is not None and _first_value(width) > 0:
        c, w = _first_value(center), _first_value(width)
        if str(getattr(dataset, "VOILUTFunction", "LINEAR")).upper() == "SIGMOID":
            display = 1.0 / (1.0 + np.exp(-4.0 * (pixels - c) / w))
        else:
            display = (pixels - (c - 0.5)) / (w - 1) + 0.5
    else:
        low, high = float(pixels.min()), float(pixels.max())
        display = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    display = np.clip(display, 0.0, 1.0).astype(np.float32)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "MONOCHROME1":
        display = 1.0 - display
    elif photometric != "MONOCHROME2":
        raise ImageReadError(f"{path}: unsupported PhotometricInterpretation {photometric!r}")
    return display


def read_png16(path: str | Path) -> np.ndarray:
    """Read one of the study's 16-bit PNGs (already windowed and inverted) into [0, 1]."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image)
    except FileNotFoundError as error:
        raise ImageReadError(f"{path}: file not found") from error
    except Exception as error:
        raise ImageReadError(f"{path}: cannot decode PNG ({type(error).__name__}: {error})") from error
    if pixels.ndim != 2:
        raise ImageReadError(f"{path}: expected a grey-scale PNG, got shape {pixels.shape}")
    scale = 65535.0 if pixels.dtype != np.uint8 else 255.0
    return (pixels.astype(np.float32) / scale).clip(0, 1)


def read_image(path: str | Path, image_format: str) -> np.ndarray:
    if image_format == "dicom":
        return read_dicom(path)
    if image_format == "png":
        return read_png16(path)
    raise ValueError(f"unknown image format {image_format!r}")


def breast_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Largest connected component above background, holes filled."""
    background = float(np.percentile(image, 1))
    foreground = image > background + threshold
    components, count = ndimage.label(foreground)
    if count == 0:
        return foreground
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest = components == int(np.argmax(sizes))
    return ndimage.binary_fill_holes(largest)


def resize_and_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Aspect-preserving resize into height x width; pad right and bottom-centred with 0."""
    rows, cols = image.shape
    scale = min(height / rows, width / cols)
    new_rows = max(1, min(height, int(round(rows * scale))))
    new_cols = max(1, min(width, int(round(cols * scale))))
    resized = np.asarray(
        Image.fromarray(image.astype(np.float32), mode="F").resize(
            (new_cols, new_rows), resample=Image.Resampling.BILINEAR
        )
    )
    out = np.zeros((height, width), dtype=np.float32)
    top = (height - new_rows) // 2
    out[top : top + new_rows, :new_cols] = resized
    return out


def preprocess(image: np.ndarray, settings: PreprocessSettings, source: str = "") -> tuple[np.ndarray, bool]:
    """Mask, align, resize and scale one display image; returns (cache array, was_flipped)."""
    mask = breast_mask(image, settings.mask_threshold)
    if mask.sum() < 0.01 * mask.size:
        raise ImageReadError(f"{source}: no breast found (foreground below 1% of the image)")
    masked = np.where(mask, image, 0.0).astype(np.float32)
    # The chest wall is the image edge the breast touches most; if it touches
    # neither (a small breast), its mass lies nearer the chest wall.
    edge = max(1, mask.shape[1] // 50)
    left, right = int(mask[:, :edge].sum()), int(mask[:, -edge:].sum())
    if left != right:
        flipped = right > left
    else:
        centre = float((mask.sum(axis=0) * np.arange(mask.shape[1])).sum() / mask.sum())
        flipped = centre > (mask.shape[1] - 1) / 2
    if flipped:
        masked = masked[:, ::-1]
    resized = resize_and_pad(masked, settings.height, settings.width)
    cached = np.round(np.clip(resized, 0.0, 1.0) * CACHE_MAX).astype(CACHE_DTYPE)
    return cached, bool(flipped)
