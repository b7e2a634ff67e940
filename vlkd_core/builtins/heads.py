"""Builtin heads: ``linear`` and ``mlp``."""
from vlkd_core.hookspecs import hookimpl


@hookimpl
def vlkd_register_heads(register):
    register("linear", "vlkd_core._model.heads:LinearHead", description="one linear projection")
    register("mlp", "vlkd_core._model.heads:MLPHead",
             description="n-layer MLP (hidden width, activation, optional L2 norm)")
