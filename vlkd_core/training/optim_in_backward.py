"""--optimizer-in-backward: each parameter is stepped by its own optimizer as soon as backward
has accumulated its gradient, and the gradient is freed right there, so a full set of
gradients never exists at once (PyTorch's "fuse the optimizer step into the backward pass";
torchtune's ``optimizer_in_bwd``). The per-element AdamW arithmetic is the same as one optimizer
over every parameter, so with the same settings the weights are the same bit for bit
(tests/test_optimizer_in_backward.py).

Any registered optimizer declaring ``per_parameter=True`` (a step of one parameter reads only
that parameter's gradient and state: adamw, sgd) runs this way, one instance of it per
parameter; others are refused by name (``optim.check_optimization``).

The wrapper is itself a ``torch.optim.Optimizer`` over the same parameter groups: the LR
scheduler writes its values there (the learning rate, and e.g. momentum for a cycling
schedule), each parameter's optimizer takes its group's before it steps, and the wrapper's
``step()`` has nothing left to do."""
from __future__ import annotations

from typing import Any, Callable

import torch


class OptimizerInBackward(torch.optim.Optimizer):
    def __init__(self, groups: list[dict], make: Callable[[list[dict]], torch.optim.Optimizer]):
        super().__init__(groups, defaults={})
        self.per_param: list[torch.optim.Optimizer] = []
        for index, group in enumerate(self.param_groups):
            for param in group["params"]:
                opt = make([{**group, "params": [param]}])
                self.per_param.append(opt)
                param.register_post_accumulate_grad_hook(self._step_with(opt, index))

    def _step_with(self, opt: torch.optim.Optimizer, index: int) -> Callable[[torch.Tensor], None]:
        def step(param: torch.Tensor) -> None:
            # looked up at each step: load_state_dict replaces the group dicts
            opt.param_groups[0].update((k, v) for k, v in self.param_groups[index].items() if k != "params")
            opt.step()
            param.grad = None
        return step

    def step(self, closure: Any = None) -> None:
        """Every parameter was stepped during backward."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"groups": super().state_dict(), "per_param": [o.state_dict() for o in self.per_param]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if set(state_dict) != {"groups", "per_param"} or len(state_dict["per_param"]) != len(self.per_param):
            raise ValueError("this optimizer state was not saved by --optimizer-in-backward over the same "
                             "parameters")
        super().load_state_dict(state_dict["groups"])
        for opt, state in zip(self.per_param, state_dict["per_param"]):
            opt.load_state_dict(state)
