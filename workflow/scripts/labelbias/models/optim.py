"""Adam and the deterministic switch for CPU training jobs, without loading TorchDynamo.

``torch.optim``'s optimizers run behind TorchDynamo's "disable" wrapper, and
``torch.use_deterministic_algorithms`` also sets TorchInductor's flag: the first call of
either imports the compiler stack, 2.2 s on a quiet 2-core CPU (3.3 s beside another job),
as long as importing torch itself. The workflow never compiles, and a density model at
32x24 trains for about 30 s, so every training job paid the compiler's import for nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import torch


def set_deterministic(mode: bool) -> None:
    """``torch.use_deterministic_algorithms(mode, warn_only=True)`` for eager kernels only.

    The compiler's own flag matters only to compiled code; where the compiler is already
    loaded (or this torch lacks the eager switch) the public call sets both.
    """
    eager_switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if eager_switch is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=True)
    else:
        eager_switch(mode, warn_only=True)


TORCH_ADAM_FLAGS = {
    "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
    "differentiable": False, "fused": True, "decoupled_weight_decay": False,
}  # fmt: skip


def memory_order_views(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors themselves if contiguous, else 1-D views of their storage in memory order.

    The CPU fused Adam kernel copies every non-contiguous tensor to a contiguous one and
    back, four tensors per parameter per step (for DenseConv's channels-last kernels,
    about 5% of a 32x24 step). The update is elementwise, so where all four share their
    strides and cover their storage densely it may run on the storage in memory order:
    the same element meets the same elements of the others, and every bit is the same.
    """
    first = tensors[0]
    if all(t.is_contiguous() for t in tensors):
        return tensors
    dense = first.numel() > 0 and all(
        t.stride() == first.stride() and t.shape == first.shape and t.untyped_storage().nbytes() == t.numel() * t.element_size()
        and t.storage_offset() == 0
        for t in tensors
    )
    if not dense:
        return tensors
    return tuple(t.as_strided((t.numel(),), (1,)) for t in tensors)


class FusedAdam:
    """``torch.optim.Adam(params, lr, weight_decay=..., fused=True)``, one parameter group.

    The same kernel (``torch._fused_adam_``) on the same state (a float32 step count per
    parameter, the two moment buffers), so the weights come out bit for bit as with
    torch.optim, and its ``state_dict`` has torch.optim's layout: a checkpoint written by
    either resumes in the other. No AMSGrad, no gradient scaling (CPU training has no
    GradScaler); ``fit`` keeps torch.optim on a GPU, where the scaler needs it and the
    import is a small share of a job.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.param_groups: list[dict[str, Any]] = [
            {"params": list(params), "lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        ]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for parameter in self.param_groups[0]["params"]:
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for index, parameter in enumerate(group["params"]):
            if parameter.grad is None:
                continue
            state = self.state.get(index)
            if state is None:
                state = self.state[index] = {
                    "step": torch.zeros((), dtype=torch.float32, device=parameter.device),
                    "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                }
            quartet = memory_order_views(parameter, parameter.grad, state["exp_avg"], state["exp_avg_sq"])
            for tensors, tensor in zip((params, grads, exp_avgs, exp_avg_sqs), quartet, strict=True):
                tensors.append(tensor)
            steps.append(state["step"])
        if not params:
            return
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params, grads, exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
            grad_scale=None, found_inf=None,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        # torch.optim's keys too, so that torch.optim.Adam resumes it as the fused Adam it is.
        group = dict(TORCH_ADAM_FLAGS)
        group.update({key: value for key, value in self.param_groups[0].items() if key != "params"})
        group["params"] = list(range(len(self.param_groups[0]["params"])))
        return {"state": {index: dict(state) for index, state in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        (group,) = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(group["params"]) != len(params):
            raise ValueError(f"the saved optimizer holds {len(group['params'])} parameters, this model trains {len(params)}")
        for key in ("lr", "betas", "eps", "weight_decay"):
            self.param_groups[0][key] = group[key]
        self.state = {}
        for index, state in state_dict["state"].items():
            parameter = params[int(index)]
            self.state[int(index)] = {
                "step": state["step"].to(device=parameter.device, dtype=torch.float32),
                # In the parameter's memory layout, which the fused kernel expects of its moments.
                "exp_avg": torch.empty_like(parameter).copy_(state["exp_avg"]),
                "exp_avg_sq": torch.empty_like(parameter).copy_(state["exp_avg_sq"]),
            }
