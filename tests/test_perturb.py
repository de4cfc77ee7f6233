"""Image perturbations for separability under degradation: what each keeps and removes."""

from __future__ import annotations

import numpy as np
import pytest

from labelbias.data.imaging import CACHE_MAX
from labelbias.data.perturb import Perturbation, PerturbedCache, perturb_images


def images(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:24]
    smooth = 0.5 + 0.3 * np.sin(2 * np.pi * yy / 32)  # one cycle per image height: low frequency
    return np.stack([np.clip(smooth + 0.1 * rng.standard_normal((32, 24)), 0, 1) for _ in range(n)])


def high_frequency_energy(batch: np.ndarray) -> float:
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(batch), axes=(-2, -1)))
    yy, xx = np.mgrid[0:32, 0:24]
    far = (yy - 16) ** 2 + (xx - 12) ** 2 > 8**2
    return float(spectrum[:, far].mean())


def test_lowpass_removes_fine_detail_and_highpass_removes_the_coarse_shape():
    batch = images()
    low = perturb_images(batch, np.arange(4), Perturbation("lowpass", 4))
    assert high_frequency_energy(low) < 0.1 * high_frequency_energy(batch)
    assert np.corrcoef(low[0].mean(axis=1), batch[0].mean(axis=1))[0, 1] > 0.9  # the coarse shape stays
    high = perturb_images(batch, np.arange(4), Perturbation("highpass", 4))
    assert abs(np.corrcoef(high[0].mean(axis=1), batch[0].mean(axis=1))[0, 1]) < 0.5
    assert high.min() >= 0 and high.max() <= 1


def test_random_kinds_depend_on_the_cache_row_not_the_batch():
    batch = images()
    noise = Perturbation("noise", 0.2, seed=3)
    together = perturb_images(batch, np.array([10, 11, 12, 13]), noise)
    alone = perturb_images(batch[2:3], np.array([12]), noise)
    np.testing.assert_allclose(together[2], alone[0])
    assert not np.allclose(together[0], together[1])
    crop = Perturbation("crop", 0.25, seed=3)
    assert perturb_images(batch, np.arange(4), crop).shape == batch.shape
    np.testing.assert_allclose(perturb_images(batch, np.arange(4), crop), perturb_images(batch, np.arange(4), crop))
    assert np.allclose(perturb_images(batch, np.arange(4), Perturbation("crop", 1.0)), batch, atol=1e-6)


def test_perturbed_cache_reads_like_the_cache():
    cache = np.round(images(6) * CACHE_MAX).astype(np.uint16)
    view = PerturbedCache(cache, Perturbation("lowpass", 6))
    rows = np.array([4, 1])
    block = view[rows]
    assert block.dtype == np.uint16 and block.shape == (2, 32, 24) and len(view) == 6
    np.testing.assert_array_equal(block[1], view[np.array([1])][0])
    assert not np.array_equal(block, cache[rows])


@pytest.mark.parametrize("kind,strength,message", [("blur", 1, "unknown perturbation"), ("crop", 0, "crop keeps"),
                                                  ("noise", -1, ">= 0")])
def test_bad_perturbations_are_refused(kind, strength, message):
    with pytest.raises(ValueError, match=message):
        Perturbation(kind, strength)
