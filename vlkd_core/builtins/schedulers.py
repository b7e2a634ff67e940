"""Builtin learning-rate schedules (``vlkd train --scheduler NAME``); ``warmup-cosine`` is the
default. Each warms up linearly over ``--warmup-steps`` first."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_schedulers(register):
    register("warmup-cosine", "vlkd_core.training.schedules:warmup_cosine",
             description="linear warm-up, then cosine decay to final_lr_ratio x lr")
    register("constant", "vlkd_core.training.schedules:constant",
             description="linear warm-up, then the peak lr to the end")
    register("linear", "vlkd_core.training.schedules:linear",
             description="linear warm-up, then linear decay to final_lr_ratio x lr")
