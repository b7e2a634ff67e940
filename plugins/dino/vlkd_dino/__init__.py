"""vlkd plugin `dino`: the DINO prototype head and loss (cheap hooks only)."""
from vlkd_core import hookimpl


@hookimpl
def vlkd_register_heads(register):
    register("dino", "vlkd_dino.head:DINOHead",
             example={"in_dim": 16, "out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 8},
             description="DINO projection MLP + L2 norm + weight-normalised prototype layer")


@hookimpl
def vlkd_register_losses(register):
    register("dino", "vlkd_dino.loss:DINOLoss",
             description="DINO: cross-entropy to the centred, sharpened teacher prototype distribution")
