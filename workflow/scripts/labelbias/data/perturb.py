"""Image perturbations for separability under degradation ("Reading Race", Gichoya et al.).

Circular FFT low-pass and high-pass masks (diameter in pixels of the model input),
added Gaussian noise, random crops of a given area share resized back, and, for
colour images, the removal of a share of their colour (``grey``). A
perturbed image depends only on the perturbation and the image's cache row, never
on the batch it is read in, so training and evaluation see the same perturbed image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .imaging import LUMA

KINDS = ("lowpass", "highpass", "noise", "crop", "grey")


@dataclass(frozen=True)
class Perturbation:
    kind: str
    strength: float  # lowpass/highpass: mask diameter (px); noise: sigma; crop: kept area share
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown perturbation {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind == "crop" and not 0 < self.strength <= 1:
            raise ValueError(f"crop keeps a share of the area in (0, 1], got {self.strength}")
        if self.kind == "grey" and not 0 < self.strength <= 1:
            raise ValueError(f"grey removes a share of the colour in (0, 1], got {self.strength}")
        if self.strength < 0:
            raise ValueError(f"perturbation strength must be >= 0, got {self.strength}")

    @property
    def name(self) -> str:
        return f"{self.kind}{self.strength:g}"


def _circle(height: int, width: int, diameter: float) -> np.ndarray:
    """Centred disc of the given diameter on the shifted frequency grid."""
    yy, xx = np.mgrid[0:height, 0:width]
    return (yy - height // 2) ** 2 + (xx - width // 2) ** 2 <= (diameter / 2) ** 2


def _fft_filter(images: np.ndarray, keep: np.ndarray) -> np.ndarray:
    spectrum = np.fft.fftshift(np.fft.fft2(images), axes=(-2, -1))
    return np.real(np.fft.ifft2(np.fft.ifftshift(spectrum * keep, axes=(-2, -1))))


def _rescale(images: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] per image: a high-passed image has no meaningful absolute level."""
    low = images.min(axis=(-2, -1), keepdims=True)
    high = images.max(axis=(-2, -1), keepdims=True)
    return (images - low) / np.maximum(high - low, 1e-12)


def _crop(image: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # here: jobs without a perturbation never need SciPy
    height, width = image.shape[-2:]
    h = max(1, int(round(height * np.sqrt(share))))
    w = max(1, int(round(width * np.sqrt(share))))
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    window = image[..., top : top + h, left : left + w]
    # A colour image's planes share the window.
    zoom = (1,) * (image.ndim - 2) + (height / h, width / w)
    return ndimage.zoom(window, zoom, order=1, mode="nearest", grid_mode=True)


def perturb_images(images: np.ndarray, rows: np.ndarray, perturbation: Perturbation) -> np.ndarray:
    """Perturb (n, H, W) grey or (n, 3, H, W) colour images in [0, 1]; ``rows`` (their cache
    rows) seed the random kinds per image. Filters and noise act on each colour plane."""
    images = np.asarray(images, dtype=np.float64)
    image_shape = images.shape[1:]
    height, width = image_shape[-2:]
    kind, strength = perturbation.kind, perturbation.strength
    if kind == "lowpass":
        out = _fft_filter(images, _circle(height, width, strength))
    elif kind == "highpass":
        out = _rescale(_fft_filter(images, ~_circle(height, width, strength)))
    elif kind == "noise":
        noise = np.stack([np.random.default_rng([perturbation.seed, int(r)]).normal(0, strength, image_shape) for r in rows])
        out = images + noise
    elif kind == "grey":
        if images.ndim != 4:
            raise ValueError("the grey perturbation needs colour images (preprocess.channels: 3)")
        luminance = np.einsum("c,nchw->nhw", LUMA, images)[:, None]
        out = images + strength * (luminance - images)
    else:
        out = np.stack(
            [_crop(image, strength, np.random.default_rng([perturbation.seed, int(r)])) for image, r in zip(images, rows, strict=True)]
        )
    return np.clip(out, 0.0, 1.0)


class PerturbedCache:
    """A read-only view of the image cache that returns perturbed images.

    Indexing with an array of rows (as training and prediction do) perturbs just
    those images on the fly, so no perturbed copy of the cache is ever written.
    """

    def __init__(self, cache: np.ndarray, perturbation: Perturbation) -> None:
        self.cache = cache
        self.perturbation = perturbation
        self.shape = cache.shape
        self.dtype = cache.dtype

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        # Here, not at the top: the config checks import this module without the imaging stack.
        from .imaging import CACHE_DTYPE, CACHE_MAX

        rows = np.atleast_1d(np.asarray(rows))
        block = np.asarray(self.cache[rows], dtype=np.float64) / CACHE_MAX
        perturbed = perturb_images(block, rows, self.perturbation)
        return np.round(perturbed * CACHE_MAX).astype(CACHE_DTYPE)
