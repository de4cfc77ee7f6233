"""Batched tensor augmentation for training (the study's recipe), seeded by a torch.Generator.

Gamma in [0.8, 1.2]; brightness and contrast jitter 0.2; with probability 0.5 a
random affine (rotation +-10 degrees, scale 0.9-1.1). Everything runs on the whole
batch at once, so augmentation costs little next to the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSettings:
    gamma: tuple[float, float] = (0.8, 1.2)
    brightness: float = 0.2
    contrast: float = 0.2
    affine_p: float = 0.5
    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU generator, so a seed gives the same draws whatever the batch's device.
    return (low + (high - low) * torch.rand(n, generator=generator)).to(device)


def augment_batch(images: torch.Tensor, generator: torch.Generator, settings: AugmentSettings = AugmentSettings()) -> torch.Tensor:
    """Augment a (B, 1, H, W) batch in [0, 1] on its own device; background (exact 0) stays 0."""
    b, _, h, w = images.shape
    device = images.device
    foreground = images > 0
    gamma = _uniform(b, *settings.gamma, generator, device).view(b, 1, 1, 1)
    out = images.clamp_min(1e-6) ** gamma
    brightness = _uniform(b, 1 - settings.brightness, 1 + settings.brightness, generator, device).view(b, 1, 1, 1)
    out = out * brightness
    contrast = _uniform(b, 1 - settings.contrast, 1 + settings.contrast, generator, device).view(b, 1, 1, 1)
    mean = (out * foreground).sum(dim=(2, 3), keepdim=True) / foreground.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    out = ((out - mean) * contrast + mean).clamp(0, 1) * foreground

    # Drawn and counted on the host: a GPU step never waits for the count.
    chosen = torch.nonzero(torch.rand(b, generator=generator) < settings.affine_p).flatten()
    if len(chosen):
        n = len(chosen)
        index = chosen.to(device, non_blocking=True)
        angle = _uniform(n, -settings.rotation_deg, settings.rotation_deg, generator, device) * math.pi / 180
        scale = _uniform(n, *settings.scale, generator, device)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # Rotate in pixel space: normalised coordinates stretch x by w/2 and y by h/2.
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0] = cos
        theta[:, 0, 1] = -sin * h / w
        theta[:, 1, 0] = sin * w / h
        theta[:, 1, 1] = cos
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        warped = F.grid_sample(out.index_select(0, index), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = out.index_copy(0, index, warped)
    return out
