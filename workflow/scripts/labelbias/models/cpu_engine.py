"""The CPU engine: the same network, computed in ways that are faster on a CPU at small inputs.

Optional and apart from the classifier (:mod:`.model`): training engages it on a CPU when
``train.cpu_engine`` is on, and hands back the full network, weight for weight, at the end.
Two levers: convolution kernel taps that only ever see zero padding are left out
(:func:`compact`), and convolutions whose every output reads every input run as one matrix
product (:class:`DenseConv`). Outputs and gradients are the plain network's up to rounding
(tests/test_train.py); docs/design.md says why it exists and docs/design-log.md what it buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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


@dataclass
class CroppedConv:
    """A convolution replaced by one with only its live kernel taps, or by a :class:`DenseConv` (see :func:`compact`)."""

    name: str
    full: nn.Conv2d  # the original module, full kernel: :func:`expand` puts it back
    rows: slice
    cols: slice


class DenseConv(nn.Module):
    """A convolution whose every output position reads every input position, as one matrix product.

    Such a convolution (ResNet-18 at 32x24: layer3's 3x3 convolutions on 2x2 inputs, and
    layer4's once :func:`compact` has cropped them) is a dense linear map from the
    flattened input (positions x channels) to the flattened output, which a matrix product
    computes faster on a CPU than oneDNN's kernels for large images (`make bench` measures
    it; docs/design-log.md has the figures). The kernel stays the parameter
    (the same tensor: optimiser, checkpoints and :func:`expand` see no change) and
    the matrix is gathered from it on every call. Outputs and gradients are the
    convolution's up to rounding.

    While a DenseConv holds the kernel, the kernel's storage is channels-last
    (out, kh, kw, in): each tap's (out, in) block is then a contiguous slab of the
    view the matrix is gathered from, where the standard layout would make the gather
    strided and slow. The values, and so every output and gradient bit, are the same in
    either layout.
    :func:`expand` gives the kernel its standard layout back.
    """

    def __init__(self, conv: nn.Conv2d, size: tuple[int, int]) -> None:
        super().__init__()
        if conv.groups != 1 or not reads_every_position(conv, size):
            raise ValueError("DenseConv needs a convolution whose every output position reads every input position")
        taps, self.output_size = position_taps(conv, size)
        self.register_buffer("taps", taps.flatten(), persistent=False)
        # Each tap used once, in order (layer4 at 32x24 once cropped: 1x1 kernels on 1x1
        # inputs, and its first 2x2 kernel, stride 2, on a 2x2 input): the kernel is the matrix.
        kernel_taps = conv.kernel_size[0] * conv.kernel_size[1]
        self.identity_gather = bool(torch.equal(self.taps, torch.arange(kernel_taps)))
        self.input_positions = size[0] * size[1]
        with torch.no_grad():
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
        self.weight = conv.weight
        self.bias = conv.bias
        self.train(conv.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_channels, in_channels = self.weight.shape[:2]
        outputs = self.output_size[0] * self.output_size[1]
        # (out, tap, in) -> one (out, in) block per (output, input) position pair ->
        # (out x outputs, inputs x in): each step copies whole rows of in channels.
        per_tap = self.weight.permute(0, 2, 3, 1).reshape(out_channels, -1, in_channels)
        gathered = per_tap if self.identity_gather else per_tap.index_select(1, self.taps)
        matrix = gathered.reshape(out_channels * outputs, self.input_positions * in_channels)
        flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], self.input_positions * in_channels)
        bias = None if self.bias is None else self.bias.repeat_interleave(outputs)
        return nn.functional.linear(flat, matrix, bias).view(x.shape[0], out_channels, *self.output_size)


def reads_every_position(conv: nn.Conv2d, size: tuple[int, int]) -> bool:
    """Whether every output position of ``conv`` on a ``size`` input reads every input position.

    Decided axis by axis from the kernel's window, without enumerating positions (a
    256x192 stem has 12,288 x 49,152 pairs of them): only tiny inputs qualify.
    """
    for n, k, s, p in zip(size, conv.kernel_size, conv.stride, conv.padding, strict=True):
        outputs = (n + 2 * p - k) // s + 1
        if any(o * s - p > 0 or o * s - p + k - 1 < n - 1 for o in range(outputs)):
            return False
    return True


def position_taps(conv: nn.Conv2d, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """For each (output position, input position) of ``conv`` on a ``size`` input, the flat kernel tap
    that connects them (-1: none), and the output size. Positions are flattened row by row."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    height, width = size
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    taps = torch.full((out_h * out_w, height * width), -1, dtype=torch.long)
    for oy in range(out_h):
        for ox in range(out_w):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                    if 0 <= iy < height and 0 <= ix < width:
                        taps[oy * out_w + ox, iy * width + ix] = ky * kw + kx
    return taps, (out_h, out_w)


def conv_input_sizes(model: nn.Module, height: int, width: int) -> dict[str, tuple[int, int]]:
    """Spatial size of the input every Conv2d of ``model`` sees for a ``height`` x ``width`` image."""
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_hook(lambda _m, inputs, _o, name=name: sizes.__setitem__(name, tuple(inputs[0].shape[-2:])))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    training = model.training
    parameter = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, model.conv1.in_channels, height, width, dtype=parameter.dtype, device=parameter.device))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return sizes


def compact(model: nn.Module, height: int, width: int, dense: bool = True) -> list[CroppedConv]:
    """Replace, in place, every convolution whose kernel taps partly only ever see zero padding.

    At small inputs ResNet-18's last stage is 1x1 (2x2 in the stage before), so a 3x3
    convolution there reads padding with 8 of its 9 taps: the same function as a 1x1
    convolution with the centre tap. The replacement holds just the live taps, so
    neither the forward and backward passes nor the optimizer touch the dead ones
    (ResNet-18 at 32x24: 4.2 of 11.2 million weights, and oneDNN's slow weight gradient
    for 1x1 inputs on AVX2 is gone). Outputs and gradients are the same; the dead taps
    keep their values. Where every tap is live (larger inputs) nothing is cropped.
    With ``dense``, a convolution (cropped or not) whose every output position reads
    every input position becomes a :class:`DenseConv`, one matrix product.
    :func:`expand` restores the full network.
    """
    replaced = []
    for name, size in conv_input_sizes(model, height, width).items():
        conv = model.get_submodule(name)
        if conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        live, rows, cols = _crop(conv, size)
        if dense and live.groups == 1 and reads_every_position(live, size):
            live = DenseConv(live, size)
        if live is conv:
            continue
        _replace(model, name, live)
        replaced.append(CroppedConv(name, conv, rows, cols))
    return replaced


def _crop(conv: nn.Conv2d, size: tuple[int, int]) -> tuple[nn.Conv2d, slice, slice]:
    """``conv`` with only the kernel taps that touch a ``size`` input (``conv`` itself if all do), and their rows and columns."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    first_row, last_row = live_taps(size[0], kh, sh, ph)
    first_col, last_col = live_taps(size[1], kw, sw, pw)
    rows, cols = slice(first_row, last_row + 1), slice(first_col, last_col + 1)
    if (first_row, last_row, first_col, last_col) == (0, kh - 1, 0, kw - 1):
        return conv, rows, cols
    kernel = (last_row - first_row + 1, last_col - first_col + 1)
    padding = (ph - first_row, pw - first_col)
    same_output = all(
        (n + 2 * p - k) // s == (n + 2 * p0 - k0) // s
        for n, p, k, s, p0, k0 in zip(size, padding, kernel, (sh, sw), (ph, pw), (kh, kw), strict=True)
    )
    if not same_output or min(padding) < 0:
        return conv, slice(0, kh), slice(0, kw)
    live = nn.Conv2d(conv.in_channels, conv.out_channels, kernel, conv.stride, padding, groups=conv.groups,
                     bias=conv.bias is not None)
    live = live.to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        live.weight.copy_(conv.weight[:, :, rows, cols])
        if conv.bias is not None:
            live.bias.copy_(conv.bias)
    live.weight.requires_grad_(conv.weight.requires_grad)
    live.train(conv.training)
    return live, rows, cols


def expand(model: nn.Module, cropped: list[CroppedConv]) -> nn.Module:
    """Undo :func:`compact`: the full convolutions back, with the trained live taps written into them."""
    for item in cropped:
        live = model.get_submodule(item.name)
        item.full.to(device=live.weight.device)
        with torch.no_grad():
            item.full.weight[:, :, item.rows, item.cols] = live.weight
            item.full.weight.data = item.full.weight.data.contiguous()
            if live.bias is not None:
                item.full.bias.copy_(live.bias)
        item.full.train(live.training)
        _replace(model, item.name, item.full)
    return model


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)
