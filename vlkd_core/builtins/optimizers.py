"""Builtin optimizers (``vlkd train --optimizer NAME``); ``adamw`` is the default."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_optimizers(register):
    register("adamw", "vlkd_core.training.optimizers:adamw", per_parameter=True,
             description="AdamW, OpenCLIP's betas (0.9, 0.98) and eps 1e-6; fused when the parameters allow")
    register("sgd", "vlkd_core.training.optimizers:sgd", per_parameter=True,
             description="SGD with momentum (optionally Nesterov's)")
