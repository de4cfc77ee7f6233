"""The classifier: torchvision's ResNet-18 with a one-channel stem and a new head."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18


def build_resnet18(n_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet-18 taking one grey-scale channel.

    With ImageNet weights (torchvision's weights API; needs a network or a filled
    torch cache) the stem's weights are summed over the colour channels, which gives
    exactly the output of the pretrained network on the grey image repeated to three
    channels (the study's input) at a third of the stem's cost.
    """
    weights = ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    model = resnet18(weights=weights)
    model.conv1 = grey_stem(model.conv1, keep_weights=pretrained)
    model.fc = nn.Linear(model.fc.in_features, n_classes)
    return model


def grey_stem(stem: nn.Conv2d, keep_weights: bool) -> nn.Conv2d:
    """A one-channel copy of an RGB stem; with ``keep_weights`` it equals the RGB stem on a repeated grey image."""
    grey = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
    if keep_weights:
        with torch.no_grad():
            grey.weight.copy_(stem.weight.sum(dim=1, keepdim=True))
    return grey


def penultimate(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (512-d pooled features, logits) in one pass."""
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(images))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    features = torch.flatten(m.avgpool(x), 1)
    return features, m.fc(features)
