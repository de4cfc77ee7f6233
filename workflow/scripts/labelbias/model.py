"""The classifier: torchvision's ResNet-18 with a one-channel stem and a new head."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from .errors import DataQualityError

# Where a model's weights start (the study: ImageNet). "backbone" is a ResNet-18 the
# workflow trained itself on patients held out of the cohort: ImageNet's role, offline.
INITS = ("scratch", "imagenet", "backbone")


def live_taps(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """First and last kernel tap (along one axis) that ever touches the input rather than padding."""
    outputs = (size + 2 * padding - kernel) // stride + 1
    touching = [
        tap
        for tap in range(kernel)
        if any(0 <= i * stride - padding + tap < size for i in range(outputs))
    ]
    if not touching:
        return 0, kernel - 1
    return touching[0], touching[-1]


class LiveTapConv2d(nn.Conv2d):
    """A Conv2d that skips kernel taps which only ever see zero padding.

    At small inputs ResNet-18's last stage is 1x1 (2x2 in the stage before), so a 3x3
    convolution there reads padding with 8 of its 9 taps: the same function as a 1x1
    convolution with the centre tap. oneDNN's weight gradient for such shapes is slow
    on some CPUs (about half of a 32x24 training step on AVX2). Cropping the kernel to
    the taps that touch the input gives the same outputs and the same gradients (the
    dead taps' gradient is exactly 0 either way), keeps the full weight and so the
    ``state_dict``, and costs nothing where every tap is live (larger inputs).
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h, w = input.shape[-2:]
        lo_h, hi_h = live_taps(h, kh, sh, ph)
        lo_w, hi_w = live_taps(w, kw, sw, pw)
        if (lo_h, hi_h, lo_w, hi_w) != (0, kh - 1, 0, kw - 1):
            new_ph, new_pw = ph - lo_h, pw - lo_w
            new_kh, new_kw = hi_h - lo_h + 1, hi_w - lo_w + 1
            same_size = (h + 2 * new_ph - new_kh) // sh == (h + 2 * ph - kh) // sh and (
                w + 2 * new_pw - new_kw
            ) // sw == (w + 2 * pw - kw) // sw
            if same_size and new_ph >= 0 and new_pw >= 0:
                cropped = weight[:, :, lo_h : hi_h + 1, lo_w : hi_w + 1]
                return F.conv2d(input, cropped, bias, self.stride, (new_ph, new_pw), self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def skip_dead_taps(model: nn.Module) -> nn.Module:
    """Turn every zero-padded, undilated Conv2d with a kernel above 1x1 into a LiveTapConv2d, in place."""
    for module in model.modules():
        if (
            type(module) is nn.Conv2d
            and module.kernel_size != (1, 1)
            and module.dilation == (1, 1)
            and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple)
        ):
            module.__class__ = LiveTapConv2d
    return model


def build_resnet18(n_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet-18 taking one grey-scale channel.

    With ImageNet weights (torchvision's weights API; needs a network or a filled
    torch cache) the stem's weights are summed over the colour channels, which gives
    exactly the output of the pretrained network on the grey image repeated to three
    channels (the study's input) at a third of the stem's cost. Convolutions skip the
    kernel taps that only see padding (:class:`LiveTapConv2d`): same network, same
    weights, cheaper at small inputs.
    """
    weights = ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    model = resnet18(weights=weights)
    model.conv1 = grey_stem(model.conv1, keep_weights=pretrained)
    model.fc = nn.Linear(model.fc.in_features, n_classes)
    return skip_dead_taps(model)


def grey_stem(stem: nn.Conv2d, keep_weights: bool) -> nn.Conv2d:
    """A one-channel copy of an RGB stem; with ``keep_weights`` it equals the RGB stem on a repeated grey image."""
    grey = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
    if keep_weights:
        with torch.no_grad():
            grey.weight.copy_(stem.weight.sum(dim=1, keepdim=True))
    return grey


def load_backbone(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy every weight but the head from another ResNet-18's ``state_dict``.

    The head is the new task's (its classes differ); anything else missing or extra
    means the file is not a backbone of this network, which is an error.
    """
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(body, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise DataQualityError(
            f"the backbone's weights do not fit a one-channel ResNet-18 (missing {missing[:3]}, "
            f"unexpected {list(unexpected)[:3]})"
        )
    return model


def read_backbone(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a backbone written by the workflow (``model.pt``), without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def initial_model(n_classes: int, init: str, backbone: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A new ResNet-18 whose weights start as ``init`` says; the head is always new."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; one of {', '.join(INITS)}")
    model = build_resnet18(n_classes, pretrained=init == "imagenet")
    if init == "backbone":
        if backbone is None:
            raise ValueError("init 'backbone' needs the backbone's weights")
        load_backbone(model, backbone)
    return model


def penultimate(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (512-d pooled features, logits) in one pass."""
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(images))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    features = torch.flatten(m.avgpool(x), 1)
    return features, m.fc(features)
