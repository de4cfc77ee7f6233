"""ResNet-18, module for module the network of torchvision.models.resnet18.

The same modules, names, order, initialisation and forward pass, so a state_dict moves
between the two unchanged (ImageNet weights included) and a seed gives the same
weights (tests/test_train.py checks both against torchvision). Written out because
importing torchvision costs every training job 2-4 s on a slow CPU (its detection ops
pull in torch._dynamo), which the workflow pays about ten times per run; torchvision
is still what fetches the ImageNet weights.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class _MaxPoolChannelsLastForward(torch.autograd.Function):
    """Max-pooling computed channels-last, its gradient in the input's NCHW layout."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):  # type: ignore[override]
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), kernel_size, stride, padding
        )
        pooled, indices = pooled.contiguous(), indices.contiguous()
        ctx.save_for_backward(x, indices)
        ctx.window = (kernel_size, stride, padding)
        return pooled

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, indices = ctx.saved_tensors
        kernel_size, stride, padding = ctx.window
        grad_input = torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(), x, kernel_size, stride, padding, [1, 1], False, indices
        )
        return grad_input, None, None, None


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` whose forward pass on a CPU NCHW tensor runs channels-last.

    The stem's pooling is about 5% of a CPU training step at 32x24; PyTorch's NCHW
    kernel there is 3-4x slower than its channels-last one, while for the gradient
    the NCHW kernel is the faster. Both kernels scan a window in the same order and
    keep its first maximum, so the pooled values, the argmax indices and hence the
    gradient are bit for bit those of ``nn.MaxPool2d`` (tests/test_train.py).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = (
            x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous() or self.ceil_mode
            or self.return_indices or self.dilation not in (1, (1, 1))
        )  # fmt: skip
        if plain:
            return super().forward(x)
        window = [nn.modules.utils._pair(v) for v in (self.kernel_size, self.stride, self.padding)]
        return _MaxPoolChannelsLastForward.apply(x, *[list(v) for v in window])


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 1)
        self.layer2 = self._make_layer(128, 2)
        self.layer3 = self._make_layer(256, 2)
        self.layer4 = self._make_layer(512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        first = BasicBlock(self.inplanes, planes, stride, downsample)
        self.inplanes = planes
        return nn.Sequential(first, BasicBlock(planes, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
