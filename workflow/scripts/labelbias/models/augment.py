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
    # Colour images only, off unless configured (train.saturation_jitter, train.hue_jitter):
    # both move colour, which may be what tells a subgroup apart.
    saturation: float = 0.0
    hue: float = 0.0  # share of the colour wheel, either way


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU generator, so a seed gives the same draws whatever the batch's device.
    return (low + (high - low) * torch.rand(n, generator=generator)).to(device)


def augment_batch(images: torch.Tensor, generator: torch.Generator, settings: AugmentSettings = AugmentSettings()) -> torch.Tensor:
    """Augment a (B, C, H, W) batch in [0, 1] on its own device; background (exact 0) stays 0.

    C is 1 (grey) or 3 (RGB). Gamma, brightness and contrast draw one factor per image
    and apply it to every channel (contrast about each channel's own mean), so
    channels never mix; saturation and hue jitter, when set, are the only steps that do.
    """
    b, channels, h, w = images.shape
    device = images.device
    # A pixel is background when every channel is 0 (a pure red pixel is not).
    foreground = images.amax(dim=1, keepdim=True) > 0 if channels > 1 else images > 0
    gamma = _uniform(b, *settings.gamma, generator, device).view(b, 1, 1, 1)
    out = images.clamp_min(1e-6) ** gamma
    brightness = _uniform(b, 1 - settings.brightness, 1 + settings.brightness, generator, device).view(b, 1, 1, 1)
    out = out * brightness
    contrast = _uniform(b, 1 - settings.contrast, 1 + settings.contrast, generator, device).view(b, 1, 1, 1)
    mean = (out * foreground).sum(dim=(2, 3), keepdim=True) / foreground.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    out = ((out - mean) * contrast + mean).clamp(0, 1) * foreground
    if channels == 3 and (settings.saturation > 0 or settings.hue > 0):
        out = _jitter_colour(out, foreground, settings, generator)

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
        grid = F.affine_grid(theta, [n, channels, h, w], align_corners=False)
        warped = F.grid_sample(out.index_select(0, index), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = out.index_copy(0, index, warped)
    return out


# ITU-R 601 luma weights and the YIQ chroma axes: saturation scales the chroma, hue rotates it.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _jitter_colour(images: torch.Tensor, foreground: torch.Tensor, settings: AugmentSettings,
                   generator: torch.Generator) -> torch.Tensor:
    """Scale each image's saturation and rotate its hue in YIQ space, keeping its luminance."""
    b, device = images.shape[0], images.device
    saturation = _uniform(b, 1 - settings.saturation, 1 + settings.saturation, generator, device)
    angle = _uniform(b, -settings.hue, settings.hue, generator, device) * 2 * math.pi
    to_yiq = _RGB_TO_YIQ.to(device, images.dtype)
    cos, sin = torch.cos(angle) * saturation, torch.sin(angle) * saturation
    chroma = torch.zeros(b, 3, 3, device=device, dtype=images.dtype)
    chroma[:, 0, 0] = 1
    chroma[:, 1, 1], chroma[:, 1, 2], chroma[:, 2, 1], chroma[:, 2, 2] = cos, -sin, sin, cos
    # One 3x3 matrix per image, RGB -> YIQ -> scaled, rotated chroma -> RGB.
    per_image = torch.linalg.inv(to_yiq) @ chroma @ to_yiq
    mixed = torch.einsum("bij,bjhw->bihw", per_image, images)
    return mixed.clamp(0, 1) * foreground
