"""vlkd plugin `protocpc`: the ProtoCPC distillation loss (cheap hooks only).

It operates on prototype logits: the training engine puts the ``dino`` head (plugin dino) on
each tower when this loss is selected.
"""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_losses(register):
    register("protocpc", "vlkd_protocpc.loss:ProtoCPC",
             description="ProtoCPC: prototypical contrastive predictive coding with a running prototype prior")
