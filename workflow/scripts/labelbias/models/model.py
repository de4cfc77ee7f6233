"""The classifier: torchvision's ResNet-18 with a one-channel (grey) or its own RGB stem, and a new head."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from ..errors import DataQualityError

# Where a model's weights start (the study: ImageNet). "backbone" is a ResNet-18 the
# workflow trained itself on patients held out of the cohort: ImageNet's role, offline.
INITS = ("scratch", "imagenet", "backbone")


def build_resnet18(n_classes: int, pretrained: bool = False, channels: int = 1) -> nn.Module:
    """ResNet-18 taking one grey-scale channel, or ``channels`` 3: RGB through its own stem.

    With ImageNet weights (torchvision's weights API; needs a network or a filled
    torch cache) a grey stem's weights are summed over the colour channels, which gives
    exactly the output of the pretrained network on the grey image repeated to three
    channels (the study's input) at a third of the stem's cost; a colour stem keeps them.
    """
    if channels not in (1, 3):
        raise ValueError(f"a ResNet-18 here takes 1 (grey) or 3 (RGB) channels, not {channels}")
    model = resnet18(weights=None)
    if pretrained:
        model.load_state_dict(imagenet_weights())
    if channels == 1:
        model.conv1 = grey_stem(model.conv1, keep_weights=pretrained)
    model.fc = nn.Linear(model.fc.in_features, n_classes)
    return model


def imagenet_weights() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights of ResNet-18 (downloaded once into the torch cache; needs a network)."""
    return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)


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
    channels = model.conv1.in_channels
    if "conv1.weight" in body and body["conv1.weight"].shape[1] != channels:
        raise DataQualityError(
            f"the backbone takes {body['conv1.weight'].shape[1]}-channel images and this model "
            f"{channels} (preprocess.channels changed since the backbone was trained?)"
        )
    missing, unexpected = model.load_state_dict(body, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise DataQualityError(
            f"the backbone's weights do not fit a {channels}-channel ResNet-18 (missing {missing[:3]}, "
            f"unexpected {list(unexpected)[:3]})"
        )
    return model


def read_backbone(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a backbone written by the workflow (``model.pt``), without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def initial_model(
    n_classes: int, init: str, backbone: Mapping[str, torch.Tensor] | None = None, channels: int = 1
) -> nn.Module:
    """A new ResNet-18 for ``channels``-channel images whose weights start as ``init`` says; the head is always new."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; one of {', '.join(INITS)}")
    model = build_resnet18(n_classes, pretrained=init == "imagenet", channels=channels)
    if init == "backbone":
        if backbone is None:
            raise ValueError("init 'backbone' needs the backbone's weights")
        load_backbone(model, backbone)
    return model


# Where fine-tuning may start: every stage from there on trains, the stages before it keep
# their starting weights (and their batch-norm statistics).
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "fc")


def freeze_before(model: nn.Module, first_trained: str) -> list[nn.Module]:
    """Freeze every ResNet-18 stage before ``first_trained`` (one of STAGES); return the frozen modules.

    The frozen modules must stay in eval mode while the rest trains, so that their
    batch-norm statistics stay those of the starting weights.
    """
    if first_trained not in STAGES:
        raise ValueError(f"unknown stage {first_trained!r}; one of {', '.join(STAGES)}")
    modules = {
        "stem": [model.conv1, model.bn1],
        "layer1": [model.layer1],
        "layer2": [model.layer2],
        "layer3": [model.layer3],
        "layer4": [model.layer4],
        "fc": [model.fc],
    }
    frozen = [module for stage in STAGES[: STAGES.index(first_trained)] for module in modules[stage]]
    for module in frozen:
        module.requires_grad_(False)
        module.eval()
    return frozen


def penultimate(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (512-d pooled features, logits) in one pass."""
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(images))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    features = torch.flatten(m.avgpool(x), 1)
    return features, m.fc(features)
